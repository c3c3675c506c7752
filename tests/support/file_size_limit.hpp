// A lower file size limit for the process (RLIMIT_FSIZE), while it lives: a real disk-side write
// failure (EFBIG part-way through a write) for the tests of the journal and the state directory.
#pragma once

#include <doctest/doctest.h>

#include <csignal>
#include <cstdint>

#include <sys/resource.h>

namespace faultline::test {

/// Lowers the process's file size limit while it lives (SIGXFSZ ignored meanwhile: a write past
/// the limit then fails with EFBIG instead of ending the process).
struct file_size_limit {
    rlimit before{};
    void (*old_handler)(int) = nullptr;
    explicit file_size_limit(std::uintmax_t bytes) {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &before) == 0);
        old_handler = std::signal(SIGXFSZ, SIG_IGN);
        rlimit lower = before;
        lower.rlim_cur = static_cast<rlim_t>(bytes);
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &lower) == 0);
    }
    ~file_size_limit() {
        ::setrlimit(RLIMIT_FSIZE, &before);
        std::signal(SIGXFSZ, old_handler);
    }
    file_size_limit(const file_size_limit&) = delete;
    file_size_limit& operator=(const file_size_limit&) = delete;
};

} // namespace faultline::test
