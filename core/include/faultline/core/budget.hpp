// The in-flight byte budget (SPEC §3): request bodies, their decompressed data and the decoders'
// working memory, reserved before the bytes are buffered and always given back. Reservations are
// compare-and-swap (never check-then-add): concurrent requests cannot overshoot the limit together.
#pragma once

#include <atomic>
#include <cstdint>

namespace faultline::core {

class byte_budget {
public:
    explicit byte_budget(std::uint64_t limit = UINT64_MAX) noexcept
        : limit_(limit) {}
    byte_budget(const byte_budget&) = delete;
    byte_budget& operator=(const byte_budget&) = delete;

    /// Takes `n` bytes if they fit under the limit; false (and nothing taken) otherwise.
    bool try_reserve(std::uint64_t n) noexcept {
        std::uint64_t cur = used_.load(std::memory_order_relaxed);
        do {
            if (n > limit_ || cur > limit_ - n) return false;
        } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
        return true;
    }
    void release(std::uint64_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

    std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
    std::uint64_t limit() const noexcept { return limit_; }
    /// What a reservation could still take now (0 when spent).
    std::uint64_t available() const noexcept {
        const std::uint64_t u = used();
        return u >= limit_ ? 0 : limit_ - u;
    }

private:
    std::uint64_t limit_;
    std::atomic<std::uint64_t> used_{0};
};

/// What one request holds of a budget: grows by reservations, given back whole when destroyed
/// (success, error, timeout, disconnect, exception alike). A null budget accepts everything.
class budget_hold {
public:
    explicit budget_hold(byte_budget* b = nullptr) noexcept
        : budget_(b) {}
    ~budget_hold() { reset(); }
    budget_hold(const budget_hold&) = delete;
    budget_hold& operator=(const budget_hold&) = delete;

    /// Reserves `n` more bytes; false when the budget cannot give them (nothing changes then).
    bool grow(std::uint64_t n) noexcept {
        if (budget_ && n && !budget_->try_reserve(n)) return false;
        held_ += n;
        return true;
    }
    /// Gives back `n` of the bytes held (at most what is held).
    void shrink(std::uint64_t n) noexcept {
        if (n > held_) n = held_;
        if (budget_ && n) budget_->release(n);
        held_ -= n;
    }
    /// Holds exactly `n` bytes: grows or shrinks; false when growing is refused.
    bool hold_exactly(std::uint64_t n) noexcept {
        if (n > held_) return grow(n - held_);
        shrink(held_ - n);
        return true;
    }
    void reset() noexcept { shrink(held_); }
    std::uint64_t held() const noexcept { return held_; }
    byte_budget* budget() const noexcept { return budget_; }

private:
    byte_budget* budget_;
    std::uint64_t held_ = 0;
};

} // namespace faultline::core
