/* A C peer for the cross-language tests: the roles of examples/interop.rs
 * (publish / check N messages of a fixed pattern), through the C API. */
#include <shmq.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t pattern(uint64_t i, uint64_t maxlen, unsigned char *out) {
    size_t len = (size_t)(1 + (i * 7919) % maxlen);
    for (size_t j = 0; j < len; j++) out[j] = (unsigned char)((i * 131 + j * 7) & 0xff);
    return len;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: peer publish|check DIR TOPIC N MAXLEN\n");
        return 2;
    }
    uint64_t n = strtoull(argv[4], NULL, 10), maxlen = strtoull(argv[5], NULL, 10);
    unsigned char *want = malloc(maxlen + 1);
    shmq_options o;
    shmq_options_init_any(&o);
    o.dir = argv[2];
    shmq_topic *t;
    int rc = shmq_topic_open(argv[3], &o, &t);
    if (rc != 0 || !want) {
        fprintf(stderr, "open: %s\n", shmq_strerror(rc));
        return 1;
    }
    if (strcmp(argv[1], "publish") == 0) {
        shmq_producer *p;
        if ((rc = shmq_producer_open(t, &p)) != 0) {
            fprintf(stderr, "producer: %s\n", shmq_strerror(rc));
            return 1;
        }
        for (uint64_t i = 0; i < n; i++) {
            size_t len = pattern(i, maxlen, want);
            if ((rc = shmq_publish(p, want, len, -1)) != 0) {
                fprintf(stderr, "publish %llu: %s\n", (unsigned long long)i, shmq_strerror(rc));
                return 1;
            }
        }
        shmq_producer_close(p);
        printf("published %llu\n", (unsigned long long)n);
    } else {
        shmq_subscriber *s;
        if ((rc = shmq_subscribe(t, &s)) != 0) {
            fprintf(stderr, "subscribe: %s\n", shmq_strerror(rc));
            return 1;
        }
        printf("ready\n");
        fflush(stdout);
        for (uint64_t i = 0; i < n; i++) {
            shmq_msg m;
            if ((rc = shmq_recv(s, &m, 60000000000LL)) != 0) {
                fprintf(stderr, "recv %llu: %s\n", (unsigned long long)i, shmq_strerror(rc));
                return 1;
            }
            size_t len = pattern(i, maxlen, want);
            if (m.len != len || memcmp(m.data, want, len) != 0) {
                fprintf(stderr, "message %llu: %zu bytes, not the %zu expected\n", (unsigned long long)i, m.len, len);
                return 1;
            }
            shmq_release(s);
        }
        shmq_subscriber_close(s);
        printf("ok %llu\n", (unsigned long long)n);
    }
    free(want);
    shmq_topic_close(t);
    return 0;
}
