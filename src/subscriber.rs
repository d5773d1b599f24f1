//! Subscribers: each with its own cursor in the topic's subscriber table.
//!
//! On a `Block` topic a received [`Message`] borrows the payload in place
//! (zero-copy): the producer cannot reuse those bytes until the message is
//! dropped, which moves this subscriber's cursor. On an `Overwrite` topic
//! the producer may overwrite any byte at any time, so the message is copied
//! into a buffer owned by the subscriber (allocated once, at subscribe time)
//! and validated after the copy.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{RecvError, SubscribeError};
use crate::layout::Policy;
use crate::ring::{Fast, FrameView, JoinError, ReadError, Ring, SubState, Wait};
use crate::segment::Segment;
use crate::start::Start;

mod ahead;
pub use ahead::Ack;

/// Receives messages from a topic. Made by [`crate::Topic::subscribe`].
///
/// `Send`, not `Sync`. Dropping it frees its slot.
///
/// # Examples
/// ```
/// # use shmq::{Options, Topic, RecvError};
/// # use std::time::Duration;
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-s-{}", std::process::id()));
/// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
/// let mut sub = topic.subscribe()?;
/// assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
/// topic.producer()?.publish(b"tick")?;
/// let msg = sub.recv_timeout(Duration::from_secs(1))?;
/// assert_eq!(&*msg, b"tick");
/// # drop(msg); drop((sub, topic)); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscriber {
    ring: Arc<Ring<Segment>>,
    st: SubState,
    buf: crate::value::AlignedBuf,
    pending: Option<FrameView>,
    /// The frame lent through [`Subscriber::recv_raw`], not yet released.
    held: Option<FrameView>,
    /// Empty polls since the last look for a corrupt frame.
    empty_polls: u32,
    /// The readiness descriptor and its parked wait, once asked for.
    #[cfg(feature = "async")]
    readiness: Option<crate::park::Readiness>,
}

/// How many empty polls `try_recv` makes between looks at whether the
/// frame at its cursor can never come.
const EMPTY_CHECK: u32 = 4096;

/// A message lent to a language binding by [`Subscriber::recv_raw`]: the
/// payload pointer stays valid until [`Subscriber::release_raw`] or the
/// next `recv_raw`.
#[derive(Clone, Copy, Debug)]
pub struct RawMessage {
    /// Payload (in the ring on `Block` topics, in the subscriber's buffer
    /// on `Overwrite` topics).
    pub data: *const u8,
    /// Payload length.
    pub len: usize,
    /// Publish time, `CLOCK_MONOTONIC` ns.
    pub timestamp_ns: u64,
    /// Sequence number.
    pub seq: u64,
    /// Absolute byte position.
    pub position: u64,
    /// User type.
    pub msg_type: u32,
    /// Messages lost just before this one (`Overwrite`).
    pub lost: u64,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").field("slot", &self.st.slot()).field("cursor", &self.st.cursor()).finish()
    }
}

/// The subscribe error for a ring's join error (`name`: the durable
/// subscriber's or group's name, for the message).
fn join_err(ring: &Ring<Segment>, e: JoinError, name: &str) -> SubscribeError {
    match e {
        JoinError::NoFreeSlot => SubscribeError::NoFreeSlot { max: ring.layout.max_subscribers },
        JoinError::Taken(pid) => SubscribeError::NameTaken { name: name.into(), pid },
        JoinError::Expired => SubscribeError::Expired { name: name.into() },
        JoinError::Attach(why) => SubscribeError::Attach(why),
        JoinError::GroupSettings { max_deliveries } => {
            SubscribeError::GroupSettings { group: name.into(), max_deliveries }
        }
    }
}

fn read_err(e: ReadError) -> RecvError {
    match e {
        ReadError::Corrupt(r) => RecvError::Corrupt(r),
        ReadError::Evicted => RecvError::Evicted,
        ReadError::Closed => RecvError::Closed,
    }
}

impl Subscriber {
    pub(crate) fn attach(ring: Arc<Ring<Segment>>, start: Start, name: &str) -> Result<Subscriber, SubscribeError> {
        let st = ring.join(start, name.as_bytes()).map_err(|e| join_err(&ring, e, name))?;
        Ok(Subscriber::with_state(ring, st))
    }

    /// A subscriber over the slot `st` describes. Its copy buffer (for
    /// `Overwrite` topics) is the only allocation, made here.
    fn with_state(ring: Arc<Ring<Segment>>, st: SubState) -> Subscriber {
        let buf = match ring.layout.policy {
            Policy::Block => crate::value::AlignedBuf::new(0),
            // Rounded up to whole words: the copy reads whole words. 64-byte
            // aligned, so typed values can be read in the copy.
            Policy::Overwrite => crate::value::AlignedBuf::new((ring.layout.max_message as usize + 7) & !7),
        };
        Subscriber {
            ring,
            st,
            buf,
            pending: None,
            held: None,
            empty_polls: 0,
            #[cfg(feature = "async")]
            readiness: None,
        }
    }

    pub(crate) fn attach_durable(ring: Arc<Ring<Segment>>, name: &str) -> Result<Subscriber, SubscribeError> {
        Subscriber::attach_durable_from(ring, name, Start::Newest)
    }

    /// A durable subscriber that starts at `start` if it is new.
    pub(crate) fn attach_durable_from(
        ring: Arc<Ring<Segment>>,
        name: &str,
        start: Start,
    ) -> Result<Subscriber, SubscribeError> {
        let st = ring.join_durable_from(name.as_bytes(), start).map_err(|e| join_err(&ring, e, name))?;
        Ok(Subscriber::with_state(ring, st))
    }

    /// A group member with a `max_deliveries` setting and a dead-letter
    /// sink ([`crate::GroupOptions`]).
    pub(crate) fn attach_group_with(
        ring: Arc<Ring<Segment>>,
        group: &str,
        max_deliveries: Option<u32>,
        sink: Option<crate::ring::Sink>,
    ) -> Result<Subscriber, SubscribeError> {
        let mut st = ring.join_group_with(group.as_bytes(), max_deliveries).map_err(|e| join_err(&ring, e, group))?;
        st.set_dead_letters(sink);
        Ok(Subscriber::with_state(ring, st))
    }

    /// The consumer group's `max_deliveries` (0: none, or not a member).
    pub(crate) fn group_max_deliveries(&self) -> u32 {
        self.ring.group_max_deliveries(&self.st)
    }

    /// Sends the message `view` (held by this group member) to the
    /// dead-letter topic; see [`Message::reject`].
    pub(crate) fn reject_view(&mut self, view: &FrameView) -> bool {
        self.ring.reject(&mut self.st, view)
    }

    #[inline]
    fn deliver(&mut self, view: FrameView) -> Result<Message<'_>, RecvError> {
        if view.lost > 0 && self.pending.is_none() {
            let mut v = view;
            let lost = v.lost;
            v.lost = 0;
            self.pending = Some(v);
            return Err(RecvError::Lagged(lost));
        }
        Ok(Message { sub: self, view })
    }

    /// A message held back after a gap. If its loss has not been reported
    /// yet, report it now and keep the message for the next call.
    #[inline]
    fn take_pending(&mut self) -> Result<Option<FrameView>, RecvError> {
        match self.pending.take() {
            Some(mut v) if v.lost > 0 => {
                let lost = v.lost;
                v.lost = 0;
                self.pending = Some(v);
                Err(RecvError::Lagged(lost))
            }
            other => Ok(other),
        }
    }

    /// Receives without waiting: [`RecvError::Empty`] if nothing is new.
    #[inline]
    pub fn try_recv(&mut self) -> Result<Message<'_>, RecvError> {
        // A Block subscriber never holds a message back (only gaps on
        // Overwrite topics and re-deliveries to group members do).
        if self.ring.layout.policy == Policy::Block && self.pending.is_none() {
            match self.ring.peek_fast(&self.st) {
                Fast::Frame(view) => return Ok(Message { sub: self, view }),
                Fast::Empty => return self.empty(),
                Fast::Slow(_) => {}
            }
        }
        self.try_recv_general()
    }

    /// Every receive [`Subscriber::try_recv`] does not finish at once.
    /// Nothing at the cursor. Every [`EMPTY_CHECK`] empty polls, looks
    /// whether the frame there can never come (a corrupt stamp
    /// before committed frames: `Ring::skip_corrupt_single`), so a
    /// subscriber that only polls is not stuck forever either.
    #[cold]
    fn empty(&mut self) -> Result<Message<'_>, RecvError> {
        self.empty_polls += 1;
        let deep = self.empty_polls >= EMPTY_CHECK;
        self.ring.check_closed(&self.st, deep).map_err(read_err)?;
        if deep {
            self.empty_polls = 0;
            if self.ring.skip_corrupt_single(&mut self.st) {
                return self.try_recv_general();
            }
        }
        Err(RecvError::Empty)
    }

    #[inline(never)]
    fn try_recv_general(&mut self) -> Result<Message<'_>, RecvError> {
        if self.pending.is_some() {
            return self.recv_pending();
        }
        match self.ring.poll(&mut self.st, &mut self.buf).map_err(read_err)? {
            Some(v) => self.deliver(v),
            None => Err(RecvError::Empty),
        }
    }

    /// A receive that finds a message held back: after a gap (`Overwrite`),
    /// or put back by [`Subscriber::unrelease_raw`].
    #[cold]
    fn recv_pending(&mut self) -> Result<Message<'_>, RecvError> {
        match self.take_pending()? {
            Some(v) => Ok(Message { sub: self, view: v }),
            None => Err(RecvError::Empty),
        }
    }

    /// The next frame, without waiting and without lending it (the async
    /// receive decides afterwards whether to deliver it).
    #[cfg(feature = "async")]
    pub(crate) fn next_view(&mut self) -> Result<Option<FrameView>, RecvError> {
        if self.pending.is_some() {
            return self.take_pending();
        }
        if self.ring.layout.policy == Policy::Block {
            match self.ring.peek_fast(&self.st) {
                Fast::Frame(view) => return Ok(Some(view)),
                Fast::Empty => return self.ring.check_closed(&self.st, false).map(|()| None).map_err(read_err),
                Fast::Slow(_) => {}
            }
        }
        self.ring.poll(&mut self.st, &mut self.buf).map_err(read_err)
    }

    /// Parks an async wait ([`Ring::park_data`]).
    #[cfg(feature = "async")]
    pub(crate) fn park(&mut self) -> Result<crate::ring::Parked<FrameView>, RecvError> {
        self.ring.park_data(&mut self.st, &mut self.buf).map_err(read_err)
    }

    /// Lends `view` (from [`Subscriber::next_view`] or a park) as a message,
    /// or reports the loss before it.
    #[cfg(feature = "async")]
    pub(crate) fn lend(&mut self, view: FrameView) -> Result<Message<'_>, RecvError> {
        self.deliver(view)
    }

    /// Holds `view` back for the next receive (as a gap or a put-back is).
    #[cfg(feature = "async")]
    pub(crate) fn unread(&mut self, view: FrameView) {
        self.pending = Some(view);
    }

    /// Whether a receive would return a held-back frame (or its loss) first.
    #[cfg(feature = "async")]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    #[cfg(feature = "async")]
    pub(crate) fn ring(&self) -> &Arc<Ring<Segment>> {
        &self.ring
    }

    #[cfg(feature = "async")]
    pub(crate) fn readiness_mut(&mut self) -> &mut Option<crate::park::Readiness> {
        &mut self.readiness
    }

    /// Receives, waiting as long as it takes (spin, then sleep on a futex).
    pub fn recv(&mut self) -> Result<Message<'_>, RecvError> {
        self.wait(Wait::Forever)
    }

    /// Receives, waiting at most `timeout`: [`RecvError::Timeout`] after it.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message<'_>, RecvError> {
        self.wait(Wait::For(timeout))
    }

    fn wait(&mut self, wait: Wait) -> Result<Message<'_>, RecvError> {
        if self.pending.is_some() {
            return self.recv_pending();
        }
        match self.ring.wait_frame(&mut self.st, &mut self.buf, wait).map_err(read_err)? {
            Some(v) => self.deliver(v),
            None => Err(RecvError::Timeout),
        }
    }

    /// Receives up to `max` waiting messages without blocking, calling `f`
    /// on each; on a `Block` topic the cursor is published once, at the end
    /// (one fence for the whole batch). Returns how many were handled.
    /// Stops early at a gap in an `Overwrite` topic (the next `try_recv`
    /// reports [`RecvError::Lagged`]). [`RecvError::Closed`] when it handled
    /// nothing at the end of a closed stream.
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-d-{}", std::process::id()));
    /// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut sub = topic.subscribe()?;
    /// let mut p = topic.producer()?;
    /// for i in 0..10u8 { p.publish(&[i])?; }
    /// let mut sum = 0;
    /// let n = sub.drain(100, |m| sum += m[0] as u32)?;
    /// assert_eq!((n, sum), (10, 45));
    /// # drop((sub, p, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(&MessageRef<'_>)) -> Result<usize, RecvError> {
        let mut n = 0;
        match self.take_pending() {
            Ok(Some(v)) => {
                f(&MessageRef { data: self.payload(&v), view: v });
                n += 1;
            }
            Ok(None) => {}
            Err(e) => return if n == 0 { Err(e) } else { Ok(n) },
        }
        match self.ring.layout.policy {
            Policy::Block if self.st.is_group_member() => {
                // A group member holds one message at a time.
                while n < max {
                    let Some(v) = self.ring.peek(&mut self.st).map_err(read_err)? else {
                        break;
                    };
                    f(&MessageRef { data: payload_in_place(&self.ring, &v), view: v });
                    self.ring.release(&mut self.st, &v);
                    n += 1;
                }
            }
            Policy::Block => {
                let mut last = None;
                let ring = &*self.ring;
                while n < max {
                    // Ordinary messages in one loop; then one frame of any
                    // kind (padding, a multi-producer claim, nothing).
                    let k = ring.drain_fast(&mut self.st, max - n, |v| {
                        f(&MessageRef { data: payload_in_place(ring, v), view: *v })
                    });
                    if k > 0 {
                        n += k;
                        last = Some(self.st.cursor());
                        if n == max {
                            break;
                        }
                    }
                    let Some(v) = ring.peek(&mut self.st).map_err(read_err)? else {
                        break;
                    };
                    // Read in place; the cursor is published once, below.
                    f(&MessageRef { data: payload_in_place(ring, &v), view: v });
                    ring.consume_unpublished(&mut self.st, &v);
                    last = Some(v.next);
                    n += 1;
                }
                if let Some(next) = last {
                    self.ring.release_to(&mut self.st, next);
                }
            }
            Policy::Overwrite => {
                while n < max {
                    match self.ring.read_copy(&mut self.st, &mut self.buf).map_err(read_err)? {
                        Some(v) if v.lost > 0 => {
                            // Keep it for the next receive, which reports the gap first.
                            self.pending = Some(v);
                            break;
                        }
                        Some(v) => {
                            f(&MessageRef { data: &self.buf[..v.len as usize], view: v });
                            n += 1;
                        }
                        None => break,
                    }
                }
            }
        }
        if n == 0 {
            // Nothing handled: at the end of a closed stream, say so.
            self.ring.check_closed(&self.st, false).map_err(read_err)?;
        }
        Ok(n)
    }

    /// For language bindings (the C API): receives like `try_recv` /
    /// `recv_timeout` (`wait`: `None` do not wait, `Some(None)` forever,
    /// `Some(Some(t))` at most `t`) but holds the message instead of
    /// borrowing it: the payload pointer stays valid until
    /// [`Subscriber::release_raw`] or the next `recv_raw`, which releases
    /// the previous message first. A lapped `Overwrite` subscriber gets the
    /// next message with `lost` set instead of `Lagged`.
    pub fn recv_raw(&mut self, wait: Wait) -> Result<RawMessage, RecvError> {
        let view = self.take_raw_view(wait)?;
        self.held = Some(view);
        Ok(self.raw(&view))
    }

    /// For the raw receives: releases the message `recv_raw` held, then
    /// takes the next frame (a pending one first), waiting as `wait` says.
    fn take_raw_view(&mut self, wait: Wait) -> Result<FrameView, RecvError> {
        self.release_raw();
        let r = match self.pending.take() {
            Some(v) => Some(v),
            None => self.ring.wait_frame(&mut self.st, &mut self.buf, wait).map_err(read_err)?,
        };
        match r {
            Some(v) => Ok(v),
            None if wait == Wait::Now => Err(RecvError::Empty),
            None => Err(RecvError::Timeout),
        }
    }

    /// The message `view` as lent to a binding.
    fn raw(&self, view: &FrameView) -> RawMessage {
        RawMessage {
            data: self.payload(view).as_ptr(),
            len: view.len as usize,
            timestamp_ns: view.timestamp_ns,
            seq: view.seq,
            position: view.pos,
            msg_type: view.msg_type,
            lost: view.lost,
        }
    }

    /// Releases the message held by [`Subscriber::recv_raw`]. Returns
    /// `false` if none is held.
    pub fn release_raw(&mut self) -> bool {
        match self.held.take() {
            Some(v) => {
                if self.ring.layout.policy == Policy::Block {
                    self.ring.release(&mut self.st, &v);
                }
                true
            }
            None => false,
        }
    }

    /// For language bindings: how many times the message held by
    /// [`Subscriber::recv_raw`] was delivered ([`Message::deliveries`]).
    pub fn held_deliveries(&self) -> Option<u32> {
        self.held.map(|v| v.deliveries)
    }

    /// For language bindings: [`Message::reject`] on the message held by
    /// [`Subscriber::recv_raw`]. `None` if none is held.
    pub fn reject_raw(&mut self) -> Option<Result<(), crate::error::RejectError>> {
        let view = self.held.take()?;
        if self.reject_view(&view) {
            self.ring.release(&mut self.st, &view);
            Some(Ok(()))
        } else {
            self.pending = Some(view);
            Some(Err(crate::error::RejectError::NoDeadLetterTopic))
        }
    }

    /// For language bindings: puts the message held by
    /// [`Subscriber::recv_raw`] back, unreleased, so the next receive
    /// returns it again (used when a caller's buffer was too small).
    pub fn unrelease_raw(&mut self) {
        if let Some(v) = self.held.take() {
            if self.ring.layout.policy == Policy::Overwrite || self.st.is_group_member() {
                // Overwrite: the copy is in our buffer and the cursor moved
                // past it. Group member: the group's cursor moved past it;
                // ours still holds it.
                self.pending = Some(v);
            }
            // Block: the cursor still points at the frame.
        }
    }

    /// Messages received so far.
    pub fn received(&self) -> u64 {
        self.st.received()
    }

    /// Messages lost to overwriting so far (`Overwrite` topics).
    pub fn lost(&self) -> u64 {
        self.st.lost()
    }

    /// Position of the next frame this subscriber reads.
    pub fn position(&self) -> u64 {
        self.st.cursor()
    }

    /// The topic's policy: `Block` subscribers read in place, `Overwrite`
    /// ones receive copies.
    pub fn policy(&self) -> Policy {
        self.ring.layout.policy
    }

    /// Index of this subscriber's slot in the topic's table.
    pub fn slot(&self) -> usize {
        self.st.slot()
    }

    #[inline]
    fn payload(&self, view: &FrameView) -> &[u8] {
        match self.ring.layout.policy {
            Policy::Overwrite => &self.buf[..view.len as usize],
            Policy::Block => payload_in_place(&self.ring, view),
        }
    }
}

/// The payload of a committed frame at or after this subscriber's cursor.
#[inline]
fn payload_in_place<'a>(ring: &'a Ring<Segment>, view: &FrameView) -> &'a [u8] {
    // `view` was validated by `Ring::peek`: the payload lies inside the
    // mapping (length ≤ max_message, frame before the ring's end) and is
    // committed (stamp loaded with Acquire). Block policy: the producer
    // cannot claim these bytes while our published cursor is at or before
    // the frame; the cursor moves past it only when the message guard (which
    // borrows the subscriber mutably) is gone.
    // SAFETY: in bounds and committed (validated above), and no producer writes it while we hold it.
    unsafe { std::slice::from_raw_parts(ring.mem.base().add(view.payload_off), view.len as usize) }
}

/// The payload and metadata of a message seen in [`Subscriber::drain`].
#[derive(Debug)]
pub struct MessageRef<'a> {
    data: &'a [u8],
    view: FrameView,
}

impl MessageRef<'_> {
    /// The user type given at publish.
    pub fn msg_type(&self) -> u32 {
        self.view.msg_type
    }
    /// Publish time, `CLOCK_MONOTONIC` nanoseconds.
    pub fn timestamp_ns(&self) -> u64 {
        self.view.timestamp_ns
    }
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.view.seq
    }
    /// Absolute byte position of the message.
    pub fn position(&self) -> u64 {
        self.view.pos
    }
}

impl Deref for MessageRef<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.release_raw();
        self.ring.leave(&self.st);
    }
}

/// A received message. Derefs to the payload. On a `Block` topic the
/// payload is read in place in the ring, and the subscriber's cursor moves
/// past it when the message is dropped.
pub struct Message<'a> {
    sub: &'a mut Subscriber,
    view: FrameView,
}

impl Message<'_> {
    /// The payload.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.sub.payload(&self.view)
    }
    /// How many times this message has been delivered: 1, or more when a
    /// consumer group redelivered it after a member died holding it.
    pub fn deliveries(&self) -> u32 {
        self.view.deliveries
    }
    /// Consumer group member with a dead-letter topic
    /// ([`crate::GroupOptions::dead_letter_topic`]): sends this message
    /// there at once (marked rejected, with its delivery count), waiting
    /// for room, then releases it. Without a dead-letter topic it is put
    /// back, unreleased, and the next receive returns it again.
    pub fn reject(self) -> Result<(), crate::error::RejectError> {
        let mut this = std::mem::ManuallyDrop::new(self);
        let view = this.view;
        if this.sub.reject_view(&view) {
            let Subscriber { ring, st, .. } = &mut *this.sub;
            ring.release(st, &view);
            Ok(())
        } else {
            this.sub.pending = Some(view);
            Err(crate::error::RejectError::NoDeadLetterTopic)
        }
    }
    /// The user type given at publish (0 by default).
    pub fn msg_type(&self) -> u32 {
        self.view.msg_type
    }
    /// Publish time, `CLOCK_MONOTONIC` nanoseconds.
    pub fn timestamp_ns(&self) -> u64 {
        self.view.timestamp_ns
    }
    /// Sequence number (dense per topic on single-producer topics).
    pub fn seq(&self) -> u64 {
        self.view.seq
    }
    /// Absolute byte position of the message in the topic's stream; unique
    /// and increasing, the same for every subscriber.
    pub fn position(&self) -> u64 {
        self.view.pos
    }
    /// Releases the message now (same as dropping it).
    pub fn release(self) {}
}

impl Deref for Message<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.data()
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("position", &self.view.pos)
            .field("seq", &self.view.seq)
            .field("len", &self.view.len)
            .finish()
    }
}

impl Drop for Message<'_> {
    #[inline]
    fn drop(&mut self) {
        let Subscriber { ring, st, .. } = &mut *self.sub;
        if ring.layout.policy == Policy::Block {
            ring.release(st, &self.view);
        }
    }
}
