// CPU seconds of the calling thread (user + system), for the benchmarks that time their own
// threads (mine_bench, delivery_bench).
#pragma once

#include <sys/resource.h>

inline double thread_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
