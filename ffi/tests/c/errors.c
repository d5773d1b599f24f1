/* Every error path of the C API, and the ABI layout. Run by
 * ffi/tests/c_programs.rs with SHMQ_DIR set to a fresh directory (and once
 * under valgrind). Prints each failed check; exits 1 if any failed. */
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include "shmq.h"

#include "check.h"

int main(void) {
    /* ABI: the header's structs match the library's. */
    uint64_t abi[7];
    EXPECT(shmq_abi_layout(abi, 7), 0);
    EXPECT(shmq_abi_layout(NULL, 7), -EINVAL);
    EXPECT(shmq_abi_layout(abi, 6), -EINVAL);
    CHECK(abi[0] == sizeof(shmq_options));
    CHECK(abi[1] == offsetof(shmq_options, capacity));
    CHECK(abi[2] == offsetof(shmq_options, dir));
    CHECK(abi[3] == offsetof(shmq_options, durable_expiry_ms));
    CHECK(abi[4] == sizeof(shmq_msg));
    CHECK(abi[5] == offsetof(shmq_msg, lost));
    CHECK(abi[6] == offsetof(shmq_msg, msg_type));

    shmq_options opts;
    shmq_options_init(&opts);
    opts.capacity = 4096;
    opts.max_message = 256;
    opts.max_subscribers = 1;
    shmq_options_init(NULL); /* must not crash */
    shmq_topic *t = NULL, *t2 = NULL;

    /* Bad names and NULLs. */
    EXPECT(shmq_topic_create(NULL, &opts, &t), -EINVAL);
    EXPECT(shmq_topic_create("a/b", &opts, &t), -EINVAL);
    EXPECT(shmq_topic_create("../x", &opts, &t), -EINVAL);
    EXPECT(shmq_topic_create("", &opts, &t), -EINVAL);
    EXPECT(shmq_topic_create("ok", &opts, NULL), -EINVAL);
    EXPECT(shmq_topic_open("missing", NULL, &t), -ENOENT);
    EXPECT(shmq_topic_unlink("missing"), -ENOENT);
    EXPECT(shmq_topic_unlink(NULL), -EINVAL);

    /* Bad options. */
    shmq_options bad = opts;
    bad.policy = 7;
    EXPECT(shmq_topic_create("bad", &bad, &t), -EINVAL);
    bad = opts;
    bad.size = 3;
    EXPECT(shmq_topic_create("bad", &bad, &t), -EINVAL);
    bad = opts;
    bad.max_message = 4096; /* more than half the ring */
    EXPECT(shmq_topic_create("bad", &bad, &t), -EINVAL);
    bad = opts;
    bad.policy = SHMQ_POLICY_OVERWRITE;
    bad.multi_producer = 1;
    EXPECT(shmq_topic_create("bad", &bad, &t), -EINVAL);
    bad = opts;
    bad.mode = 07777; /* setuid, setgid and sticky bits are not a topic's */
    EXPECT(shmq_topic_create("bad", &bad, &t), -EINVAL);
    bad = opts;
    bad.dir = ""; /* not "the current directory" by accident */
    EXPECT(shmq_topic_create("bad", &bad, &t), -EINVAL);
    EXPECT(shmq_topic_open("bad", &bad, &t), -EINVAL);
    EXPECT(shmq_topic_unlink_in("", "bad"), -EINVAL);

    /* Create, create again, open with different settings. */
    EXPECT(shmq_topic_create("t", &opts, &t), 0);
    EXPECT(shmq_topic_create("t", &opts, &t2), -EEXIST);
    shmq_options want;
    shmq_options_init_any(&want);
    want.policy = SHMQ_POLICY_OVERWRITE;
    EXPECT(shmq_topic_open("t", &want, &t2), -EINVAL);
    shmq_options_init_any(&want);
    want.capacity = 4096;
    EXPECT(shmq_topic_open("t", &want, &t2), 0);
    shmq_topic_close(t2);
    EXPECT(shmq_topic_open("t", NULL, &t2), 0);
    shmq_topic_close(t2);

    /* Producers. */
    shmq_producer *p = NULL, *p2 = NULL;
    EXPECT(shmq_producer_open(NULL, &p), -EINVAL);
    EXPECT(shmq_producer_open(t, NULL), -EINVAL);
    EXPECT(shmq_producer_open(t, &p), 0);
    EXPECT(shmq_producer_open(t, &p2), -EBUSY);

    /* Subscribers. */
    shmq_subscriber *s = NULL, *s2 = NULL;
    EXPECT(shmq_subscribe(NULL, &s), -EINVAL);
    EXPECT(shmq_subscribe(t, &s), 0);
    EXPECT(shmq_subscribe(t, &s2), -EUSERS); /* one slot */

    unsigned char big[512] = {0};
    shmq_msg m;
    size_t len = 0;
    EXPECT(shmq_publish(NULL, big, 1, 0), -EINVAL);
    EXPECT(shmq_publish(p, NULL, 1, 0), -EINVAL);
    EXPECT(shmq_publish(p, big, 257, -1), -EMSGSIZE);
    EXPECT(shmq_try_recv(s, &m), -EAGAIN);
    EXPECT(shmq_try_recv(NULL, &m), -EINVAL);
    EXPECT(shmq_try_recv(s, NULL), -EINVAL);
    EXPECT(shmq_recv(s, &m, 1000000), -ETIMEDOUT);
    EXPECT(shmq_release(s), -EINVAL);
    EXPECT(shmq_release(NULL), -EINVAL);
    EXPECT(shmq_publish(p, NULL, 0, 0), 0); /* an empty message is fine */
    EXPECT(shmq_try_recv(s, &m), 0);
    CHECK(m.len == 0);
    EXPECT(shmq_release(s), 0);

    /* Fill the ring: try_publish -EAGAIN, publish with a timeout -ETIMEDOUT. */
    int sent = 0;
    while (shmq_try_publish(p, big, 200) == 0) sent++;
    CHECK(sent > 0 && sent < 20);
    EXPECT(shmq_try_publish(p, big, 200), -EAGAIN);
    EXPECT(shmq_publish(p, big, 200, 1000000), -ETIMEDOUT);
    void *buf = NULL;
    EXPECT(shmq_try_reserve(p, 200, &buf), -EAGAIN);

    /* recv_copy: too small a buffer keeps the message. */
    EXPECT(shmq_recv_copy(s, big, 10, &len, 0), -EMSGSIZE);
    CHECK(len == 200);
    EXPECT(shmq_recv_copy(s, big, sizeof big, &len, 0), 0);
    CHECK(len == 200);
    EXPECT(shmq_recv_copy(s, big, sizeof big, NULL, 0), -EINVAL);

    /* Reservation protocol. */
    while (shmq_recv_copy(s, big, sizeof big, &len, 0) == 0) {}
    EXPECT(shmq_commit(p, 1), -EINVAL);
    EXPECT(shmq_abort(p), -EINVAL);
    EXPECT(shmq_reserve(p, 100, NULL), -EINVAL);
    EXPECT(shmq_reserve(p, 300, &buf), -EMSGSIZE);
    EXPECT(shmq_reserve(p, 100, &buf), 0);
    EXPECT(shmq_reserve(p, 100, &buf), -EBUSY);
    EXPECT(shmq_publish(p, big, 1, 0), -EBUSY);
    memcpy(buf, "abc", 3);
    /* A commit past the reservation, or a type with the top bit, publishes
     * nothing and keeps the reservation. */
    EXPECT(shmq_commit(p, 300), -EMSGSIZE);
    EXPECT(shmq_commit_typed(p, 3, 0x80000000u), -EINVAL);
    EXPECT(shmq_publish(p, big, 1, 0), -EBUSY);
    EXPECT(shmq_commit_typed(p, 3, 42), 0);
    EXPECT(shmq_reserve(p, 50, &buf), 0);
    EXPECT(shmq_abort(p), 0);
    EXPECT(shmq_recv(s, &m, -1), 0);
    CHECK(m.len == 3 && memcmp(m.data, "abc", 3) == 0 && m.msg_type == 42);
    uint64_t abc_seq = m.seq;
    EXPECT(shmq_try_recv(s, &m), -EAGAIN); /* the aborted one is skipped */

    /* Replay from a sequence number; durable subscribers. */
    shmq_subscriber *r = NULL, *d = NULL, *d2 = NULL;
    EXPECT(shmq_subscribe_at(t, 9, 0, &r), -EINVAL);
    EXPECT(shmq_subscribe_at(NULL, SHMQ_FROM_SEQ, 0, &r), -EINVAL);
    EXPECT(shmq_subscribe_durable(t, "no spaces", &d), -EINVAL);
    EXPECT(shmq_subscribe_durable(t, NULL, &d), -EINVAL);
    EXPECT(shmq_unsubscribe_durable(t, "nobody"), -ENOENT);
    EXPECT(shmq_subscribe_durable(t, "dur", &d), -EUSERS); /* the one slot is s's */
    shmq_subscriber_close(s);
    s = NULL;
    EXPECT(shmq_subscribe_durable(t, "dur", &d), 0);
    EXPECT(shmq_subscribe_durable(t, "dur", &d2), -EBUSY);
    EXPECT(shmq_unsubscribe_durable(t, "dur"), -EBUSY);
    EXPECT(shmq_publish(p, "d1", 2, 0), 0);
    EXPECT(shmq_publish(p, "d2", 2, 0), 0);
    EXPECT(shmq_recv(d, &m, -1), 0);
    CHECK(m.len == 2 && memcmp(m.data, "d1", 2) == 0);
    EXPECT(shmq_release(d), 0);   /* acknowledged */
    shmq_subscriber_close(d);     /* detached; the next one resumes */
    EXPECT(shmq_subscribe_durable(t, "dur", &d), 0);
    EXPECT(shmq_recv(d, &m, -1), 0);
    CHECK(m.len == 2 && memcmp(m.data, "d2", 2) == 0);
    shmq_subscriber_close(d);
    EXPECT(shmq_unsubscribe_durable(t, "dur"), 0);
    EXPECT(shmq_subscribe_at(t, SHMQ_FROM_SEQ, abc_seq, &r), 0);
    EXPECT(shmq_recv(r, &m, -1), 0);
    CHECK(m.seq == abc_seq && m.len == 3 && memcmp(m.data, "abc", 3) == 0);
    CHECK(m.timestamp_ns == 0); /* no timestamps unless asked for */
    shmq_subscriber_close(r);
    CHECK(shmq_now_ns() > 0);

    /* Timestamps: opt-in; replay by time needs them. */
    EXPECT(shmq_subscribe_at(t, SHMQ_FROM_TIME, 0, &r), -EOPNOTSUPP);
    shmq_options topts = opts;
    topts.flags = SHMQ_FLAG_TIMESTAMPS | SHMQ_FLAG_NO_TIMESTAMPS;
    shmq_topic *tt = NULL, *tt2 = NULL;
    EXPECT(shmq_topic_create("ts", &topts, &tt), -EINVAL);
    topts.flags = SHMQ_FLAG_TIMESTAMPS;
    EXPECT(shmq_topic_create("ts", &topts, &tt), 0);
    shmq_options any;
    shmq_options_init_any(&any);
    any.flags = SHMQ_FLAG_NO_TIMESTAMPS;
    EXPECT(shmq_topic_open("ts", &any, &tt2), -EINVAL); /* it has timestamps */
    any.flags = SHMQ_FLAG_TIMESTAMPS;
    EXPECT(shmq_topic_open("ts", &any, &tt2), 0);
    shmq_topic_close(tt2);
    shmq_producer *tp = NULL;
    EXPECT(shmq_producer_open(tt, &tp), 0);
    uint64_t before = shmq_now_ns();
    EXPECT(shmq_publish(tp, "t1", 2, 0), 0);
    EXPECT(shmq_subscribe_at(tt, SHMQ_FROM_TIME, before, &r), 0);
    EXPECT(shmq_recv(r, &m, -1), 0);
    CHECK(m.len == 2 && m.timestamp_ns >= before && m.timestamp_ns <= shmq_now_ns());
    shmq_subscriber_close(r);
    shmq_producer_close(tp);
    shmq_topic_close(tt);
    EXPECT(shmq_topic_unlink("ts"), 0);

    /* Consumer groups: two members share the messages. */
    shmq_subscriber *g1 = NULL, *g2 = NULL;
    EXPECT(shmq_subscribe_group(t, "bad name", &g1), -EINVAL);
    EXPECT(shmq_remove_group(t, "none"), -ENOENT);
    shmq_options gopts = opts;
    gopts.max_subscribers = 3;
    shmq_topic *gt = NULL;
    EXPECT(shmq_topic_create("g", &gopts, &gt), 0);
    shmq_producer *gp = NULL;
    EXPECT(shmq_producer_open(gt, &gp), 0);
    EXPECT(shmq_subscribe_group(gt, "grp", &g1), 0);
    EXPECT(shmq_subscribe_group(gt, "grp", &g2), 0);
    EXPECT(shmq_publish(gp, "j1", 2, 0), 0);
    EXPECT(shmq_publish(gp, "j2", 2, 0), 0);
    EXPECT(shmq_try_recv(g1, &m), 0);
    CHECK(m.len == 2 && memcmp(m.data, "j1", 2) == 0);
    EXPECT(shmq_try_recv(g2, &m), 0);
    CHECK(m.len == 2 && memcmp(m.data, "j2", 2) == 0);
    EXPECT(shmq_try_recv(g2, &m), -EAGAIN);
    EXPECT(shmq_remove_group(gt, "grp"), -EBUSY);
    shmq_subscriber_close(g1);
    shmq_subscriber_close(g2);
    EXPECT(shmq_remove_group(gt, "grp"), 0);
    EXPECT(shmq_flush(gp), 0);
    EXPECT(shmq_flush(NULL), -EINVAL);
    shmq_producer_close(gp);
    shmq_topic_close(gt);
    EXPECT(shmq_topic_unlink("g"), 0);

    /* End of stream: messages before the close, then -EPIPE from every
     * receive, blocking ones included; a new message reopens the stream;
     * close-on-exit: -EPIPE once the last producer is gone. */
    shmq_options eo;
    shmq_options_init(&eo);
    eo.capacity = 4096;
    eo.max_message = 256;
    shmq_topic *et;
    EXPECT(shmq_topic_create("eos", &eo, &et), 0);
    shmq_subscriber *es;
    shmq_producer *ep;
    EXPECT(shmq_subscribe(et, &es), 0);
    EXPECT(shmq_producer_open(et, &ep), 0);
    EXPECT(shmq_close_stream(NULL), -EINVAL);
    EXPECT(shmq_publish(ep, "a", 1, 0), 0);
    EXPECT(shmq_close_stream(ep), 0);
    shmq_msg em;
    EXPECT(shmq_recv(es, &em, -1), 0);
    CHECK(em.len == 1 && ((const char *)em.data)[0] == 'a');
    EXPECT(shmq_try_recv(es, &em), -EPIPE);
    EXPECT(shmq_recv(es, &em, -1), -EPIPE);
    EXPECT(shmq_recv(es, &em, 1000000), -EPIPE);
    CHECK(strstr(shmq_strerror(-EPIPE), "end of stream") != NULL);
    EXPECT(shmq_publish(ep, "b", 1, 0), 0);
    EXPECT(shmq_recv(es, &em, -1), 0);
    CHECK(em.len == 1 && ((const char *)em.data)[0] == 'b');
    EXPECT(shmq_try_recv(es, &em), -EAGAIN);
    shmq_producer_close(ep);
    shmq_subscriber_close(es);
    shmq_topic_close(et);
    EXPECT(shmq_topic_unlink("eos"), 0);
    eo.flags = SHMQ_FLAG_CLOSE_ON_EXIT;
    EXPECT(shmq_topic_create("eox", &eo, &et), 0);
    EXPECT(shmq_subscribe(et, &es), 0);
    EXPECT(shmq_try_recv(es, &em), -EAGAIN); /* never had a producer: open */
    EXPECT(shmq_producer_open(et, &ep), 0);
    EXPECT(shmq_publish(ep, "c", 1, 0), 0);
    shmq_producer_close(ep);
    EXPECT(shmq_recv(es, &em, -1), 0);
    EXPECT(shmq_recv(es, &em, -1), -EPIPE); /* its last producer is gone */
    shmq_subscriber_close(es);
    shmq_topic_close(et);
    EXPECT(shmq_topic_unlink("eox"), 0);

    /* Dead letters: delivery counts, reject, group settings. */
    shmq_options jo;
    shmq_options_init(&jo);
    jo.capacity = 65536;
    jo.max_message = 256;
    shmq_topic *jt = NULL;
    shmq_subscriber *jw = NULL, *jplain = NULL, *jx = NULL;
    shmq_producer *jp = NULL;
    shmq_msg jm;
    EXPECT(shmq_topic_create("jobs", &jo, &jt), 0);
    EXPECT(shmq_subscribe_group_dlq(jt, "w", 2, "jobs.dead", 1, &jw), 0);
    EXPECT(shmq_subscribe_group_dlq(jt, "w", 5, "jobs.dead", 0, &jx), -EEXIST); /* another max */
    EXPECT(shmq_subscribe_group_dlq(jt, "w", 2, "nowhere", 0, &jx), -ENOENT);   /* no such topic */
    EXPECT(shmq_subscribe_group_dlq(NULL, "w", 2, NULL, 0, &jx), -EINVAL);
    EXPECT(shmq_subscribe_group(jt, "plain", &jplain), 0);
    EXPECT(shmq_msg_deliveries(jw), -EINVAL); /* nothing held */
    EXPECT(shmq_reject(jw), -EINVAL);
    EXPECT(shmq_reject(NULL), -EINVAL);
    EXPECT(shmq_producer_open(jt, &jp), 0);
    EXPECT(shmq_publish(jp, "p", 1, 0), 0);
    EXPECT(shmq_publish(jp, "q", 1, 0), 0);
    EXPECT(shmq_recv(jw, &jm, -1), 0);
    CHECK(shmq_msg_deliveries(jw) == 1);
    EXPECT(shmq_reject(jw), 0); /* to jobs.dead; the group goes on */
    EXPECT(shmq_recv(jw, &jm, -1), 0);
    CHECK(jm.len == 1 && ((const char *)jm.data)[0] == 'q');
    EXPECT(shmq_recv(jplain, &jm, -1), 0);
    EXPECT(shmq_reject(jplain), -EOPNOTSUPP); /* no dead-letter topic: put back */
    EXPECT(shmq_recv(jplain, &jm, -1), 0);
    CHECK(jm.len == 1 && ((const char *)jm.data)[0] == 'p');
    /* The dead letter waits for its keeper, envelope first. */
    shmq_topic *dt = NULL;
    shmq_subscriber *dk = NULL;
    EXPECT(shmq_topic_open("jobs.dead", NULL, &dt), 0);
    EXPECT(shmq_subscribe_durable(dt, "dead-letters", &dk), 0);
    EXPECT(shmq_recv(dk, &jm, 0), 0);
    CHECK(jm.len == 73 && memcmp(jm.data, "SHDL", 4) == 0 && ((const char *)jm.data)[72] == 'p');
    shmq_subscriber_close(dk);
    shmq_topic_close(dt);
    shmq_producer_close(jp);
    shmq_subscriber_close(jw);
    shmq_subscriber_close(jplain);
    shmq_topic_close(jt);
    EXPECT(shmq_topic_unlink("jobs"), 0);
    EXPECT(shmq_topic_unlink("jobs.dead"), 0);

    /* strerror never returns NULL. */
    int codes[] = {0, -EAGAIN, -ETIMEDOUT, -EINVAL, -ENOENT, -EEXIST, -EMSGSIZE, -ENOSPC, -EUSERS, -EBUSY,
                   -EBADMSG, -EPROTO, -EACCES, -EROFS, -ECONNRESET, -ECANCELED, -ESTALE, -EFAULT, -ENOLCK,
                   -EMFILE, -EPIPE, -12345, 12345};
    /* Each condition has its own code: a full slot table is not a full disk. */
    CHECK(strcmp(shmq_strerror(-EUSERS), shmq_strerror(-ENOSPC)) != 0);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) CHECK(shmq_strerror(codes[i]) != NULL);

    /* Closing NULL is a no-op; closing the topic first is fine. */
    shmq_topic_close(NULL);
    shmq_producer_close(NULL);
    shmq_subscriber_close(NULL);
    shmq_topic_close(t);
    EXPECT(shmq_publish(p, "x", 1, 0), 0);
    shmq_producer_close(p);
    EXPECT(shmq_topic_unlink("t"), 0);
    EXPECT(shmq_topic_unlink("t"), -ENOENT);

    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("DONE all error paths behave\n");
    return 0;
}
