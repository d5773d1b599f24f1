//! Async waiting (cargo feature `async`): [`Subscriber::recv_async`],
//! [`Producer::publish_async`] and [`Producer::reserve_async`], a
//! [`MessageStream`] of owned messages, and a readiness descriptor for event
//! loops ([`Subscriber::readiness_fd`], C `shmq_subscriber_fd`). No runtime
//! is assumed: the futures are woken through `std::task::Waker`, so they
//! run under tokio, smol, async-std or a hand-written executor alike.
//!
//! # How a wait works
//!
//! While messages flow, an async receive is a `try_recv`: it reads the ring
//! and returns, with no system call and no allocation. Only when the ring
//! is empty does it *park*, through the same handshake a blocking `recv`
//! sleeps with ([`Ring::park_data`](crate::ring::Ring::park_data)): it
//! counts itself among the topic's data waiters, issues the heavy half of
//! the fence and looks once more; a producer that commits after that sees
//! the count and bumps the topic's futex word and wakes it (as it would a
//! sleeping process; nothing changes on the publish path, which costs
//! nothing extra while nobody waits). So the async path adds no ordering
//! to the shared-memory protocol: loom's `subscriber_sleep_never_misses_a_wake`
//! and `producer_sleep_never_misses_a_release` check the handshake both
//! paths share.
//!
//! What is new is who sleeps. Instead of the task's thread, a **waker
//! thread** sleeps on the futex words of every parked wait in the process
//! at once (`futex_waitv`, Linux 5.16+, up to 128 words per call, one of
//! them the thread's own control word, bumped when a wait is added). When
//! a word moves, the thread ends every wait parked on it: it undoes their
//! waiter counts and wakes their tasks (or signals their eventfds), which
//! look at the ring again and park again if they lost the race. Waits on
//! one word share one entry in the call, so a thousand subscribers of one
//! topic cost the thread one word. Past 127 distinct words a second thread
//! starts (one per 127 topics with a parked wait); a thread with nothing to
//! watch for 100 ms exits. Kernels without `futex_waitv` get one thread
//! per word.
//!
//! As a blocking wait sleeps in slices of 50 ms to look for dead peers, a
//! parked wait is ended after 50 ms (`set_liveness_slice`) even if its word did not move, so its
//! task re-runs those checks (evicted, stuck multi-producer claims, dead
//! subscribers holding a Block producer, corrupt frames): 20 polls a
//! second per parked task, not a busy loop.
//!
//! # Cancel safety
//!
//! Dropping a future consumes nothing: a message is only taken when the
//! future returns it, and a parked wait is undone by the drop (its waiter
//! count and its entry go). A future polled again after it completed
//! returns [`RecvError::Empty`] or [`PublishError::Full`] (it holds no
//! subscriber or producer any more).
//!
//! # Which to use
//!
//! - [`Subscriber::recv_async`]: zero-copy, like `recv`; the message
//!   borrows the subscriber and, on a Block topic, holds the producer back
//!   until dropped. The fastest path.
//! - [`MessageStream`] (`Subscriber::into_stream`): owned messages for
//!   `while let Some(m) = stream.next().await` and stream combinators; each
//!   is copied into a pooled buffer and released at once, so a slow
//!   consumer of the stream never holds the producer.
//! - [`Subscriber::readiness_fd`]: for an epoll/mio/libuv loop that is not
//!   a Rust executor.
//!
//! [`Subscriber::recv_async`]: crate::Subscriber::recv_async
//! [`Subscriber::readiness_fd`]: crate::Subscriber::readiness_fd
//! [`Producer::publish_async`]: crate::Producer::publish_async
//! [`Producer::reserve_async`]: crate::Producer::reserve_async
//! [`RecvError::Empty`]: crate::RecvError::Empty
//! [`PublishError::Full`]: crate::PublishError::Full

mod futex;
mod publish;
mod recv;
mod registry;
mod stream;

pub use publish::{Publish, Reserve};

/// How many times an async receive or publish that finds nothing gives way
/// (wakes itself and returns `Pending`, so the executor runs other tasks
/// and polls it again) before it parks. A blocking `recv` spins about as
/// long before it sleeps, for the same reason: a message that comes within
/// a few microseconds is taken at once instead of through the waker
/// thread (a park and wake cost ~15 us one way against ~0.2 us: `examples/async_bench.rs`).
const SPIN_POLLS: u32 = 200;
pub(crate) use recv::Readiness;
pub use recv::Recv;
pub use stream::{MessageStream, OwnedMessage};

/// Sets how often a parked wait is ended, even if nothing woke it, so its
/// task looks for dead peers, evictions and stuck claims (default 50 ms, as
/// a blocking wait's sleep slice; at least 1 ms). Longer saves wake-ups of
/// idle tasks and delays that repair by as much; for the whole process.
pub fn set_liveness_slice(d: std::time::Duration) {
    registry::set_slice(d);
}

/// The number of waker threads running in this process (each watches up to
/// 127 topics with a parked wait; one exits 100 ms after its last wait).
pub fn waker_threads() -> usize {
    registry::threads()
}
