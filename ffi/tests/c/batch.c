/* Batches through the C API: shmq_publish_batch publishes runs of
 * messages that subscribers receive one by one, in order, byte for byte;
 * a full ring, a message too large and bad arguments say how many went
 * out. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shmq.h"

#include "check.h"

enum { N = 100, MAXLEN = 200 };

static unsigned char bytes[N][MAXLEN];

static size_t len_of(int i) { return (size_t)(1 + (i * 37) % MAXLEN); }

static void fill(int i) {
    for (size_t j = 0; j < len_of(i); j++) bytes[i][j] = (unsigned char)(i * 7 + j);
}

/* Receives message i without waiting and checks every byte. */
static void expect_msg(shmq_subscriber *s, int i) {
    shmq_msg m;
    EXPECT(shmq_recv(s, &m, 0), 0);
    CHECK(m.len == len_of(i) && memcmp(m.data, bytes[i], m.len) == 0);
    EXPECT(shmq_release(s), 0);
}

int main(void) {
    shmq_options opts;
    shmq_options_init(&opts);
    opts.capacity = 4096;
    opts.max_message = 256;
    shmq_topic *t = NULL;
    shmq_producer *p = NULL;
    shmq_subscriber *s = NULL;
    EXPECT(shmq_topic_create("batch", &opts, &t), 0);
    EXPECT(shmq_subscribe(t, &s), 0);
    EXPECT(shmq_producer_open(t, &p), 0);
    shmq_buf msgs[N];
    for (int i = 0; i < N; i++) {
        fill(i);
        msgs[i].data = bytes[i];
        msgs[i].len = len_of(i);
    }

    /* More than the ring holds: what fits goes out, then -EAGAIN (no
     * wait) or -ETIMEDOUT (after a wait), and the count says how many. */
    size_t sent = 12345;
    EXPECT(shmq_publish_batch(p, msgs, N, 0, &sent), -EAGAIN);
    CHECK(sent > 0 && sent < N);
    size_t none = 12345;
    EXPECT(shmq_publish_batch(p, msgs + sent, N - sent, 20 * 1000 * 1000, &none), -ETIMEDOUT);
    CHECK(none == 0);
    for (size_t i = 0; i < sent; i++) expect_msg(s, (int)i);
    shmq_msg m;
    EXPECT(shmq_recv(s, &m, 0), -EAGAIN);

    /* The rest, a few at a time, read as they go. */
    size_t next = sent;
    while (next < N) {
        size_t k = N - next < 5 ? N - next : 5, got = 0;
        EXPECT(shmq_publish_batch(p, msgs + next, k, -1, &got), 0);
        CHECK(got == k);
        for (size_t i = next; i < next + k; i++) expect_msg(s, (int)i);
        next += k;
    }

    /* A message too large stops the batch after the ones before it. */
    static unsigned char big[257];
    shmq_buf mixed[3] = {{bytes[0], len_of(0)}, {big, sizeof big}, {bytes[2], len_of(2)}};
    size_t got = 99;
    EXPECT(shmq_publish_batch(p, mixed, 3, -1, &got), -EMSGSIZE);
    CHECK(got == 1);
    expect_msg(s, 0);
    EXPECT(shmq_recv(s, &m, 0), -EAGAIN);

    /* Bad arguments publish nothing; an empty batch is fine. */
    shmq_buf bad[2] = {{bytes[0], 1}, {NULL, 5}};
    got = 99;
    EXPECT(shmq_publish_batch(p, bad, 2, -1, &got), -EINVAL);
    CHECK(got == 0);
    EXPECT(shmq_publish_batch(NULL, msgs, 1, -1, NULL), -EINVAL);
    EXPECT(shmq_publish_batch(p, NULL, 1, -1, NULL), -EINVAL);
    EXPECT(shmq_publish_batch(p, NULL, 0, -1, &got), 0);
    CHECK(got == 0);
    shmq_buf empty = {NULL, 0};
    EXPECT(shmq_publish_batch(p, &empty, 1, -1, NULL), 0);
    EXPECT(shmq_recv(s, &m, 0), 0);
    CHECK(m.len == 0);
    EXPECT(shmq_release(s), 0);
    void *buf = NULL;
    EXPECT(shmq_reserve(p, 4, &buf), 0);
    EXPECT(shmq_publish_batch(p, msgs, 1, -1, NULL), -EBUSY);
    EXPECT(shmq_abort(p), 0);

    shmq_subscriber_close(s);
    shmq_producer_close(p);
    shmq_topic_close(t);
    EXPECT(shmq_topic_unlink("batch"), 0);
    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("DONE batches behave\n");
    return 0;
}
