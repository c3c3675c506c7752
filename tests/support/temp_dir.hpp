// A fresh directory under the system's temporary directory, removed with everything in it when
// the object goes (the journal's and the state directory's tests).
#pragma once

#include <filesystem>
#include <string>

#include <unistd.h>

namespace faultline::test {

struct temp_dir {
    std::string path;
    explicit temp_dir(const std::string& prefix = "faultline-test-") {
        path = (std::filesystem::temp_directory_path() /
                (prefix + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                   .string();
        std::filesystem::remove_all(path);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    static inline int counter = 0;
};

} // namespace faultline::test
