/* Reading ahead through the C API: messages received with shmq_recv_ahead
 * stay in the ring, unchanged, until shmq_release_through releases them in
 * order; a durable subscriber resumes at its first unreleased message. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shmq.h"

#include "check.h"

enum { LEN = 200, MAX = 64 };

static void fill(unsigned char *buf, int i) {
    for (int j = 0; j < LEN; j++) buf[j] = (unsigned char)(i * 31 + j);
}

int main(void) {
    shmq_options opts;
    shmq_options_init(&opts);
    opts.capacity = 4096;
    opts.max_message = 256;
    shmq_topic *t = NULL;
    shmq_producer *p = NULL;
    shmq_subscriber *s = NULL;
    EXPECT(shmq_topic_create("ahead", &opts, &t), 0);
    EXPECT(shmq_subscribe_durable(t, "bridge", &s), 0);
    EXPECT(shmq_producer_open(t, &p), 0);

    /* Fill the ring, then read everything ahead: still full. */
    unsigned char buf[LEN];
    int sent = 0;
    for (;; sent++) {
        fill(buf, sent);
        if (shmq_try_publish(p, buf, LEN) != 0) break;
    }
    CHECK(sent >= 10 && sent < MAX);
    shmq_msg m[MAX];
    shmq_ack a[MAX];
    for (int i = 0; i < sent; i++) EXPECT(shmq_recv_ahead(s, &m[i], &a[i], 0), 0);
    shmq_msg none;
    shmq_ack none_ack;
    EXPECT(shmq_recv_ahead(s, &none, &none_ack, 0), -EAGAIN);
    EXPECT(shmq_try_publish(p, buf, LEN), -EAGAIN);

    /* Release the first half: room comes back; the rest stay intact. */
    int half = sent / 2;
    EXPECT(shmq_release_through(s, &a[half - 1]), 0);
    EXPECT(shmq_release_through(s, &a[0]), -EINVAL); /* already released */
    EXPECT(shmq_release_through(s, NULL), -EINVAL);
    EXPECT(shmq_recv_ahead(NULL, &none, &none_ack, 0), -EINVAL);
    int more = 0;
    for (;; more++) {
        fill(buf, 1000 + more);
        if (shmq_try_publish(p, buf, LEN) != 0) break;
    }
    CHECK(more >= 1 && more <= half);
    for (int i = half; i < sent; i++) {
        fill(buf, i);
        CHECK(m[i].len == LEN && memcmp(m[i].data, buf, LEN) == 0);
    }

    /* Confirmed through the 2nd-to-last held one: the subscriber "dies"
     * (closes) and comes back at the first unconfirmed message. */
    EXPECT(shmq_release_through(s, &a[sent - 2]), 0);
    shmq_subscriber_close(s);
    EXPECT(shmq_subscribe_durable(t, "bridge", &s), 0);
    shmq_msg r;
    EXPECT(shmq_recv(s, &r, 0), 0);
    fill(buf, sent - 1);
    CHECK(r.len == LEN && memcmp(r.data, buf, LEN) == 0);
    shmq_subscriber_close(s);

    /* A group member cannot read ahead. */
    shmq_subscriber *g = NULL;
    EXPECT(shmq_subscribe_group(t, "workers", &g), 0);
    EXPECT(shmq_recv_ahead(g, &none, &none_ack, 0), -EOPNOTSUPP);
    shmq_subscriber_close(g);

    shmq_producer_close(p);
    EXPECT(shmq_unsubscribe_durable(t, "bridge"), 0);
    EXPECT(shmq_remove_group(t, "workers"), 0);
    shmq_topic_close(t);
    EXPECT(shmq_topic_unlink("ahead"), 0);
    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("DONE read-ahead behaves\n");
    return 0;
}
