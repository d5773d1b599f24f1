/* Round-trip latency of the C API between two processes, busy-polling:
 *   pingpong ROUNDS SIZE CPU_A CPU_B
 * Prints one-way p50 p90 p99 p99.9 max in ns (round trip / 2). Topic
 * directory: $SHMQ_DIR. Used by `shmq bench --c-pingpong`. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "shmq.h"

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What a busy-polling loop does between empty polls, as the Rust side of
 * `shmq bench` does (std::hint::spin_loop): without it the C figures would
 * not be comparable. */
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int die(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, shmq_strerror(rc));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s ROUNDS SIZE CPU_A CPU_B\n", argv[0]);
        return 2;
    }
    long rounds = atol(argv[1]);
    size_t size = (size_t)atol(argv[2]);
    char ping[64], pong[64];
    snprintf(ping, sizeof ping, "c-ping-%d", (int)getpid());
    snprintf(pong, sizeof pong, "c-pong-%d", (int)getpid());
    shmq_options o;
    shmq_options_init(&o);
    o.capacity = 1 << 20;
    o.max_message = 64 * 1024;
    shmq_topic *tping, *tpong;
    int rc;
    if ((rc = shmq_topic_create(ping, &o, &tping)) || (rc = shmq_topic_create(pong, &o, &tpong))) return die("create", rc);
    int ready[2];
    if (pipe(ready)) return 1;
    pid_t child = fork();
    if (child == 0) {
        pin(atoi(argv[4]));
        /* Open the topics again rather than use the parent's handles: a
         * forked child does not inherit the parent's page tables for shared
         * mappings, and would take a page fault on each ring page it first
         * touches; opening maps them populated. */
        shmq_topic *cping, *cpong;
        if ((rc = shmq_topic_open(ping, &o, &cping)) || (rc = shmq_topic_open(pong, &o, &cpong))) return die("open", rc);
        shmq_subscriber *s;
        shmq_producer *p;
        if ((rc = shmq_subscribe(cping, &s)) || (rc = shmq_producer_open(cpong, &p))) return die("child", rc);
        if (write(ready[1], "r", 1) != 1) return 1;
        for (long i = 0; i < rounds; i++) {
            shmq_msg m;
            while ((rc = shmq_try_recv(s, &m)) == -EAGAIN) cpu_relax();
            if (rc) return die("recv", rc);
            void *buf;
            if ((rc = shmq_reserve(p, m.len, &buf))) return die("reserve", rc);
            memcpy(buf, m.data, m.len);
            shmq_commit(p, m.len); /* reply first, then release the ping */
            shmq_release(s);
        }
        return 0;
    }
    pin(atoi(argv[3]));
    shmq_subscriber *s;
    if ((rc = shmq_subscribe(tpong, &s))) return die("subscribe", rc);
    char c;
    if (read(ready[0], &c, 1) != 1) return 1;
    shmq_producer *p;
    if ((rc = shmq_producer_open(tping, &p))) return die("producer", rc);
    unsigned char *msg = calloc(size, 1);
    uint64_t *rtt = malloc(sizeof(uint64_t) * (size_t)rounds);
    for (long i = 0; i < rounds; i++) {
        memcpy(msg, &i, sizeof i < size ? sizeof i : size);
        uint64_t t = now_ns();
        if ((rc = shmq_publish(p, msg, size, -1))) return die("publish", rc);
        shmq_msg m;
        while ((rc = shmq_try_recv(s, &m)) == -EAGAIN) cpu_relax();
        if (rc) return die("recv", rc);
        rtt[i] = now_ns() - t;
        if (m.len != size || memcmp(m.data, msg, size) != 0) return die("corrupt pong", -EBADMSG);
        shmq_release(s);
    }
    waitpid(child, NULL, 0);
    qsort(rtt, (size_t)rounds, sizeof *rtt, cmp);
#define Q(f) (rtt[(size_t)((double)rounds * (f)) < (size_t)rounds ? (size_t)((double)rounds * (f)) : (size_t)rounds - 1] / 2)
    printf("%llu %llu %llu %llu %llu\n", (unsigned long long)Q(0.5), (unsigned long long)Q(0.9), (unsigned long long)Q(0.99),
           (unsigned long long)Q(0.999), (unsigned long long)(rtt[rounds - 1] / 2));
    shmq_topic_unlink(ping);
    shmq_topic_unlink(pong);
    return 0;
}
