//! `shmq repair`: reclaim dead subscribers' slots and recover a dead
//! producer's stuck frame.

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
