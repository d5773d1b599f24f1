// shmq.hpp: a small RAII wrapper over shmq.h for C++11 and later.
// Errors throw shmq::error (a std::runtime_error carrying the code).
#ifndef SHMQ_HPP
#define SHMQ_HPP

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include "shmq.h"

namespace shmq {

struct error : std::runtime_error {
    int code;
    error(const std::string &what, int rc) : std::runtime_error(what + ": " + shmq_strerror(rc)), code(rc) {}
};

inline void check(int rc, const char *what) {
    if (rc != 0) throw error(what, rc);
}

class topic {
  public:
    static topic open(const std::string &name, const shmq_options *opts = nullptr) {
        shmq_topic *t = nullptr;
        check(shmq_topic_open(name.c_str(), opts, &t), "shmq_topic_open");
        return topic(t);
    }
    static topic open_or_create(const std::string &name, const shmq_options &opts) {
        shmq_topic *t = nullptr;
        check(shmq_topic_open_or_create(name.c_str(), &opts, &t), "shmq_topic_open_or_create");
        return topic(t);
    }
    topic(topic &&o) noexcept : t_(o.t_) { o.t_ = nullptr; }
    topic(const topic &) = delete;
    topic &operator=(const topic &) = delete;
    ~topic() { shmq_topic_close(t_); }
    shmq_topic *get() const { return t_; }

  private:
    explicit topic(shmq_topic *t) : t_(t) {}
    shmq_topic *t_;
};

class producer {
  public:
    explicit producer(const topic &t) { check(shmq_producer_open(t.get(), &p_), "shmq_producer_open"); }
    producer(const producer &) = delete;
    producer &operator=(const producer &) = delete;
    ~producer() { shmq_producer_close(p_); }
    void publish(const void *data, size_t len, int64_t timeout_ns = -1) {
        check(shmq_publish(p_, data, len, timeout_ns), "shmq_publish");
    }
    // Publishes n messages, one claim and one commit per run of them.
    // Returns how many went out: n, or fewer when the ring stayed full
    // past timeout_ns; other errors throw.
    size_t publish_batch(const shmq_buf *msgs, size_t n, int64_t timeout_ns = -1) {
        size_t sent = 0;
        int rc = shmq_publish_batch(p_, msgs, n, timeout_ns, &sent);
        if (rc != 0 && rc != -EAGAIN && rc != -ETIMEDOUT) throw error("shmq_publish_batch", rc);
        return sent;
    }
    // Zero-copy: fill(buf) writes the message in place, returns its length.
    template <class F> void publish_in_place(size_t max_len, F fill) {
        void *buf = nullptr;
        check(shmq_reserve(p_, max_len, &buf), "shmq_reserve");
        size_t len = fill(static_cast<unsigned char *>(buf));
        check(shmq_commit(p_, len), "shmq_commit");
    }

  private:
    shmq_producer *p_ = nullptr;
};

// A received message; releases itself when it goes out of scope.
class message {
  public:
    message(message &&o) noexcept : s_(o.s_), m_(o.m_) { o.s_ = nullptr; }
    message(const message &) = delete;
    ~message() {
        if (s_) shmq_release(s_);
    }
    const unsigned char *data() const { return static_cast<const unsigned char *>(m_.data); }
    size_t size() const { return m_.len; }
    uint64_t seq() const { return m_.seq; }
    uint64_t lost() const { return m_.lost; }
    uint64_t timestamp_ns() const { return m_.timestamp_ns; }

  private:
    friend class subscriber;
    message(shmq_subscriber *s, const shmq_msg &m) : s_(s), m_(m) {}
    shmq_subscriber *s_;
    shmq_msg m_;
};

class subscriber {
  public:
    explicit subscriber(const topic &t) { check(shmq_subscribe(t.get(), &s_), "shmq_subscribe"); }
    subscriber(const subscriber &) = delete;
    subscriber &operator=(const subscriber &) = delete;
    ~subscriber() { shmq_subscriber_close(s_); }
    // Waits up to timeout_ns (negative: forever); throws on timeout.
    message recv(int64_t timeout_ns = -1) {
        shmq_msg m;
        check(shmq_recv(s_, &m, timeout_ns), "shmq_recv");
        return message(s_, m);
    }

  private:
    shmq_subscriber *s_ = nullptr;
};

}  // namespace shmq

#endif  // SHMQ_HPP
