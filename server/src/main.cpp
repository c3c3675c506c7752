#include "faultline/server/cli.hpp"

#include <iostream>

int main(int argc, char** argv) {
    return faultline::server::run_cli(argc, argv, std::cout, std::cerr);
}
