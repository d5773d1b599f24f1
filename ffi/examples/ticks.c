/* Typed payloads from C: publishes or receives N `struct tick` values with
 * SHMQ_PUBLISH_VALUE / SHMQ_MSG_VALUE; tick k is {k, k * 0.25, k % 1000,
 * k % 2}. Rust reads and writes the same struct (ffi/tests/c_programs.rs).
 *   ticks pub TOPIC N | ticks sub TOPIC N
 * Prints READY (sub, once subscribed), DONE published=N / received=N. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shmq.h"

struct tick {
    uint64_t seq;
    double price;
    uint32_t qty;
    uint32_t side;
};

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s pub|sub TOPIC N\n", argv[0]);
        return 2;
    }
    uint64_t n = strtoull(argv[3], NULL, 10);
    shmq_topic *topic;
    int rc = shmq_topic_open(argv[2], NULL, &topic);
    if (rc) { printf("ERR open: %s\n", shmq_strerror(rc)); return 1; }
    if (strcmp(argv[1], "pub") == 0) {
        shmq_producer *p;
        if ((rc = shmq_producer_open(topic, &p))) { printf("ERR producer: %s\n", shmq_strerror(rc)); return 1; }
        for (uint64_t k = 0; k < n; k++) {
            struct tick t = {k, (double)k * 0.25, (uint32_t)(k % 1000), (uint32_t)(k % 2)};
            if ((rc = SHMQ_PUBLISH_VALUE(p, &t))) { printf("ERR publish: %s\n", shmq_strerror(rc)); return 1; }
        }
        printf("DONE published=%llu\n", (unsigned long long)n);
        shmq_producer_close(p);
    } else {
        shmq_subscriber *s;
        if ((rc = shmq_subscribe(topic, &s))) { printf("ERR subscribe: %s\n", shmq_strerror(rc)); return 1; }
        printf("READY\n");
        fflush(stdout);
        for (uint64_t k = 0; k < n; k++) {
            shmq_msg m;
            if ((rc = shmq_recv(s, &m, 30LL * 1000000000))) { printf("ERR recv: %s\n", shmq_strerror(rc)); return 1; }
            const struct tick *t = SHMQ_MSG_VALUE(&m, struct tick);
            if (!t || t->seq != k || t->price != (double)k * 0.25 || t->qty != k % 1000 || t->side != k % 2) {
                printf("ERR tick %llu wrong (len %zu)\n", (unsigned long long)k, m.len);
                return 1;
            }
            /* A message of another size is never taken for a tick. */
            shmq_msg short_msg = m;
            short_msg.len = m.len - 1;
            if (SHMQ_MSG_VALUE(&short_msg, struct tick) != NULL) { printf("ERR short message read as a tick\n"); return 1; }
        }
        printf("DONE received=%llu\n", (unsigned long long)n);
        shmq_subscriber_close(s);
    }
    shmq_topic_close(topic);
    return 0;
}
