#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace preflight::gates {

/// What the pipeline does after a read-only gate finished.
enum class precedence_step {
    keep_waiting,  ///< the decision still depends on a gate that has not finished
    decide,        ///< the decision is final and no gate is still running
    cancel_rest,   ///< the decision is final (a denial); cancel the gates still running
};

/// The precedence rule of the read-only phase as a pure state machine (no I/O): gates finish in any order,
/// and the decision is what a sequential evaluation in declaration order would give: the first denying gate
/// in order wins, and it wins as soon as every gate before it has passed.
/// Up to 64 gates. Not thread-safe (one per run).
class precedence_fsm {
public:
    static constexpr std::size_t max_gates = 64;

    /// `gates` <= max_gates (throws std::invalid_argument otherwise). With 0 gates it is decided at once.
    explicit precedence_fsm(std::size_t gates);

    /// Gate `index` finished; `denied` after its failure policy and shadow mode were applied.
    /// Throws std::logic_error when called after the decision, twice for one gate, or out of range.
    precedence_step on_gate_done(std::size_t index, bool denied);

    [[nodiscard]] bool decided() const noexcept { return decided_; }
    /// The index of the deciding denial; nullopt when undecided or when every gate passed.
    [[nodiscard]] std::optional<std::size_t> deciding_gate() const noexcept;
    /// True while gate `index` has not finished.
    [[nodiscard]] bool pending(std::size_t index) const noexcept { return ((done_ >> index) & 1U) == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    std::size_t size_;
    std::size_t frontier_ = 0;  // first gate not known to pass
    std::uint64_t done_ = 0;
    std::uint64_t denied_ = 0;
    bool decided_ = false;
};

}  // namespace preflight::gates
