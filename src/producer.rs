//! Producers: copy-in `publish` and zero-copy `reserve`/`commit`.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{BatchError, ProducerError, PublishError};
use crate::layout::prod;
use crate::mem::Memory;
use crate::ring::{AttachError, Claim, ClaimError, ProducerState, Ring, Run, Wait};
use crate::segment::Segment;

/// Publishes messages into a topic. Made by [`crate::Topic::producer`].
///
/// `Send`, not `Sync`: one thread publishes through a producer at a time
/// (make one producer per thread on a multi-producer topic).
///
/// # Examples
/// ```
/// # use shmq::{Options, Topic};
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-p-{}", std::process::id()));
/// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
/// let mut sub = topic.subscribe()?;
/// let mut producer = topic.producer()?;
/// producer.publish(b"copied in")?;
/// let mut grant = producer.reserve(5)?; // zero-copy: write in place
/// grant.copy_from_slice(b"in pl");
/// grant.commit(5)?;
/// assert_eq!(&*sub.try_recv()?, b"copied in");
/// assert_eq!(&*sub.try_recv()?, b"in pl");
/// # drop((sub, producer, topic)); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer {
    ring: Arc<Ring<Segment>>,
    st: ProducerState,
    /// The claim lent through [`Producer::reserve_raw`], if any, and the
    /// fast-claim limit held back while it is out (`close_fast_claims`).
    raw: Option<(Claim, u64)>,
    /// Position up to which this producer has flushed.
    flushed: u64,
    /// `flush_every`: (messages, interval in ns), and the progress since
    /// the last flush (messages, time).
    auto_flush: Option<(u64, u64)>,
    since_flush: (u64, u64),
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("path", &self.ring.mem.path()).finish_non_exhaustive()
    }
}

impl Producer {
    pub(crate) fn attach(ring: Arc<Ring<Segment>>) -> Result<Producer, ProducerError> {
        let st = ring.attach_producer().map_err(|e| match e {
            AttachError::Busy(pid) => ProducerError::Busy { pid },
            AttachError::Attach(why) => ProducerError::Attach(why),
        })?;
        // Relaxed: a starting point only; flush never goes backwards.
        let flushed = ring.mem.load64(prod::FLUSHED, Relaxed);
        Ok(Producer { ring, st, raw: None, flushed, auto_flush: None, since_flush: (0, 0) })
    }

    /// Writes everything published so far to the topic's file and waits
    /// until it is on disk (`msync`), then records how far it got in the
    /// header. Only meaningful for a file-backed topic (a directory on a
    /// disk): after a machine restart, a topic is recovered to its last
    /// flushed message ([`Topic::open`](crate::Topic::open)); messages
    /// after it are dropped, because pages the kernel wrote on its own may
    /// have reached the disk torn. A process crash loses nothing either
    /// way (the page cache outlives the process).
    pub fn flush(&mut self) -> std::io::Result<()> {
        let ring = &self.ring;
        let tail = ring.tail_of(&self.st);
        let cap = ring.layout.capacity;
        let data = ring.layout.data_offset;
        let from = self.flushed.min(tail);
        if tail - from >= cap {
            ring.mem.sync_range(data, cap as usize)?;
        } else if tail > from {
            let a = (from & (cap - 1)) as usize;
            let b = (tail & (cap - 1)) as usize;
            if a < b || b == 0 {
                ring.mem.sync_range(data + a, (tail - from) as usize)?;
            } else {
                ring.mem.sync_range(data + a, cap as usize - a)?;
                ring.mem.sync_range(data, b)?;
            }
        }
        ring.advance_flushed(tail);
        ring.mem.sync_range(0, data)?;
        self.flushed = tail;
        self.since_flush = (0, crate::sys::monotonic_ns());
        Ok(())
    }

    /// Flushes ([`Producer::flush`]) automatically after every `messages`
    /// messages or when `interval` has passed since the last flush,
    /// whichever comes first (checked at each publish). `messages = 0`
    /// turns it off. A failed automatic flush is reported by the publish
    /// that triggered it ([`PublishError::Flush`]; the message itself was
    /// published).
    pub fn flush_every(&mut self, messages: u64, interval: Duration) {
        self.auto_flush = (messages > 0).then(|| (messages, interval.as_nanos().min(u64::MAX as u128) as u64));
        self.since_flush = (0, crate::sys::monotonic_ns());
    }

    #[inline]
    fn after_publish(&mut self) -> Result<(), PublishError> {
        self.after_publishing(1)
    }

    /// Counts `n` messages published towards `flush_every`, and flushes
    /// when it is due.
    #[inline]
    fn after_publishing(&mut self, n: u64) -> Result<(), PublishError> {
        match self.auto_flush {
            None => Ok(()),
            Some((every, interval)) => self.auto_flush_step(n, every, interval),
        }
    }

    #[cold]
    fn auto_flush_step(&mut self, n: u64, every: u64, interval: u64) -> Result<(), PublishError> {
        self.since_flush.0 += n;
        if self.since_flush.0 >= every || crate::sys::monotonic_ns().saturating_sub(self.since_flush.1) >= interval {
            self.flush().map_err(|e| PublishError::Flush(e.to_string()))?;
        }
        Ok(())
    }

    /// [`PublishError::Reserved`] while a claim lent by
    /// [`Producer::reserve_raw`] is outstanding. Only the general paths
    /// ask: `reserve_raw` closes the fast ones (`close_fast_claims`).
    #[inline(always)]
    fn no_raw_claim(&self) -> Result<(), PublishError> {
        match self.raw {
            Some(_) => Err(PublishError::Reserved),
            None => Ok(()),
        }
    }

    fn map_err(&self, e: ClaimError, len: usize) -> PublishError {
        match e {
            ClaimError::TooLarge => PublishError::TooLarge { len, max: self.ring.layout.max_message as usize },
            ClaimError::Full => PublishError::Full,
            ClaimError::Lost => PublishError::Lost,
        }
    }

    #[inline(always)]
    fn send(&mut self, data: &[u8], msg_type: u32, wait: Wait) -> Result<(), PublishError> {
        if self.ring.publish_fast(&mut self.st, data, msg_type) {
            return self.after_publish();
        }
        self.send_general(data, msg_type, wait)
    }

    /// Every publish the fast path does not take: waiting, slow claims,
    /// multi-producer topics, errors.
    #[inline(never)]
    fn send_general(&mut self, data: &[u8], msg_type: u32, wait: Wait) -> Result<(), PublishError> {
        self.no_raw_claim()?;
        let claim = self.ring.claim(&mut self.st, data.len(), wait).map_err(|e| self.map_err(e, data.len()))?;
        self.ring.write_payload(&claim, data);
        if !self.ring.commit(&mut self.st, &claim, data.len() as u32, msg_type) {
            return Err(PublishError::Lost);
        }
        self.after_publish()
    }

    /// Publishes a copy of `data`; on a full `Block` ring, waits for room
    /// (spin, then sleep) as long as it takes. Never waits on `Overwrite`.
    #[inline]
    pub fn publish(&mut self, data: &[u8]) -> Result<(), PublishError> {
        self.send(data, 0, Wait::Forever)
    }

    /// Publishes, waiting at most `timeout` for room.
    pub fn publish_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<(), PublishError> {
        self.send(data, 0, Wait::For(timeout))
    }

    /// Publishes without waiting: [`PublishError::Full`] if the slowest
    /// subscriber holds the ring.
    #[inline]
    pub fn try_publish(&mut self, data: &[u8]) -> Result<(), PublishError> {
        self.send(data, 0, Wait::Now)
    }

    /// Publishes copies of `msgs`, in order, as that many [`publish`]
    /// calls would (waiting for room on a full `Block` ring), but with one
    /// claim and one commit for each run of them that fits one frame of
    /// the topic's max message size: the per-message work left is the copy,
    /// three header words and the commit stamp. Subscribers receive them as
    /// separate messages, and may receive the first of a run before the
    /// last is written. On a topic with timestamps, a run shares one
    /// publish time. Helps single-producer topics; on a multi-producer
    /// topic each message is published on its own.
    ///
    /// On an error, [`BatchError::published`] says how many leading
    /// messages were published; the rest were not.
    ///
    /// [`publish`]: Producer::publish
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-pb-{}", std::process::id()));
    /// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut sub = topic.subscribe()?;
    /// let mut producer = topic.producer()?;
    /// let ticks: Vec<[u8; 16]> = (0..10u8).map(|i| [i; 16]).collect();
    /// producer.publish_batch(&ticks)?;
    /// for i in 0..10u8 {
    ///     assert_eq!(&*sub.try_recv()?, &[i; 16]);
    /// }
    /// # drop((sub, producer, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_batch<B: AsRef<[u8]>>(&mut self, msgs: &[B]) -> Result<(), BatchError> {
        self.send_batch(msgs, Wait::Forever).map(|_| ())
    }

    /// As [`Producer::publish_batch`], without waiting: publishes the
    /// leading messages that fit now and returns how many (fewer than
    /// `msgs.len()`, maybe 0, when the slowest subscriber holds the
    /// ring). Errors other than a full ring are a [`BatchError`].
    pub fn try_publish_batch<B: AsRef<[u8]>>(&mut self, msgs: &[B]) -> Result<usize, BatchError> {
        match self.send_batch(msgs, Wait::Now) {
            Err(BatchError { published, error: PublishError::Full }) => Ok(published),
            other => other,
        }
    }

    /// As [`Producer::publish_batch`], waiting for room at most `timeout`
    /// in all: returns how many leading messages were published, fewer
    /// than `msgs.len()` if the time ran out. Errors other than a full
    /// ring are a [`BatchError`].
    pub fn publish_batch_timeout<B: AsRef<[u8]>>(
        &mut self,
        msgs: &[B],
        timeout: Duration,
    ) -> Result<usize, BatchError> {
        match self.send_batch(msgs, Wait::For(timeout)) {
            Err(BatchError { published, error: PublishError::Full }) => Ok(published),
            other => other,
        }
    }

    /// Publishes `count` messages of `len` bytes each, written in place:
    /// `fill(i, buf)` writes message `i` into `buf`, its bytes in the ring
    /// (zero-copy, as [`Producer::reserve`]). Runs of them share one claim
    /// and one commit, as in [`Producer::publish_batch`], without the
    /// copy. Waits for room. If `fill` panics, the messages before it are
    /// published, the rest of its run is given back (subscribers skip
    /// it), and the panic goes on.
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-pbw-{}", std::process::id()));
    /// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut sub = topic.subscribe()?;
    /// let mut producer = topic.producer()?;
    /// // Eight 16-byte records, each built in the ring.
    /// producer.publish_batch_with(8, 16, |i, buf| buf.copy_from_slice(&[i as u8; 16]))?;
    /// for i in 0..8u8 {
    ///     assert_eq!(&*sub.try_recv()?, &[i; 16]);
    /// }
    /// # drop((sub, producer, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_batch_with(
        &mut self,
        count: usize,
        len: usize,
        mut fill: impl FnMut(usize, &mut [u8]),
    ) -> Result<(), BatchError> {
        let mut done = 0;
        while done < count {
            let n = match self.ring.claim_run(&mut self.st, count - done, |_| len) {
                Some(run) => {
                    let n = run.len();
                    let ring = &*self.ring;
                    // Ends the run when dropped, by a panic in `fill` too.
                    let mut guard = RunGuard { ring, st: &mut self.st, run };
                    for i in 0..n {
                        let off = ring.run_payload_off(&guard.run);
                        // The run's next frame: claimed by this producer for
                        // `len` payload bytes, before the ring's end.
                        // SAFETY: in bounds and ours until the commit below,
                        // which ends the slice's life: as for a `Grant`.
                        let buf = unsafe { std::slice::from_raw_parts_mut(ring.mem.base().add(off), len) };
                        fill(done + i, buf);
                        ring.commit_run_frame(&mut guard.run, len, 0);
                    }
                    n
                }
                None => {
                    let mut g = self.reserve(len).map_err(|error| BatchError { published: done, error })?;
                    fill(done, &mut g);
                    let r = g.commit(len);
                    if matches!(r, Ok(()) | Err(PublishError::Flush(_))) {
                        done += 1;
                    }
                    r.map_err(|error| BatchError { published: done, error })?;
                    continue;
                }
            };
            done += n;
            self.after_publishing(n as u64).map_err(|error| BatchError { published: done, error })?;
        }
        Ok(())
    }

    fn send_batch<B: AsRef<[u8]>>(&mut self, msgs: &[B], wait: Wait) -> Result<usize, BatchError> {
        // One deadline for the whole batch: each message that needs the
        // general path waits only for what is left of it.
        let end = match wait {
            Wait::For(t) => std::time::Instant::now().checked_add(t),
            _ => None,
        };
        let mut done = 0;
        while done < msgs.len() {
            let n = self.ring.publish_batch_fast(&mut self.st, &msgs[done..], 0);
            let r = if n > 0 {
                done += n;
                self.after_publishing(n as u64)
            } else {
                // The general path, for one message; `send_general` counts
                // it towards `flush_every` itself.
                let wait = end.map_or(wait, |e| Wait::For(e.saturating_duration_since(std::time::Instant::now())));
                let r = self.send_general(msgs[done].as_ref(), 0, wait);
                if matches!(r, Ok(()) | Err(PublishError::Flush(_))) {
                    done += 1;
                }
                r
            };
            r.map_err(|error| BatchError { published: done, error })?;
        }
        Ok(done)
    }

    /// Publishes `data` with a user type (`0..2^31`; others are
    /// [`PublishError::InvalidType`]), waiting for room.
    pub fn publish_typed(&mut self, msg_type: u32, data: &[u8]) -> Result<(), PublishError> {
        check_type(msg_type)?;
        self.send(data, msg_type, Wait::Forever)
    }

    /// As [`Producer::publish_typed`], without waiting: [`PublishError::Full`]
    /// if the slowest subscriber holds the ring.
    pub fn try_publish_typed(&mut self, msg_type: u32, data: &[u8]) -> Result<(), PublishError> {
        check_type(msg_type)?;
        self.send(data, msg_type, Wait::Now)
    }

    #[inline(always)]
    fn grant(&mut self, len: usize, wait: Wait) -> Result<Grant<'_>, PublishError> {
        let claim = match self.ring.claim_fast(&mut self.st, len) {
            Some(c) => c,
            None => self.claim_slow(len, wait)?,
        };
        Ok(Grant { producer: self, claim, msg_type: 0 })
    }

    /// Every claim for a grant that the fast path does not take, as one
    /// call out of line: with it inlined, a loop of `reserve`/`commit`
    /// carried the slow path's code and streamed 64-byte messages 25-30 %
    /// slower between two processes (`shmq bench --only throughput --size
    /// 64`), at the same instruction count.
    #[inline(never)]
    fn claim_slow(&mut self, len: usize, wait: Wait) -> Result<Claim, PublishError> {
        self.no_raw_claim()?;
        self.ring.claim(&mut self.st, len, wait).map_err(|e| self.map_err(e, len))
    }

    /// Lends `len` bytes inside the ring to write a message in place,
    /// waiting for room. Commit with [`Grant::commit`]; a grant dropped
    /// without commit becomes padding that subscribers skip.
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, PublishError> {
        self.grant(len, Wait::Forever)
    }

    /// As [`Producer::reserve`], waiting at most `timeout`.
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<Grant<'_>, PublishError> {
        self.grant(len, Wait::For(timeout))
    }

    /// As [`Producer::reserve`], without waiting.
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>, PublishError> {
        self.grant(len, Wait::Now)
    }

    /// A claim without waiting: `Ok(None)` when the ring is full.
    #[cfg(feature = "async")]
    pub(crate) fn claim_now(&mut self, len: usize) -> Result<Option<Claim>, PublishError> {
        self.no_raw_claim()?;
        match self.ring.claim(&mut self.st, len, Wait::Now) {
            Ok(c) => Ok(Some(c)),
            Err(ClaimError::Full) => Ok(None),
            Err(e) => Err(self.map_err(e, len)),
        }
    }

    /// Parks an async wait for room ([`Ring::park_space`]).
    #[cfg(feature = "async")]
    pub(crate) fn park(&mut self, len: usize) -> Result<crate::ring::Parked<Claim>, PublishError> {
        self.no_raw_claim()?;
        self.ring.park_space(&mut self.st, len).map_err(|e| self.map_err(e, len))
    }

    /// Writes `data` into `claim` and commits it.
    #[cfg(feature = "async")]
    pub(crate) fn fill(&mut self, claim: Claim, data: &[u8], msg_type: u32) -> Result<(), PublishError> {
        self.ring.write_payload(&claim, data);
        if !self.ring.commit(&mut self.st, &claim, data.len() as u32, msg_type) {
            return Err(PublishError::Lost);
        }
        self.after_publish()
    }

    /// Lends `claim` as a grant.
    #[cfg(feature = "async")]
    pub(crate) fn lend(&mut self, claim: Claim) -> Grant<'_> {
        Grant { producer: self, claim, msg_type: 0 }
    }

    #[cfg(feature = "async")]
    pub(crate) fn ring(&self) -> &Arc<Ring<Segment>> {
        &self.ring
    }

    /// Closes the stream after the messages published so far: subscribers
    /// receive every one of them, then [`crate::RecvError::Closed`] from
    /// every receive (a sleeping or parked one is woken). Publishing again
    /// (from any producer) reopens the stream: subscribers then receive
    /// the new messages.
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic, RecvError};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-close-{}", std::process::id()));
    /// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut sub = topic.subscribe()?;
    /// let mut p = topic.producer()?;
    /// p.publish(b"last")?;
    /// p.close();
    /// assert_eq!(&*sub.recv()?, b"last");
    /// assert_eq!(sub.recv().unwrap_err(), RecvError::Closed);
    /// # drop((sub, p, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&mut self) {
        self.ring.close();
    }

    /// Largest message this topic accepts.
    pub fn max_message(&self) -> usize {
        self.ring.layout.max_message as usize
    }

    /// For language bindings (the C API): claims `len` bytes like
    /// [`Producer::reserve`], waiting as `wait` says, and returns a pointer
    /// to them.
    /// The pointer stays valid until [`Producer::commit_raw`] or
    /// [`Producer::abort_raw`]; at most one raw claim is outstanding
    /// (`Ok(None)` if one already is), and while it is every other publish
    /// and reservation fails with [`PublishError::Reserved`]. Rust code
    /// should use `reserve`, whose borrow makes that a compile error.
    pub fn reserve_raw(&mut self, len: usize, wait: Wait) -> Result<Option<*mut u8>, PublishError> {
        if self.raw.is_some() {
            return Ok(None);
        }
        let claim = self.ring.claim(&mut self.st, len, wait).map_err(|e| self.map_err(e, len))?;
        let off = self.ring.payload_off(&claim);
        // Until it is committed or abandoned, every other publish takes the
        // general path, which refuses it (`no_raw_claim`).
        self.raw = Some((claim, self.st.close_fast_claims()));
        // SAFETY: `off` is the in-bounds payload offset of our claim.
        Ok(Some(unsafe { self.ring.mem.base().add(off) }))
    }

    /// For language bindings: whether a claim lent by
    /// [`Producer::reserve_raw`] is outstanding.
    pub fn has_reservation(&self) -> bool {
        self.raw.is_some()
    }

    /// Commits the outstanding raw claim with `len` bytes and user type
    /// `msg_type`. `Ok(false)` if no raw claim is outstanding;
    /// [`PublishError::CommitTooLarge`] or [`PublishError::InvalidType`]
    /// (the claim stays outstanding); [`PublishError::Lost`] as in
    /// [`Grant::commit`].
    pub fn commit_raw(&mut self, len: usize, msg_type: u32) -> Result<bool, PublishError> {
        if let Some((c, _)) = &self.raw {
            // Refused with the reservation kept: the caller may commit again
            // with a valid length or type, or abort.
            check_type(msg_type)?;
            if len > c.len() as usize {
                return Err(PublishError::CommitTooLarge { len, reserved: c.len() as usize });
            }
        }
        match self.raw.take() {
            Some((c, limit)) => {
                self.st.reopen_fast_claims(limit);
                if self.ring.commit(&mut self.st, &c, len.min(u32::MAX as usize) as u32, msg_type) {
                    self.after_publish().map(|_| true)
                } else {
                    Err(PublishError::Lost)
                }
            }
            None => Ok(false),
        }
    }

    /// Abandons the outstanding raw claim (it becomes padding). Returns
    /// `false` if none is outstanding.
    pub fn abort_raw(&mut self) -> bool {
        match self.raw.take() {
            Some((c, limit)) => {
                self.st.reopen_fast_claims(limit);
                self.ring.abort(&mut self.st, &c);
                true
            }
            None => false,
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.abort_raw();
        self.ring.detach_producer(&self.st);
    }
}

/// A user message type must be below 2^31: the top bit marks padding.
#[inline]
fn check_type(msg_type: u32) -> Result<(), PublishError> {
    if msg_type & crate::layout::frame::PADDING != 0 {
        return Err(PublishError::InvalidType(msg_type));
    }
    Ok(())
}

/// Room for one message inside the ring, lent by [`Producer::reserve`].
/// Derefs to the `&mut [u8]` payload.
#[derive(Debug)]
pub struct Grant<'a> {
    producer: &'a mut Producer,
    claim: Claim,
    msg_type: u32,
}

impl Grant<'_> {
    /// Sets the message's user type (`0..2^31`; another makes
    /// [`Grant::commit`] fail with [`PublishError::InvalidType`]).
    pub fn set_type(&mut self, msg_type: u32) {
        self.msg_type = msg_type;
    }

    /// Publishes the first `len` bytes written; the rest of the
    /// reservation becomes padding.
    ///
    /// Fails, publishing nothing (the reservation is given back), when
    /// `len` exceeds what was reserved ([`PublishError::CommitTooLarge`])
    /// or the type set is not below 2^31 ([`PublishError::InvalidType`]);
    /// and on a multi-producer topic whose subscribers skipped this grant
    /// because its producer looked dead ([`PublishError::Lost`]).
    #[inline]
    pub fn commit(self, len: usize) -> Result<(), PublishError> {
        if len > self.claim.len() as usize {
            return Err(PublishError::CommitTooLarge { len, reserved: self.claim.len() as usize });
        }
        check_type(self.msg_type)?;
        // Not dropped (dropping aborts): `ManuallyDrop` rather than a "done"
        // flag, which kept the grant in memory and cost a 64-byte reserve +
        // commit 30 instructions.
        let mut this = std::mem::ManuallyDrop::new(self);
        let (claim, msg_type) = (this.claim, this.msg_type);
        let p = &mut *this.producer;
        if p.ring.commit(&mut p.st, &claim, len.min(u32::MAX as usize) as u32, msg_type) {
            p.after_publish()
        } else {
            Err(PublishError::Lost)
        }
    }

    /// Gives the reservation back (it becomes padding). Same as dropping.
    pub fn abort(self) {}
}

/// Ends a run of [`Producer::publish_batch_with`] when dropped, normally
/// or while a panic in its writer unwinds ([`Ring::finish_run`]).
struct RunGuard<'a> {
    ring: &'a Ring<Segment>,
    st: &'a mut ProducerState,
    run: Run,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let run = std::mem::replace(&mut self.run, Run::EMPTY);
        self.ring.finish_run(self.st, run);
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let off = self.producer.ring.payload_off(&self.claim);
        // SAFETY: the claim is in bounds (frame fits before the ring's end)
        // and owned by this producer: in Block mode no cursor covers it; in
        // Overwrite mode readers only copy it with atomic loads and validate.
        unsafe { std::slice::from_raw_parts(self.producer.ring.mem.base().add(off), self.claim.len() as usize) }
    }
}

impl DerefMut for Grant<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let off = self.producer.ring.payload_off(&self.claim);
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.producer.ring.mem.base().add(off), self.claim.len() as usize) }
    }
}

impl Drop for Grant<'_> {
    #[inline]
    fn drop(&mut self) {
        // Reached only for a grant not committed (`commit` skips the drop).
        let p = &mut *self.producer;
        p.ring.abort(&mut p.st, &self.claim);
    }
}
