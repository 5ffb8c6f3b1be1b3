#pragma once
// A child process for the end-to-end tests: preflightd (the built binary, `source_paths.hpp`) or any other program
// (nginx). Shared by tests/integration/preflightd_e2e_test.cpp and nginx_auth_request_test.cpp.

#include <chrono>
#include <optional>
#include <poll.h>
#include <regex>
#include <signal.h>
#include <source_paths.hpp>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

extern char** environ;

namespace preflight::test {

/// A running child process with its stdout on a pipe, started in the repository root (so relative paths such as
/// examples/data.json work); SIGKILLed by the destructor if the test did not stop it.
class daemon_process {
public:
    /// preflightd with `args`.
    explicit daemon_process(std::vector<std::string> args) : daemon_process(preflightd_path, std::move(args)) {}

    /// `program` (an absolute path) with `args`.
    daemon_process(std::string program, std::vector<std::string> args) {
        args.insert(args.begin(), program);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        posix_spawn_file_actions_addchdir_np(&fa, source_dir);
        const int rc = posix_spawn(&pid_, program.c_str(), &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        out_ = out[0];
        if (rc != 0) {
            pid_ = -1;
            throw std::runtime_error("cannot start " + program);
        }
    }
    ~daemon_process() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (out_ >= 0) close(out_);
    }
    daemon_process(const daemon_process&) = delete;
    daemon_process& operator=(const daemon_process&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    /// The port from preflightd's "listening on http://ADDR:PORT" line, or nullopt when the process exits first / 20 s
    /// pass.
    std::optional<unsigned short> wait_listening() {
        using namespace std::chrono_literals;
        std::string text;
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, 100) > 0) {
                char buf[256];
                const ssize_t n = read(out_, buf, sizeof buf);
                if (n <= 0) return std::nullopt;
                text.append(buf, static_cast<std::size_t>(n));
                std::smatch m;
                if (std::regex_search(text, m, std::regex(R"(listening on http://[^:]+:(\d+))"))) {
                    return static_cast<unsigned short>(std::stoi(m[1]));
                }
            }
        }
        return std::nullopt;
    }

    /// The exit code once the process has exited (-1: killed by a signal), nullopt while it runs. Never blocks.
    std::optional<int> exited() {
        if (pid_ <= 0) return exit_code_;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return exit_code_;
    }

    /// Sends `sig` and waits (at most 20 s) for the exit status; -1 when it did not exit normally.
    int stop(int sig = SIGTERM) {
        if (pid_ > 0) kill(pid_, sig);
        return wait_exit();
    }

    /// Waits (at most 20 s) for the exit status; -1 when it did not exit normally (or not in time).
    int wait_exit() {
        using namespace std::chrono_literals;
        for (int i = 0; i < 2000; ++i) {
            if (auto code = exited()) return *code;
            std::this_thread::sleep_for(10ms);
        }
        return -1;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::optional<int> exit_code_;
};

}  // namespace preflight::test
