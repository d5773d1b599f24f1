/* Publishes N pattern messages to a topic (created if missing).
 *   publisher TOPIC N [--reserve]
 * --reserve writes each message in place (shmq_reserve / shmq_commit)
 * instead of copying it in (shmq_publish). Topic directory: $SHMQ_DIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shmq.h"
#include "pattern.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOPIC N [--reserve]\n", argv[0]);
        return 2;
    }
    uint64_t n = strtoull(argv[2], NULL, 10);
    int zero_copy = argc > 3 && strcmp(argv[3], "--reserve") == 0;
    shmq_options opts;
    shmq_options_init(&opts);
    opts.max_message = 1024;
    opts.capacity = 64 * 1024;
    shmq_topic *topic;
    int rc = shmq_topic_open_or_create(argv[1], &opts, &topic);
    if (rc) { fprintf(stderr, "open %s: %s\n", argv[1], shmq_strerror(rc)); return 1; }
    shmq_producer *p;
    if ((rc = shmq_producer_open(topic, &p))) { fprintf(stderr, "producer: %s\n", shmq_strerror(rc)); return 1; }
    unsigned char buf[512];
    for (uint64_t k = 0; k < n; k++) {
        size_t len = pattern_len(k);
        if (zero_copy) {
            void *dst;
            if ((rc = shmq_reserve(p, len, &dst))) break;
            pattern_fill(k, dst);
            rc = shmq_commit(p, len);
        } else {
            pattern_fill(k, buf);
            rc = shmq_publish(p, buf, len, 30LL * 1000000000);
        }
        if (rc) break;
    }
    if (rc) { fprintf(stderr, "publish: %s\n", shmq_strerror(rc)); return 1; }
    printf("DONE published=%llu\n", (unsigned long long)n);
    shmq_producer_close(p);
    shmq_topic_close(topic);
    return 0;
}
