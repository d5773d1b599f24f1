//! Reading ahead: receive many messages before releasing any, then release
//! them in order through one position (pipelined acknowledgement).
//!
//! A subscriber that acknowledges after slow work done elsewhere (a
//! network send, a database write, a Python view still alive) cannot
//! release each message before it takes the next. Reading ahead moves the
//! subscriber's private cursor past each message and leaves the cursor in
//! the slot, the one the producer reads, where it was; [`Subscriber::release_through`]
//! later publishes a position, releasing every message before it at once.
//!
//! What it holds back: on a `Block` topic everything read ahead and not
//! yet released stays in the ring, so a producer waits for room once the
//! unreleased bytes fill it (as it waits for any slow subscriber), and a
//! durable subscriber that dies resumes at the first unreleased message.
//! Messages received the ordinary way while read-ahead ones are held are
//! held with them, until a `release_through` at or past them.
//!
//! It adds no ordering: the publish is the Release store of the cursor
//! every release makes (loom: `cursor_relaxed`), and the frames read ahead
//! are read exactly as `drain` reads a batch before its one publish.

use super::Subscriber;
use crate::error::RecvError;
use crate::layout::Policy;
use crate::ring::Wait;
use crate::subscriber::RawMessage;

/// Where a message read ahead ends: pass it to
/// [`Subscriber::release_through`] to release that message and every one
/// before it. Ordered by position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ack {
    next: u64,
    next_seq: u64,
}

impl Ack {
    /// The position just past the message (where the next one starts).
    pub fn position(&self) -> u64 {
        self.next
    }
    /// The sequence number expected at [`Ack::position`].
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
    /// For language bindings: an ack from its two parts, as
    /// [`Ack::position`] and [`Ack::next_seq`] gave them. Pass only parts
    /// of an ack this subscriber returned: `release_through` refuses a
    /// position it has not read up to, but cannot tell a frame boundary.
    pub fn from_parts(position: u64, next_seq: u64) -> Ack {
        Ack { next: position, next_seq }
    }
}

impl Subscriber {
    /// Whether this subscriber can read ahead ([`Subscriber::recv_ahead_raw`]):
    /// a plain or durable subscriber of a `Block` topic.
    pub fn can_read_ahead(&self) -> bool {
        self.ring.layout.policy == Policy::Block && !self.st.is_group_member()
    }

    /// Receives the next message without releasing it, waiting as `wait`
    /// says (see [`Subscriber::recv_raw`]); it stays in the ring, readable
    /// through `data`, until [`Subscriber::release_through`] is called with
    /// its `ack` or a later one. Messages read ahead are released in order
    /// only. A message held by `recv_raw` is released first.
    ///
    /// Errors as [`Subscriber::recv_raw`], and [`RecvError::NoReadAhead`]
    /// for a group member or an `Overwrite` subscriber.
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic, Wait};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-ahead-{}", std::process::id()));
    /// let topic = Topic::create("acks", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut sub = topic.subscribe()?;
    /// let mut p = topic.producer()?;
    /// for i in 0..3u8 {
    ///     p.publish(&[i])?;
    /// }
    /// let mut acks = Vec::new();
    /// for _ in 0..3 {
    ///     let (byte, ack) = sub.recv_ahead(Wait::Now, |m| m[0])?;
    ///     acks.push((byte, ack)); // e.g. sent over the network, not yet confirmed
    /// }
    /// assert_eq!(acks.iter().map(|a| a.0).collect::<Vec<_>>(), [0, 1, 2]);
    /// // Confirmed through the second: the first two are released.
    /// assert!(sub.release_through(acks[1].1));
    /// assert_eq!(topic.info().subscribers[0].cursor, acks[1].1.position());
    /// # drop((sub, p, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_ahead<R>(&mut self, wait: Wait, f: impl FnOnce(&[u8]) -> R) -> Result<(R, Ack), RecvError> {
        let (m, ack) = self.recv_ahead_raw(wait)?;
        // `recv_ahead_raw` returned a committed payload of `m.len` bytes
        // inside the mapping, which no producer writes until it is released
        // through `ack`; that takes `&mut self`, excluded until `f` returns.
        // SAFETY: in bounds, committed, and not written while `f` reads it.
        let data = unsafe { std::slice::from_raw_parts(m.data, m.len) };
        Ok((f(data), ack))
    }

    /// [`Subscriber::recv_ahead`] for language bindings: the payload
    /// pointer stays valid until the message is released through its
    /// [`Ack`] (or a later one), or the subscriber is dropped.
    pub fn recv_ahead_raw(&mut self, wait: Wait) -> Result<(RawMessage, Ack), RecvError> {
        if !self.can_read_ahead() {
            return Err(RecvError::NoReadAhead);
        }
        let view = self.take_raw_view(wait)?;
        self.ring.consume_ahead(&mut self.st, &view);
        let raw = self.raw(&view);
        Ok((raw, Ack { next: view.next, next_seq: view.seq.wrapping_add(1) }))
    }

    /// Releases every message read ahead up to and including the one
    /// `ack` came with, publishing the cursor once. `false`, and nothing
    /// released, if that is already released or `ack` is from another
    /// subscriber's future (past this subscriber's cursor).
    pub fn release_through(&mut self, ack: Ack) -> bool {
        self.ring.release_through(&mut self.st, ack.next, ack.next_seq)
    }

    /// Position the producer sees for this subscriber: the first message
    /// not yet released (equal to [`Subscriber::position`] unless messages
    /// read ahead are held).
    pub fn released_position(&self) -> u64 {
        self.st.released_position()
    }
}
