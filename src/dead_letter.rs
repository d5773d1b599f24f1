//! Dead letters for consumer groups: a message that keeps killing its
//! workers, or one a worker rejects, is moved to a dead-letter topic with
//! what it was (seq, position, type, publish time) and how often it was
//! delivered, and the group goes on without it.
//!
//! The ring counts deliveries and decides when a message is poison
//! (`ring::group`); this module is the other side: the [`DeadLetter`]
//! envelope every dead-letter message starts with, the sink that publishes
//! it (each member has its own producer on the dead-letter topic, which is
//! therefore multi-producer), and [`GroupOptions`].

use crate::error::SubscribeError;
use crate::options::Options;
use crate::producer::Producer;
use crate::ring::{DeadLetters, FrameView, Sink};
use crate::start::Start;
use crate::subscriber::Subscriber;
use crate::topic::Topic;

/// The durable subscriber a created dead-letter topic gets, so that its
/// messages wait until someone reads them: `shmq tail --durable
/// dead-letters TOPIC`, or [`Topic::subscribe_durable`] with this name.
pub const KEEPER: &str = "dead-letters";

/// Bytes of the envelope before the original payload.
pub const ENVELOPE: usize = 72;
const MAGIC: u32 = u32::from_le_bytes(*b"SHDL");

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Delivered the group's `max_deliveries` times without being released.
    MaxDeliveries,
    /// A member rejected it ([`crate::Message::reject`]).
    Rejected,
}

/// The envelope at the start of every message of a dead-letter topic:
/// what the original message was. Encoding (little-endian): `SHDL`, reason
/// (u32: 1 max deliveries, 2 rejected), seq, position, publish time (u64
/// each), type, deliveries (u32 each), the group's name (32 bytes, zero
/// padded); then the original payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why it was moved.
    pub reason: Reason,
    /// Its sequence number in the original topic.
    pub seq: u64,
    /// Its position in the original topic.
    pub position: u64,
    /// Its publish time (`CLOCK_MONOTONIC` ns; 0 without timestamps).
    pub timestamp_ns: u64,
    /// Its user type.
    pub msg_type: u32,
    /// How many times it was delivered.
    pub deliveries: u32,
    /// The consumer group that gave up on it.
    pub group: String,
}

impl DeadLetter {
    /// The envelope followed by `payload`.
    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(ENVELOPE + payload.len());
        v.extend_from_slice(&MAGIC.to_le_bytes());
        v.extend_from_slice(&(if self.reason == Reason::Rejected { 2u32 } else { 1 }).to_le_bytes());
        for w in [self.seq, self.position, self.timestamp_ns] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend_from_slice(&self.msg_type.to_le_bytes());
        v.extend_from_slice(&self.deliveries.to_le_bytes());
        let mut name = [0u8; 32];
        let n = self.group.len().min(32);
        name[..n].copy_from_slice(&self.group.as_bytes()[..n]);
        v.extend_from_slice(&name);
        v.extend_from_slice(payload);
        v
    }

    /// The envelope and the original payload of a dead-letter message;
    /// `None` if it does not start with a valid envelope.
    pub fn decode(msg: &[u8]) -> Option<(DeadLetter, &[u8])> {
        let u32_at = |o: usize| msg.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let u64_at = |o: usize| msg.get(o..o + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        if msg.len() < ENVELOPE || u32_at(0)? != MAGIC {
            return None;
        }
        let reason = match u32_at(4)? {
            1 => Reason::MaxDeliveries,
            2 => Reason::Rejected,
            _ => return None,
        };
        let name = &msg[40..72];
        let end = name.iter().position(|&b| b == 0).unwrap_or(32);
        let d = DeadLetter {
            reason,
            seq: u64_at(8)?,
            position: u64_at(16)?,
            timestamp_ns: u64_at(24)?,
            msg_type: u32_at(32)?,
            deliveries: u32_at(36)?,
            group: String::from_utf8_lossy(&name[..end]).into_owned(),
        };
        Some((d, &msg[ENVELOPE..]))
    }
}

/// A member's producer on the dead-letter topic.
struct ProducerSink {
    producer: Producer,
    group: String,
}

impl DeadLetters for ProducerSink {
    fn bury(&mut self, view: &FrameView, payload: &[u8], deliveries: u32, rejected: bool, wait: bool) -> bool {
        let env = DeadLetter {
            reason: if rejected { Reason::Rejected } else { Reason::MaxDeliveries },
            seq: view.seq,
            position: view.pos,
            timestamp_ns: view.timestamp_ns,
            msg_type: view.msg_type,
            deliveries,
            group: self.group.clone(),
        };
        let msg = env.encode(payload);
        let r = if wait {
            self.producer.publish_typed(view.msg_type, &msg)
        } else {
            self.producer.try_publish_typed(view.msg_type, &msg)
        };
        r.is_ok()
    }
}

/// Settings of a consumer group member ([`Topic::subscribe_group_with`]).
///
/// # Examples
/// ```
/// # use shmq::{GroupOptions, Options, Topic};
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-dlq-{}", std::process::id()));
/// # let topic = Topic::create("jobs", &Options::new().dir(&dir).capacity(64 << 10))?;
/// // A message delivered 3 times without being released (its workers
/// // died) goes to "jobs.dead", made here if it does not exist.
/// let worker = topic.subscribe_group_with("workers", &GroupOptions::new().max_deliveries(3).dead_letter_topic("jobs.dead", true))?;
/// # drop((worker, topic)); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct GroupOptions {
    max_deliveries: Option<u32>,
    dead_letter: Option<(String, bool)>,
}

impl GroupOptions {
    /// No limit, no dead-letter topic (as `subscribe_group`).
    pub fn new() -> GroupOptions {
        GroupOptions::default()
    }
    /// A message delivered `n` times without being released is moved to
    /// the dead-letter topic (1 or more; stored in the group when this
    /// member creates it, and checked against it otherwise).
    pub fn max_deliveries(mut self, n: u32) -> GroupOptions {
        self.max_deliveries = Some(n);
        self
    }
    /// The dead-letter topic (in the same directory), created if `create`
    /// and missing (multi-producer, room for the group's largest message
    /// and its envelope). Needed by `max_deliveries` and by
    /// [`crate::Message::reject`].
    pub fn dead_letter_topic(mut self, name: &str, create: bool) -> GroupOptions {
        self.dead_letter = Some((name.to_string(), create));
        self
    }
}

impl Topic {
    /// Joins consumer group `group` as [`Topic::subscribe_group`] does,
    /// with poison-message handling: see [`GroupOptions`].
    pub fn subscribe_group_with(&self, group: &str, opts: &GroupOptions) -> Result<Subscriber, SubscribeError> {
        if opts.max_deliveries == Some(0) {
            return Err(SubscribeError::DeadLetter("max_deliveries must be 1 or more".into()));
        }
        let sink = match &opts.dead_letter {
            Some((name, create)) => Some(self.dead_letter_sink(group, name, *create)?),
            None => None,
        };
        let has_sink = sink.is_some();
        let sub = self.subscribe_group_members(group, opts.max_deliveries, sink)?;
        let max = sub.group_max_deliveries();
        if max > 0 && !has_sink {
            return Err(SubscribeError::DeadLetter(format!(
                "group {group:?} moves a message delivered {max} times to a dead-letter topic: give one \
                 (GroupOptions::dead_letter_topic)"
            )));
        }
        Ok(sub)
    }

    fn dead_letter_sink(&self, group: &str, name: &str, create: bool) -> Result<Sink, SubscribeError> {
        let err = |why: String| SubscribeError::DeadLetter(format!("{name}: {why}"));
        let dir = self.path().parent().map(|d| d.to_path_buf()).unwrap_or_default();
        let need = self.max_message() + ENVELOPE;
        let opts = Options::new().dir(dir);
        let t = match Topic::open(name, &opts) {
            Ok(t) => t,
            Err(crate::OpenError::NotFound { .. }) if create => {
                let mut o =
                    opts.clone().multi_producer(true).max_message(need as u32).capacity((need as u64 * 4).max(1 << 20));
                o.dead_letters = true;
                match Topic::create(name, &o) {
                    Ok(t) => {
                        // The creator keeps every dead letter until it is
                        // read: a durable subscriber from the first one.
                        let keeper = Subscriber::attach_durable_from(t.ring_arc(), KEEPER, Start::Oldest)?;
                        drop(keeper);
                        t
                    }
                    // Another member made it first (and its keeper).
                    Err(crate::OpenError::AlreadyExists { .. }) => {
                        Topic::open(name, &opts).map_err(|e| err(e.to_string()))?
                    }
                    Err(e) => return Err(err(e.to_string())),
                }
            }
            Err(e) => return Err(err(e.to_string())),
        };
        if !t.multi_producer() {
            return Err(err("it must be multi-producer (every member publishes to it)".into()));
        }
        if t.max_message() < need {
            return Err(err(format!(
                "its max message {} is below the {need} bytes a dead letter may take",
                t.max_message()
            )));
        }
        let producer = t.producer().map_err(|e| err(e.to_string()))?;
        Ok(Sink(Box::new(ProducerSink { producer, group: group.to_string() })))
    }

    fn subscribe_group_members(
        &self,
        group: &str,
        max: Option<u32>,
        sink: Option<Sink>,
    ) -> Result<Subscriber, SubscribeError> {
        self.check_group(group)?;
        Subscriber::attach_group_with(self.ring_arc(), group, max, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_garbage_is_refused() {
        let d = DeadLetter {
            reason: Reason::Rejected,
            seq: 7,
            position: 4096,
            timestamp_ns: 99,
            msg_type: 3,
            deliveries: 2,
            group: "workers".into(),
        };
        let m = d.encode(b"payload");
        assert_eq!(m.len(), ENVELOPE + 7);
        let (back, payload) = DeadLetter::decode(&m).expect("valid");
        assert_eq!((back, payload), (d, &b"payload"[..]));
        assert!(DeadLetter::decode(&m[..ENVELOPE - 1]).is_none());
        assert!(DeadLetter::decode(&[0u8; 100]).is_none());
        let mut bad = m.clone();
        bad[4] = 9;
        assert!(DeadLetter::decode(&bad).is_none());
    }
}
