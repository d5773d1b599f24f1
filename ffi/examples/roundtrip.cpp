// C++ through shmq.hpp: publishes or receives N pattern messages.
//   roundtrip pub TOPIC N     (zero-copy publish_in_place)
//   roundtrip batch TOPIC N   (publish_batch, runs of 16 messages)
//   roundtrip sub TOPIC N     (prints READY, checks every message)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "shmq.hpp"
#include "pattern.h"

int main(int argc, char **argv) try {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s pub|sub TOPIC N\n", argv[0]);
        return 2;
    }
    uint64_t n = std::strtoull(argv[3], nullptr, 10);
    if (std::strcmp(argv[1], "pub") == 0 || std::strcmp(argv[1], "batch") == 0) {
        shmq_options opts;
        shmq_options_init(&opts);
        opts.max_message = 1024;
        opts.capacity = 64 * 1024;
        auto t = shmq::topic::open_or_create(argv[2], opts);
        shmq::producer p(t);
        if (argv[1][0] == 'p') {
            for (uint64_t k = 0; k < n; k++)
                p.publish_in_place(pattern_len(k), [k](unsigned char *buf) {
                    pattern_fill(k, buf);
                    return pattern_len(k);
                });
        } else {
            std::vector<std::vector<unsigned char>> bytes(16, std::vector<unsigned char>(1024));
            shmq_buf msgs[16];
            for (uint64_t k = 0; k < n;) {
                size_t run = n - k < 16 ? (size_t)(n - k) : 16;
                for (size_t i = 0; i < run; i++) {
                    pattern_fill(k + i, bytes[i].data());
                    msgs[i].data = bytes[i].data();
                    msgs[i].len = pattern_len(k + i);
                }
                if (p.publish_batch(msgs, run) != run) {
                    std::printf("ERR publish_batch stopped short\n");
                    return 1;
                }
                k += run;
            }
        }
        std::printf("DONE published=%llu\n", (unsigned long long)n);
    } else {
        auto t = shmq::topic::open(argv[2]);
        shmq::subscriber s(t);
        std::printf("READY\n");
        std::fflush(stdout);
        for (uint64_t k = 0; k < n; k++) {
            auto m = s.recv(30LL * 1000000000);
            if (!pattern_check(k, m.data(), m.size())) {
                std::printf("ERR message %llu wrong\n", (unsigned long long)k);
                return 1;
            }
        }
        std::printf("DONE received=%llu\n", (unsigned long long)n);
    }
    return 0;
} catch (const shmq::error &e) {
    std::printf("ERR %s\n", e.what());
    return 1;
}
