//! Passive readers: watch a topic's messages without a subscriber slot.
//!
//! A [`Tail`] reads the ring through loads only (it works on a topic opened
//! with [`crate::Topic::open_read_only`]), so it never slows or blocks a
//! producer, even on a `Block` topic. The price: like an `Overwrite`
//! subscriber it copies every message and validates the copy, and a
//! producer may lap it, which it reports as a [`TailEvent::Gap`].

use std::sync::Arc;

use crate::error::RecvError;
use crate::ring::{Passive, ReadError, Ring};
use crate::segment::Segment;
use crate::start::Start;

/// A passive reader. Made by [`crate::Topic::tail`].
///
/// # Examples
/// ```
/// # use shmq::{Options, Topic, Start, TailEvent};
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-tail-{}", std::process::id()));
/// let topic = Topic::create("t", &Options::new().dir(&dir).capacity(4096))?;
/// topic.producer()?.publish(b"seen by tail")?;
/// let ro = Topic::open_read_only("t", &Options::new().dir(&dir))?;
/// let mut tail = ro.tail(Start::Oldest)?;
/// match tail.next_event()? {
///     Some(TailEvent::Message(m)) => assert_eq!(m.data, b"seen by tail"),
///     other => panic!("{other:?}"),
/// }
/// # drop((tail, ro, topic)); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Tail {
    ring: Arc<Ring<Segment>>,
    pos: u64,
    /// Single producer: the sequence number expected next.
    expected_seq: Option<u64>,
    /// Bytes skipped by laps not yet reported.
    gap_bytes: u64,
    buf: Box<[u8]>,
}

/// A message seen by a [`Tail`] (a copy, validated).
#[derive(Debug)]
pub struct TailMessage<'a> {
    /// The payload.
    pub data: &'a [u8],
    /// Absolute byte position.
    pub position: u64,
    /// Sequence number.
    pub seq: u64,
    /// Publish time, `CLOCK_MONOTONIC` ns.
    pub timestamp_ns: u64,
    /// User type.
    pub msg_type: u32,
}

/// What a [`Tail`] saw next.
#[derive(Debug)]
pub enum TailEvent<'a> {
    /// A message.
    Message(TailMessage<'a>),
    /// The producer overwrote messages before the tail read them.
    Gap {
        /// How many messages were skipped, when the topic numbers them
        /// densely (single-producer topics).
        messages: Option<u64>,
        /// How many bytes of the stream were skipped.
        bytes: u64,
    },
}

impl Tail {
    pub(crate) fn new(ring: Arc<Ring<Segment>>, start: Start) -> Tail {
        let pos = ring.passive_start(start);
        let buf = vec![0u8; (ring.layout.max_message as usize + 7) & !7].into_boxed_slice();
        Tail { ring, pos, expected_seq: None, gap_bytes: 0, buf }
    }

    /// Position of the next frame to read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next message or gap, without waiting; `Ok(None)` if nothing new,
    /// [`RecvError::Closed`] at the end of a closed stream.
    pub fn next_event(&mut self) -> Result<Option<TailEvent<'_>>, RecvError> {
        let single = !self.ring.layout.multi_producer;
        for _ in 0..64 {
            match self.ring.read_passive(self.pos, &mut self.buf) {
                Ok(Passive::Empty) if self.ring.is_closed_at(self.pos) => return Err(RecvError::Closed),
                Ok(Passive::Empty) => return Ok(None),
                Ok(Passive::Skip(next)) => self.pos = next,
                Ok(Passive::Lapped) => {
                    let mut resume = self.ring.passive_start(Start::Oldest);
                    if resume <= self.pos {
                        resume = self.ring.passive_start(Start::Newest);
                    }
                    self.gap_bytes += resume.saturating_sub(self.pos);
                    self.pos = resume;
                    if !single {
                        let bytes = std::mem::take(&mut self.gap_bytes);
                        return Ok(Some(TailEvent::Gap { messages: None, bytes }));
                    }
                    // Single producer: the next frame's sequence number
                    // tells how many messages the lap took.
                }
                Ok(Passive::Frame(v)) => {
                    if single {
                        let skipped = self.expected_seq.map(|e| v.seq.saturating_sub(e));
                        if skipped.is_some_and(|n| n > 0) || (skipped.is_none() && self.gap_bytes > 0) {
                            // Report the gap now; the frame comes next call.
                            self.expected_seq = Some(v.seq);
                            let bytes = std::mem::take(&mut self.gap_bytes);
                            return Ok(Some(TailEvent::Gap { messages: skipped, bytes }));
                        }
                        self.expected_seq = Some(v.seq.wrapping_add(1));
                    }
                    self.gap_bytes = 0;
                    self.pos = v.next;
                    return Ok(Some(TailEvent::Message(TailMessage {
                        data: &self.buf[..v.len as usize],
                        position: v.pos,
                        seq: v.seq,
                        timestamp_ns: v.timestamp_ns,
                        msg_type: v.msg_type,
                    })));
                }
                Err(ReadError::Corrupt(r)) => return Err(RecvError::Corrupt(r)),
                Err(ReadError::Evicted) => return Err(RecvError::Evicted),
                Err(ReadError::Closed) => return Err(RecvError::Closed),
            }
        }
        Ok(None)
    }
}
