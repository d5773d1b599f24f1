/* Receives N pattern messages zero-copy and checks every byte and the order.
 *   subscriber TOPIC N
 * Prints READY once subscribed, DONE received=N at the end. */
#include <stdio.h>
#include <stdlib.h>
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
    printf("READY\n");
    fflush(stdout);
    for (uint64_t k = 0; k < n; k++) {
        shmq_msg m;
        if ((rc = shmq_recv(s, &m, 30LL * 1000000000))) {
            printf("ERR recv %llu: %s\n", (unsigned long long)k, shmq_strerror(rc));
            return 1;
        }
        if (m.lost || !pattern_check(k, m.data, m.len)) {
            printf("ERR message %llu wrong (len %zu, lost %llu)\n", (unsigned long long)k, m.len, (unsigned long long)m.lost);
            return 1;
        }
        shmq_release(s);
    }
    printf("DONE received=%llu\n", (unsigned long long)n);
    shmq_subscriber_close(s);
    shmq_topic_close(topic);
    return 0;
}
