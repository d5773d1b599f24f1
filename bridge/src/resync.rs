//! Where the stream's copy of a topic ends: the resync the out bridge
//! runs at start and after every error (see [`crate::outbound`]).
//!
//! [`resync`] reads the stream's last sequence (what the next publish
//! expects) and its last message: when that came from this topic instance,
//! its position says how far the stream holds the topic, and everything up
//! to it counts as stored. [`stored_positions`] is the slow look for the
//! one case where "up to it" is not enough: a refused message that a later
//! one was stored past (another writer moved the sequence), where the
//! stream is walked back to see which positions it really holds.

use std::sync::atomic::Ordering::Relaxed;

use async_nats::jetstream::{self, stream::Stream};

use crate::conn;
use crate::status::Stats;
use crate::wire::Meta;
use crate::{wait_or_stop, Stop};

/// Where the stream's copy of this topic ends, as its last message says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sync {
    /// The stream's last sequence (what the next publish expects).
    pub last_seq: u64,
    /// Position and sequence of that message, when it came from this topic instance.
    pub position: Option<u64>,
    pub seq: Option<u64>,
    /// The stream ends with this topic's end of stream, at this position.
    pub eos: Option<u64>,
}

pub async fn resync(stream: &mut Stream, instance: u64) -> Result<Sync, String> {
    let info = stream.info().await.map_err(|e| format!("stream info: {e}"))?;
    let last_seq = info.state.last_sequence;
    let none = Sync { last_seq, ..Sync::default() };
    if last_seq == 0 {
        return Ok(none);
    }
    let m = match stream.get_raw_message(last_seq).await {
        Ok(m) => m,
        // The last message was deleted (or aged out) meanwhile: nothing of
        // it to confirm; the sequence still chains.
        Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => return Ok(none),
        Err(e) => return Err(format!("reading the stream's last message: {e}")),
    };
    let h = Some(&m.headers);
    if !Meta::is_from(h, instance) {
        return Ok(none);
    }
    let meta = Meta::parse(h).map_err(|e| format!("the stream's last message: {e}"))?;
    if meta.eos {
        // An end of stream: the last message is the one it names as before it.
        return Ok(Sync { last_seq, position: meta.prev, seq: meta.prev.map(|_| meta.seq), eos: Some(meta.position) });
    }
    Ok(Sync { last_seq, position: Some(meta.position), seq: Some(meta.seq), eos: None })
}

/// [`resync`], retried with back-off until it answers; `None` if stopped first.
pub async fn resync_patiently(stream: &mut Stream, instance: u64, stats: &Stats, stop: &mut Stop) -> Option<Sync> {
    let mut attempt = 0;
    loop {
        match resync(stream, instance).await {
            Ok(s) => return Some(s),
            Err(e) => {
                stats.error(&e);
                stats.retries.fetch_add(1, Relaxed);
                attempt += 1;
                if wait_or_stop(conn::reconnect_delay(attempt), stop).await {
                    return None;
                }
            }
        }
    }
}

/// Stream messages looked at, beyond the window, when looking for holes
/// (other writers' messages among this bridge's).
pub const WALK_SLACK: u64 = 1024;

/// The positions of this topic's messages the stream holds from position
/// `from` on, read backwards from `last_seq`; `None` if `steps` messages
/// did not reach back that far (then nothing is known to be missing).
pub async fn stored_positions(
    stream: &Stream,
    instance: u64,
    last_seq: u64,
    from: u64,
    steps: u64,
) -> Result<Option<std::collections::HashSet<u64>>, String> {
    let mut set = std::collections::HashSet::new();
    let first = last_seq.saturating_sub(steps).max(1);
    for seq in (first..=last_seq).rev() {
        let m = match stream.get_raw_message(seq).await {
            Ok(m) => m,
            Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => continue,
            Err(e) => return Err(format!("reading stream sequence {seq}: {e}")),
        };
        if !Meta::is_from(Some(&m.headers), instance) {
            continue; // another writer's
        }
        let meta = Meta::parse(Some(&m.headers)).map_err(|e| format!("stream sequence {seq}: {e}"))?;
        if meta.position < from {
            return Ok(Some(set));
        }
        if !meta.eos {
            set.insert(meta.position);
        }
    }
    // The stream's start (nothing older is left) or the walk's end.
    Ok((first == 1).then_some(set))
}
