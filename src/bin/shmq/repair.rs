//! `shmq repair`: reclaim dead subscribers' slots and recover a dead
//! producer's stuck frame; `shmq close`: end the stream.

use shmq::{Options, Topic};

use crate::R;

pub fn run(topic: &str, opts: &Options) -> R {
    let t = Topic::open(topic, opts)?;
    let dead: Vec<u32> = t
        .info()
        .subscribers
        .iter()
        .filter(|s| !s.alive && matches!(s.kind, shmq::SlotKind::Subscriber))
        .map(|s| s.pid)
        .collect();
    let (reaped, repaired) = t.repair();
    println!(
        "{topic}: reclaimed {reaped} dead subscriber slot(s){}; repaired {repaired} stuck frame(s)",
        if dead.is_empty() { String::new() } else { format!(" (pids {dead:?})") }
    );
    Ok(())
}

/// `shmq close`: marks the stream closed at its end and wakes subscribers.
pub fn close(topic: &str, opts: &Options) -> R {
    let t = Topic::open(topic, opts)?;
    t.close().map_err(|e| crate::fail(e.to_string()))?;
    println!(
        "{topic}: closed after message {} (a producer that publishes again reopens it)",
        t.info().published_messages
    );
    Ok(())
}
