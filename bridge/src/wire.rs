//! What a message carries across: its JetStream headers.
//!
//! | header | value |
//! |---|---|
//! | `Nats-Msg-Id` | `<instance>:<position>`: the topic instance ([`shmq::Topic::instance_id`], 16 hex digits) and the message's byte position in the topic. Unique for the life of a topic and never reused by a topic deleted and created again, so JetStream's de-duplication can only merge a message with itself. The resync reads both parts back from the stream's last message. |
//! | `Shmq-Seq` | the message's sequence number in its topic |
//! | `Shmq-Type` | the user type (`publish_typed`), when not 0 |
//! | `Shmq-Timestamp` | publish time on the origin host (`CLOCK_MONOTONIC` ns), when the topic keeps timestamps |
//! | `Shmq-Prev` | position of the message this bridge stored just before this one, from the same topic instance (absent when there was none, or it is not known): the chain the inbound bridge checks, so it never applies a message past a hole |
//! | `Shmq-Eos` | `1` on the empty message that carries the origin's end of stream ([`shmq::Producer::close`]); its id is `<instance>:<end position>:eos` |
//! | `Shmq-Lagged` | messages the outbound bridge's subscriber lost just before this one (an `Overwrite` topic lapped it) |
//! | `Shmq-Dropped` | messages `--on-down drop` released unsent just before this one |
//!
//! The inbound bridge counts `Shmq-Lagged` and `Shmq-Dropped` as lost, so
//! a gap is reported at the far end exactly, and publishes the payload
//! with its type.

use async_nats::HeaderMap;

pub const SEQ: &str = "Shmq-Seq";
pub const TYPE: &str = "Shmq-Type";
pub const TIMESTAMP: &str = "Shmq-Timestamp";
pub const PREV: &str = "Shmq-Prev";
pub const EOS: &str = "Shmq-Eos";
pub const LAGGED: &str = "Shmq-Lagged";
pub const DROPPED: &str = "Shmq-Dropped";
pub const MSG_ID: &str = "Nats-Msg-Id";

/// The `Nats-Msg-Id` of the message at `position` of topic `instance`.
pub fn msg_id(instance: u64, position: u64) -> String {
    format!("{instance:016x}:{position}")
}

/// The `Nats-Msg-Id` of the end of stream at `position` (where the next
/// message would start): never the id of a message.
pub fn eos_id(instance: u64, position: u64) -> String {
    format!("{instance:016x}:{position}:eos")
}

/// One message's headers, as the outbound bridge sends them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    pub instance: u64,
    pub position: u64,
    pub seq: u64,
    pub msg_type: u32,
    pub timestamp_ns: u64,
    pub lagged: u64,
    pub dropped: u64,
    /// Position of the message stored just before this one (same instance).
    pub prev: Option<u64>,
    /// The end of the origin's stream, not a message (`position` is where it ends).
    pub eos: bool,
}

impl Meta {
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SEQ, self.seq.to_string().as_str());
        if self.msg_type != 0 {
            h.insert(TYPE, self.msg_type.to_string().as_str());
        }
        if self.timestamp_ns != 0 {
            h.insert(TIMESTAMP, self.timestamp_ns.to_string().as_str());
        }
        if let Some(p) = self.prev {
            h.insert(PREV, p.to_string().as_str());
        }
        if self.eos {
            h.insert(EOS, "1");
        }
        if self.lagged != 0 {
            h.insert(LAGGED, self.lagged.to_string().as_str());
        }
        if self.dropped != 0 {
            h.insert(DROPPED, self.dropped.to_string().as_str());
        }
        h
    }

    /// Reads what a message carries. A header that is missing reads as 0;
    /// one that does not parse is an error (a stream written by something
    /// else than a bridge, or tampered with), never a guess.
    pub fn parse(h: Option<&HeaderMap>) -> Result<Meta, String> {
        let Some(h) = h else { return Ok(Meta::default()) };
        fn num(h: &HeaderMap, name: &str, radix: u32) -> Result<u64, String> {
            match h.get(name) {
                None => Ok(0),
                Some(v) => u64::from_str_radix(v.as_str(), radix)
                    .map_err(|_| format!("header {name}: {:?} is not a number", v.as_str())),
            }
        }
        let msg_type = num(h, TYPE, 10)?;
        let (instance, position, eos) = match h.get(MSG_ID) {
            None => (0, 0, false),
            Some(v) => parse_id(v.as_str())
                .ok_or_else(|| format!("header {MSG_ID}: {:?} is not <instance>:<position>", v.as_str()))?,
        };
        Ok(Meta {
            instance,
            position,
            seq: num(h, SEQ, 10)?,
            msg_type: u32::try_from(msg_type).map_err(|_| format!("header {TYPE}: {msg_type} is out of range"))?,
            timestamp_ns: num(h, TIMESTAMP, 10)?,
            lagged: num(h, LAGGED, 10)?,
            dropped: num(h, DROPPED, 10)?,
            prev: match h.get(PREV) {
                None => None,
                Some(_) => Some(num(h, PREV, 10)?),
            },
            eos: eos || h.get(EOS).is_some(),
        })
    }

    /// Whether the message came from topic `instance` (by its id).
    pub fn is_from(h: Option<&HeaderMap>, instance: u64) -> bool {
        h.and_then(|h| h.get(MSG_ID)).and_then(|v| parse_id(v.as_str())).is_some_and(|(i, _, _)| i == instance)
    }
}

/// `<instance hex>:<position>[:eos]` back into its parts.
pub fn parse_id(id: &str) -> Option<(u64, u64, bool)> {
    let (i, rest) = id.split_once(':')?;
    let (p, eos) = match rest.strip_suffix(":eos") {
        Some(p) => (p, true),
        None => (rest, false),
    };
    Some((u64::from_str_radix(i, 16).ok()?, p.parse().ok()?, eos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_errors() {
        let m = Meta {
            instance: 0xdead_beef,
            position: 4096,
            seq: 7,
            msg_type: 3,
            timestamp_ns: 99,
            lagged: 2,
            dropped: 1,
            prev: Some(4000),
            eos: false,
        };
        let mut h = m.headers();
        h.insert(MSG_ID, msg_id(m.instance, m.position).as_str()); // as the publish adds it
        assert_eq!(Meta::parse(Some(&h)).unwrap(), m);
        assert!(Meta::is_from(Some(&h), 0xdead_beef));
        assert!(!Meta::is_from(Some(&h), 1));
        let mut h = HeaderMap::new();
        h.insert(TYPE, "4294967296");
        assert!(Meta::parse(Some(&h)).is_err());
        let mut h = HeaderMap::new();
        h.insert(MSG_ID, "nothex:1");
        assert!(Meta::parse(Some(&h)).is_err());
        assert_eq!(parse_id("00ff:42"), Some((255, 42, false)));
        assert_eq!(parse_id(&eos_id(255, 42)), Some((255, 42, true)));
        assert_eq!(parse_id("00ff:42:x"), None);
        assert_eq!(msg_id(1, 2), "0000000000000001:2");
    }
}
