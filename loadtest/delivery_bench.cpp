// delivery_bench: what the workers spend on deliveries, without HTTP, sockets or queues.
//   delivery_bench BODIES.jsonl [--threads N] [--rounds R] [--no-details] [--bodies-per-batch K]
// BODIES: Firehose request bodies, one per line (loadtest/bench_data.py firehose). With the service's
// default configuration (its patterns, Drain mining, template details kept unless --no-details),
// N threads each decode and commit every body R times as the server's workers do
// (pipeline::decode_delivery, worker_context::commit_batch), one delivery per body, all mining into
// one shared miner. Prints events per CPU-second of the threads: the ceiling of the server's
// events per server CPU-second on this machine at that thread count (the server adds its I/O
// thread and the kernel's share on top).
// --bodies-per-batch K: K bodies decoded into one batch before it is committed, as
// `faultline scan` batches a chunk of its input (256 KiB: about 8 of these bodies) where the
// server commits each delivery on its own (its acknowledgement is that delivery's alone).
#include "faultline/config/config.hpp"
#include "faultline/core/match/pattern_set.hpp"
#include "faultline/core/pipeline/delivery.hpp"
#include "faultline/core/pipeline/pipeline.hpp"

#include "thread_cpu.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace faultline;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: delivery_bench BODIES.jsonl [--threads N] [--rounds R] [--no-details] "
                             "[--bodies-per-batch K]\n");
        return 2;
    }
    int threads = 1, rounds = 10, per_batch = 1;
    bool details = true;
    for (int i = 2; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = std::max(1, std::atoi(argv[++i]));
        else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = std::max(1, std::atoi(argv[++i]));
        else if (!std::strcmp(argv[i], "--bodies-per-batch") && i + 1 < argc)
            per_batch = std::max(1, std::atoi(argv[++i]));
        else if (!std::strcmp(argv[i], "--no-details"))
            details = false;
        else {
            std::fprintf(stderr, "delivery_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    std::vector<std::string> bodies;
    {
        std::ifstream in(argv[1]);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) bodies.push_back(std::move(line));
    }
    if (bodies.empty()) {
        std::fprintf(stderr, "delivery_bench: no bodies in %s\n", argv[1]);
        return 2;
    }
    const config::config cfg = config::default_config();
    auto compiled = core::match::pattern_set::compile(cfg.patterns);
    if (!compiled) {
        std::fprintf(stderr, "delivery_bench: %s\n", compiled.error().message.c_str());
        return 2;
    }
    const std::shared_ptr<const core::match::pattern_set> set = *compiled;
    const std::int64_t now_ms = 1'700'000'000'000;
    core::mine::template_miner miner(cfg.templates.mining, now_ms);
    std::atomic<std::uint64_t> events{0};
    std::atomic<int> started{0};
    std::atomic<bool> failed{false};
    std::vector<double> cpu(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            core::aggregate::analyze_options ao;
            ao.mask_bytes = cfg.templates.mining.mask_bytes; // as the pipeline sets it when mining
            ao.template_details = details;
            core::pipeline::worker_context w(static_cast<std::size_t>(t), set, core::decode::decode_limits{},
                                             ao, core::aggregate::count_limits{10'000, 10'000});
            w.miner = &miner;
            ++started;
            while (started.load() < threads) {
            }
            const double t0 = thread_cpu_seconds();
            std::uint64_t n = 0;
            for (int r = 0; r < rounds; ++r)
                for (std::size_t i = 0; i < bodies.size(); ++i) {
                    const std::string& b = bodies[(i + static_cast<std::size_t>(t) * 137) % bodies.size()];
                    if (per_batch > 1) { // scan's way: several bodies, one batch
                        const std::size_t k = static_cast<std::size_t>(per_batch);
                        if (i % k == 0) w.begin_batch(now_ms);
                        std::string body;
                        body.reserve(b.size() + core::decode::json_padding);
                        body.assign(b);
                        if (!w.decoder.firehose(body, w.analyzer, core::decode::firehose_options{}))
                            failed = true;
                        if (i % k == k - 1 || i + 1 == bodies.size()) {
                            n += w.batch.events;
                            w.commit_batch("firehose");
                        }
                        continue;
                    }
                    core::pipeline::delivery d;
                    d.kind = core::pipeline::delivery_kind::firehose;
                    d.now_ms = now_ms;
                    d.body.reserve(b.size() + core::decode::json_padding);
                    d.body.assign(b);
                    const auto res = core::pipeline::decode_delivery(w, d);
                    if (res.failure) failed = true;
                    w.commit_batch("firehose");
                    n += res.events;
                }
            cpu[static_cast<std::size_t>(t)] = thread_cpu_seconds() - t0;
            events += n;
        });
    for (auto& th : pool)
        th.join();
    if (failed) {
        std::fprintf(stderr, "delivery_bench: a body did not decode\n");
        return 1;
    }
    double total = 0;
    for (const double c : cpu)
        total += c;
    std::printf(
        "delivery_bench: %d thread(s), %zu bodies x %d, %d per batch, details %s: %.0f events/CPU-s\n",
        threads, bodies.size(), rounds, per_batch, details ? "kept" : "off",
        static_cast<double>(events.load()) / total);
    return 0;
}
