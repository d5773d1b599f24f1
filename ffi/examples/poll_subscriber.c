/* Receives N pattern messages from an event loop: poll(2) on the
 * subscriber's readiness descriptor (shmq_subscriber_fd), beside a pipe
 * standing in for a socket, with no thread of its own waiting.
 *   poll_subscriber TOPIC N
 * Prints READY once subscribed, DONE received=N wakeups=W at the end. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "shmq.h"
#include "pattern.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOPIC N\n", argv[0]);
        return 2;
    }
    uint64_t n = strtoull(argv[2], NULL, 10);
    shmq_topic *topic;
    int rc = shmq_topic_open(argv[1], NULL, &topic);
    if (rc) { printf("ERR open: %s\n", shmq_strerror(rc)); return 1; }
    shmq_subscriber *s;
    if ((rc = shmq_subscribe(topic, &s))) { printf("ERR subscribe: %s\n", shmq_strerror(rc)); return 1; }
    int fd = shmq_subscriber_fd(s);
    if (fd < 0) { printf("ERR fd: %s\n", shmq_strerror(fd)); return 1; }
    int other[2];
    if (pipe(other)) { printf("ERR pipe\n"); return 1; }
    printf("READY\n");
    fflush(stdout);
    uint64_t k = 0, wakeups = 0;
    while (k < n) {
        shmq_msg m;
        while ((rc = shmq_try_recv(s, &m)) == 0) {
            if (m.lost || !pattern_check(k, m.data, m.len)) {
                printf("ERR message %llu wrong (len %zu)\n", (unsigned long long)k, m.len);
                return 1;
            }
            k++;
        }
        if (rc != -EAGAIN) { printf("ERR recv: %s\n", shmq_strerror(rc)); return 1; }
        if (k == n) break;
        rc = shmq_subscriber_arm(s);
        if (rc < 0) { printf("ERR arm: %s\n", shmq_strerror(rc)); return 1; }
        if (rc == 1) continue;
        struct pollfd p[2] = {{fd, POLLIN, 0}, {other[0], POLLIN, 0}};
        if (poll(p, 2, 30000) <= 0) { printf("ERR poll: no message in 30 s after %llu\n", (unsigned long long)k); return 1; }
        if (p[1].revents) { printf("ERR the pipe was never written\n"); return 1; }
        wakeups++;
    }
    printf("DONE received=%llu wakeups=%llu\n", (unsigned long long)n, (unsigned long long)wakeups);
    shmq_subscriber_close(s);
    shmq_topic_close(topic);
    return 0;
}
