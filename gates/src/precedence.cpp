#include <preflight/gates/precedence.hpp>

#include <stdexcept>
#include <string>

namespace preflight::gates {

precedence_fsm::precedence_fsm(std::size_t gates) : size_(gates), decided_(gates == 0) {
    if (gates > max_gates) {
        throw std::invalid_argument("precedence_fsm: " + std::to_string(gates) + " gates, at most 64 supported");
    }
}

precedence_step precedence_fsm::on_gate_done(std::size_t index, bool denied) {
    if (index >= size_) throw std::logic_error("precedence_fsm: gate index " + std::to_string(index) + " out of range");
    if (decided_)
        throw std::logic_error("precedence_fsm: gate " + std::to_string(index) + " finished after the decision");
    const std::uint64_t bit = std::uint64_t{1} << index;
    if ((done_ & bit) != 0) throw std::logic_error("precedence_fsm: gate " + std::to_string(index) + " finished twice");
    done_ |= bit;
    if (denied) denied_ |= bit;

    while (frontier_ < size_ && ((done_ >> frontier_) & 1U) != 0 && ((denied_ >> frontier_) & 1U) == 0) ++frontier_;
    if (frontier_ == size_) {
        decided_ = true;
        return precedence_step::decide;
    }
    if (((done_ >> frontier_) & 1U) == 0) return precedence_step::keep_waiting;
    // The first gate not known to pass has denied, and every gate before it passed: final.
    decided_ = true;
    const std::uint64_t all = size_ == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << size_) - 1);
    return (done_ & all) == all ? precedence_step::decide : precedence_step::cancel_rest;
}

std::optional<std::size_t> precedence_fsm::deciding_gate() const noexcept {
    if (!decided_ || frontier_ == size_) return std::nullopt;
    return frontier_;
}

}  // namespace preflight::gates
