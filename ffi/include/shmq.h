/*
 * shmq.h: C API of shmq, a lock-free shared-memory message queue for
 * processes on one Linux host. C99; usable from C++ as is.
 *
 * Conventions
 *  - Every int-returning function returns 0 on success or a negative errno
 *    value; shmq_strerror(rc) describes it. Codes per function are below.
 *  - NULL or invalid arguments give -EINVAL; nothing here aborts or
 *    unwinds into your program.
 *  - Timeouts are in nanoseconds: negative waits forever, 0 does not wait.
 *  - Ownership: shmq_topic_* open/create allocate a shmq_topic that
 *    shmq_topic_close frees; likewise shmq_producer_open / close and
 *    shmq_subscribe / shmq_subscriber_close. Producers and subscribers stay
 *    valid after their topic handle is closed.
 *  - Threads: a shmq_topic may be shared by threads. A shmq_producer or
 *    shmq_subscriber must be used by one thread at a time (it may move
 *    between threads); make one per thread.
 *  - The topic directory is opts->dir, else $SHMQ_DIR, else /dev/shm/shmq.
 *
 * Link: -lshmq (shared or static; static also needs -lpthread -ldl -lm).
 */
#ifndef SHMQ_H
#define SHMQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMQ_POLICY_BLOCK 0     /* lossless: producers wait for the slowest subscriber */
#define SHMQ_POLICY_OVERWRITE 1 /* lossy: producers never wait; laggards are told what they lost */
#define SHMQ_ANY (-1)           /* for shmq_topic_open: accept the topic's value */
#define SHMQ_FLAG_NO_TIMESTAMPS 1u /* messages carry no publish time: the default (for open: require it) */
#define SHMQ_FLAG_TIMESTAMPS 2u    /* stamp each message with its publish time (a clock read per publish;
                                      needed for SHMQ_FROM_TIME) */
#define SHMQ_FLAG_CLOSE_ON_EXIT 4u /* the stream counts as closed once its last producer is gone (exit,
                                      crash or SIGKILL alike); for open: require it */

typedef struct shmq_topic shmq_topic;
typedef struct shmq_producer shmq_producer;
typedef struct shmq_subscriber shmq_subscriber;

/* Topic settings. Fill with shmq_options_init (defaults, for create) or
 * shmq_options_init_any (requires nothing, for open), then change fields.
 * For open, 0 / SHMQ_ANY fields are not checked; the others must match. */
typedef struct shmq_options {
    uint32_t size;            /* sizeof(shmq_options); set by the init functions */
    uint32_t max_message;     /* largest message in bytes (default 65536) */
    uint64_t capacity;        /* ring bytes, rounded up to a power of two (default 1 MiB) */
    uint32_t max_subscribers; /* subscriber slots (default 64) */
    int policy;               /* SHMQ_POLICY_BLOCK (default) or SHMQ_POLICY_OVERWRITE */
    int multi_producer;       /* 1: several producers may publish at once (Block only) */
    uint32_t mode;            /* file mode of a created topic (default 0600) */
    uint32_t flags;           /* SHMQ_FLAG_* bits (default 0) */
    const char *dir;          /* topic directory, or NULL */
    uint32_t liveness_ms;     /* a dead multi-producer's claim is skipped after this (0: 1000) */
    uint32_t durable_expiry_ms; /* a detached durable subscriber is dropped after this (0: never) */
} shmq_options;

/* A received message. */
typedef struct shmq_msg {
    const void *data;      /* payload; valid until shmq_release or the next receive */
    size_t len;            /* payload length */
    uint64_t timestamp_ns; /* publish time, CLOCK_MONOTONIC */
    uint64_t seq;          /* sequence number (dense on single-producer topics) */
    uint64_t position;     /* absolute byte position in the topic's stream */
    uint64_t lost;         /* messages lost just before this one (Overwrite topics) */
    uint32_t msg_type;     /* user type given at publish */
} shmq_msg;

void shmq_options_init(shmq_options *opts);
void shmq_options_init_any(shmq_options *opts);

/* -EINVAL bad name/options (a mode beyond 0777, max_message 0, an empty
 * dir), -EEXIST, -ENOSPC the directory's file system is full, -EACCES
 * (also: a topic directory another user owns, or others may write to
 * without the sticky bit), -ENOLCK the file system has no open file
 * description locks (liveness needs them: use /dev/shm). */
int shmq_topic_create(const char *name, const shmq_options *opts, shmq_topic **out);
/* opts may be NULL (any settings, default directory). -EINVAL bad name or
 * settings differ, -ENOENT, -EBADMSG corrupt file or not a regular file
 * (a FIFO or a directory under the name: never waited on), -EPROTO layout
 * version (a topic of another shmq version: remove and recreate it),
 * -EAGAIN still being created, -EACCES symlink / foreign owner / unsafe
 * directory, -ENOLCK no open file description locks. */
int shmq_topic_open(const char *name, const shmq_options *opts, shmq_topic **out);
/* Opens, or creates with opts. Errors of both. */
int shmq_topic_open_or_create(const char *name, const shmq_options *opts, shmq_topic **out);
void shmq_topic_close(shmq_topic *topic);
/* Removes the name from $SHMQ_DIR (or dir). -EINVAL, -ENOENT, -EACCES. */
int shmq_topic_unlink(const char *name);
int shmq_topic_unlink_in(const char *dir, const char *name);

/* -EINVAL, -EBUSY a live producer holds this single-producer topic (in
 * this process or another, in any pid namespace), -EMFILE out of file
 * descriptors (each producer and subscriber holds one: its liveness lock). */
int shmq_producer_open(shmq_topic *topic, shmq_producer **out);
void shmq_producer_close(shmq_producer *producer);
/* Copies data in. -EMSGSIZE too large, -ETIMEDOUT still full after the
 * timeout (Block topics), -EAGAIN full with timeout 0, -EBUSY a
 * reservation is outstanding, -ECANCELED (multi-producer topics only) this
 * process stalled past the liveness timeout while it looked dead and its
 * claim was skipped: nothing was published, publish again. */
int shmq_publish(shmq_producer *producer, const void *data, size_t len, int64_t timeout_ns);
/* Never waits: -EAGAIN when full. */
int shmq_try_publish(shmq_producer *producer, const void *data, size_t len);
/* One message of a batch. */
typedef struct shmq_buf {
    const void *data; /* its bytes (may be NULL when len is 0) */
    size_t len;
} shmq_buf;
/* Publishes n messages, in order, with one claim and one commit per run of
 * them that fits one largest frame (for small messages several times
 * cheaper per message than shmq_publish; subscribers receive them one by
 * one), waiting up to timeout_ns in all for room. *published (if not NULL)
 * gets how many leading messages went out. 0 all of them; -ETIMEDOUT (or
 * -EAGAIN with timeout 0) the ring stayed full; -EINVAL (nothing
 * published) NULL producer, NULL msgs with n > 0, or an entry with NULL
 * data and a length; -EBUSY a reservation is outstanding; -EMSGSIZE a
 * message too large (those before it went out); -ECANCELED as above. */
int shmq_publish_batch(shmq_producer *producer, const shmq_buf *msgs, size_t n, int64_t timeout_ns,
                       size_t *published);
/* Zero-copy: *buf points to len bytes inside the ring; write the message
 * there, then shmq_commit (or shmq_abort). Waits for room. -EMSGSIZE,
 * -EBUSY a reservation is already outstanding. */
int shmq_reserve(shmq_producer *producer, size_t len, void **buf);
/* As shmq_reserve, without waiting: -EAGAIN when full. */
int shmq_try_reserve(shmq_producer *producer, size_t len, void **buf);
/* Publishes the first len bytes of the reservation. -EINVAL none
 * outstanding (or, for shmq_commit_typed, a type not below 2^31),
 * -EMSGSIZE len exceeds what was reserved, -ECANCELED as for shmq_publish.
 * After -EMSGSIZE or -EINVAL for a type the reservation stays outstanding:
 * commit again or abort. Nothing is ever published shortened. */
int shmq_commit(shmq_producer *producer, size_t len);
int shmq_commit_typed(shmq_producer *producer, size_t len, uint32_t msg_type);
/* Gives the reservation back; subscribers skip it. -EINVAL none outstanding. */
int shmq_abort(shmq_producer *producer);

/* Subscribes from the newest message. -EINVAL, -EUSERS no free slot,
 * -EMFILE out of file descriptors. */
int shmq_subscribe(shmq_topic *topic, shmq_subscriber **out);
/* from_oldest: 1 to start at the oldest message the ring holds. */
int shmq_subscribe_from(shmq_topic *topic, int from_oldest, shmq_subscriber **out);
/* Where shmq_subscribe_at starts. */
#define SHMQ_FROM_NEWEST 0 /* with the next message published */
#define SHMQ_FROM_OLDEST 1 /* at the oldest message the ring holds */
#define SHMQ_FROM_SEQ 2    /* at the first retained message with seq >= value */
#define SHMQ_FROM_TIME 3   /* at the first retained message published at or after value (shmq_now_ns clock);
                              needs a topic with SHMQ_FLAG_TIMESTAMPS, else -EOPNOTSUPP */
/* Replay: subscribes at from (SHMQ_FROM_*). -EINVAL bad from, -EUSERS, -EOPNOTSUPP (SHMQ_FROM_TIME on a topic without timestamps). */
int shmq_subscribe_at(shmq_topic *topic, int from, uint64_t value, shmq_subscriber **out);
/* Durable subscriber: its cursor lives in the topic under name (1-32
 * bytes of A-Z a-z 0-9 . _ -) and outlives the process; shmq_release
 * acknowledges. A new process with the same name resumes at the first
 * message not released (at-least-once). -EBUSY a live process holds the
 * name, -ESTALE it expired (told once; subscribe again to start afresh),
 * -EINVAL bad name, -EUSERS no free slot. Closing detaches it; on a Block
 * topic it keeps holding the producer back until it returns or is removed. */
int shmq_subscribe_durable(shmq_topic *topic, const char *name, shmq_subscriber **out);
/* Consumer group: the members of group share the stream, each message
 * goes to exactly one member; a member that dies holding a message (not
 * released) has it redelivered to another member. The group's position
 * lives in the topic and holds a Block producer back, members or not,
 * until shmq_remove_group. Block topics only (-EINVAL otherwise, and for a
 * bad name), -EUSERS no free slot. */
int shmq_subscribe_group(shmq_topic *topic, const char *group, shmq_subscriber **out);
/* Consumer group with dead letters: a message delivered max_deliveries
 * times (0: no limit) without being released moves to topic dead_letter
 * (NULL: none; created, multi-producer with a durable "dead-letters"
 * keeper, if create is non-zero), and the group goes on without it. Each
 * dead letter is a 72-byte envelope ("SHDL", reason 1 max deliveries / 2
 * rejected, seq, position, timestamp, type, deliveries, group name) and the
 * original payload. -EEXIST the group exists with another max_deliveries,
 * -ENOENT the dead-letter topic is missing, unusable, or needed but not
 * given; otherwise as shmq_subscribe_group. */
int shmq_subscribe_group_dlq(shmq_topic *topic, const char *group, uint32_t max_deliveries,
                             const char *dead_letter, int create, shmq_subscriber **out);
/* Removes a consumer group. -ENOENT none, -EBUSY live members remain. */
int shmq_remove_group(shmq_topic *topic, const char *group);
/* Removes a durable subscriber. -ENOENT none, -EBUSY a live process holds it. */
int shmq_unsubscribe_durable(shmq_topic *topic, const char *name);
/* File-backed topics: writes everything published so far to the topic's
 * file and waits until it is on disk. After a machine restart a topic is
 * recovered to its last flushed message. -EINVAL NULL, -EIO (or the msync
 * errno) on failure. */
int shmq_flush(shmq_producer *producer);
/* Typed payloads: a struct of plain data (no pointers; fixed-width fields;
 * the same layout in every language that shares the topic) is published as
 * its bytes and read in place. SHMQ_MSG_VALUE gives a pointer to the
 * message as a T, or NULL when its length is not sizeof(T) or its data is
 * not aligned for T (payloads are aligned to 32 bytes: Block in the ring,
 * Overwrite in the subscriber's copy), so a short or foreign message is
 * never read as a T:
 *
 *   struct tick { uint64_t seq; double price; uint32_t qty; uint32_t side; };
 *   struct tick t = {1, 1.0842, 100, 0};
 *   SHMQ_PUBLISH_VALUE(p, &t);
 *   const struct tick *r = SHMQ_MSG_VALUE(&msg, struct tick);
 *   if (r) use(r->price);
 *
 * Rust reads the same bytes with Message::value::<Tick>() on a #[repr(C)]
 * struct deriving bytemuck's Pod. */
#define SHMQ_PUBLISH_VALUE(producer, ptr) shmq_publish((producer), (ptr), sizeof *(ptr), -1)
#define SHMQ_MSG_VALUE(msg, T)                                                                   \
    (((msg)->len == sizeof(T) && ((uintptr_t)(msg)->data % __alignof__(T)) == 0) ? (const T *)(msg)->data \
                                                                                 : (const T *)0)
/* End of stream: closes the stream after the messages published so far.
 * Subscribers receive every one of them, then -EPIPE from every receive
 * (a sleeping one is woken), until any producer publishes again, which
 * reopens the stream. -EINVAL NULL. */
int shmq_close_stream(shmq_producer *producer);
/* CLOCK_MONOTONIC now in ns: the clock of shmq_msg.timestamp_ns. */
uint64_t shmq_now_ns(void);
void shmq_subscriber_close(shmq_subscriber *subscriber);
/* Zero-copy receive: out->data points into the ring (Block) or into the
 * subscriber's own buffer (Overwrite) until shmq_release or the next
 * receive, which releases it. -ETIMEDOUT, -EAGAIN nothing new with
 * timeout 0, -EBADMSG corrupt ring, -ECONNRESET slot reclaimed, -EPIPE end
 * of stream (closed by shmq_close_stream, `shmq close`, or its last producer
 * gone on a SHMQ_FLAG_CLOSE_ON_EXIT topic; every message before it was
 * received). */
int shmq_recv(shmq_subscriber *subscriber, shmq_msg *out, int64_t timeout_ns);
/* Never waits: -EAGAIN when nothing is new. */
int shmq_try_recv(shmq_subscriber *subscriber, shmq_msg *out);
/* Event loops (epoll, poll, libuv, asyncio) wait on shmq beside sockets
 * with a descriptor: an eventfd, owned by the subscriber (closed by
 * shmq_subscriber_close; do not close or read it yourself), the same every
 * call. It becomes readable (POLLIN) once shmq_subscriber_arm returned 0
 * and a message may be waiting; no thread of yours waits (a waker thread
 * per process watches every armed subscriber: futex_waitv). The loop:
 *
 *   int fd = shmq_subscriber_fd(s);          // once; add to your poll set
 *   for (;;) {
 *       while (shmq_try_recv(s, &m) == 0) handle(&m);   // until -EAGAIN
 *       if (shmq_subscriber_arm(s) == 1) continue;      // came meanwhile
 *       poll(...fd, POLLIN...);                         // with your sockets
 *   }
 *
 * It may also become readable with nothing to receive (at least every
 * 50 ms while armed, so dead peers are looked for): receive, then arm
 * again. Negative errno if the eventfd cannot be made; -EINVAL NULL. */
int shmq_subscriber_fd(shmq_subscriber *subscriber);
/* Releases the message from the last receive, clears the descriptor and
 * arms it: 1 a message is waiting now (receive it; nothing armed), 0 armed
 * (wait for the descriptor). Errors as shmq_recv (-EBADMSG, -ECONNRESET),
 * and -EMFILE: no descriptor left for the eventfd (nothing changed). */
int shmq_subscriber_arm(shmq_subscriber *subscriber);
/* Releases the last received message. -EINVAL none held. */
int shmq_release(shmq_subscriber *subscriber);
/* How many times the message from the last receive was delivered: 1, or
 * more for a consumer group message redelivered after its members died.
 * -EINVAL no message held. */
int64_t shmq_msg_deliveries(shmq_subscriber *subscriber);
/* Moves the message from the last receive to the group's dead-letter topic
 * at once (waiting for room) and releases it: 0. -EINVAL no message held,
 * -EOPNOTSUPP no dead-letter topic (the message is put back; the next
 * receive returns it again). */
int shmq_reject(shmq_subscriber *subscriber);
/* Reading ahead (pipelined acknowledgement), for acking after slow work
 * elsewhere (a network send, a database write): where a message read ahead
 * ends. Pass it back unchanged. */
typedef struct shmq_ack {
    uint64_t position; /* just past the message */
    uint64_t next_seq; /* sequence number expected there */
} shmq_ack;
/* Receives like shmq_recv, but the next receive does not release the
 * message: its data stays valid, and in the ring, until
 * shmq_release_through with *ack or a later ack. Unreleased messages hold a
 * Block producer back once they fill the ring; a durable subscriber that
 * dies resumes at its first unreleased one. Plain and durable subscribers
 * of Block topics; -EOPNOTSUPP for group members and Overwrite
 * subscribers. Other errors as shmq_recv. */
int shmq_recv_ahead(shmq_subscriber *subscriber, shmq_msg *out, shmq_ack *ack, int64_t timeout_ns);
/* Releases every message read ahead up to and including the one ack came
 * with (one cursor publish). -EINVAL NULL, already released, or not an ack
 * this subscriber returned. */
int shmq_release_through(shmq_subscriber *subscriber, const shmq_ack *ack);
/* Copies the next message into buf and releases it; *len gets its length.
 * -EMSGSIZE if it does not fit (*len tells the size needed; the message
 * stays for the next receive), else as shmq_recv. */
int shmq_recv_copy(shmq_subscriber *subscriber, void *buf, size_t cap, size_t *len, int64_t timeout_ns);

/* A static description of a return code; never NULL. */
const char *shmq_strerror(int rc);

/* For tests: writes sizeof/offsetof values of this ABI (7 values). */
int shmq_abi_layout(uint64_t *out, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* SHMQ_H */
