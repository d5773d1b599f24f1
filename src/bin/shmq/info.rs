//! `shmq info`: a topic's header, counters and subscriber table.

use shmq::{Options, Topic};

use crate::output::{info_json, table};
use crate::{units, R};

pub fn run(topic: &str, opts: &Options, json: bool) -> R {
    let t = Topic::open_read_only(topic, opts)?;
    let i = t.info();
    let users = t.users();
    let in_use = t.in_use();
    if json {
        println!("{}", info_json(&i, &users, in_use));
        return Ok(());
    }
    let now_unix = shmq::__private::sys::unix_ns();
    println!("topic        {}  ({})", i.name, t.path().display());
    println!(
        "layout       version {}, capacity {}, max message {}",
        shmq::layout::VERSION,
        units::human(i.capacity),
        units::human(i.max_message as u64)
    );
    println!(
        "policy       {}, {} producer, {}",
        i.policy,
        if i.multi_producer { "multi" } else { "single" },
        if i.timestamps { "messages timestamped" } else { "no timestamps" }
    );
    println!(
        "created      {} s ago by pid {}",
        now_unix.saturating_sub(i.created_unix_ns) / 1_000_000_000,
        i.creator_pid
    );
    match i.producer_pid {
        Some(p) => println!(
            "producer     pid {p} ({})",
            if i.producer_alive { "alive" } else { "dead: `shmq repair` recovers" }
        ),
        None if i.multi_producer => {
            println!("producer     (multi-producer topics do not register producers)")
        }
        None => println!("producer     none attached"),
    }
    println!("published    {} messages, {}", i.published_messages, units::human(i.published_bytes));
    println!(
        "stream       {}{}",
        if i.closed {
            "closed (subscribers that read everything are told so; a new message reopens it)"
        } else {
            "open"
        },
        if i.close_on_exit { ", closes when its last producer is gone" } else { "" }
    );
    println!(
        "counters     producer waits {}, reaped subscribers {}, repaired frames {}",
        i.producer_waits, i.reaped, i.repaired
    );
    println!(
        "users        {}",
        match (in_use, users.is_empty()) {
            (false, _) => "none (stale)".to_string(),
            (true, true) => "in use (by processes this user cannot see, or in another pid namespace)".to_string(),
            (true, false) => format!("in use; pids seen {users:?}"),
        }
    );
    if i.subscribers.is_empty() {
        println!("subscribers  none ({} slots)", i.max_subscribers);
        return Ok(());
    }
    println!("subscribers  {} of {} slots:", i.subscribers.len(), i.max_subscribers);
    let rows: Vec<Vec<String>> = i
        .subscribers
        .iter()
        .map(|s| {
            vec![
                s.slot.to_string(),
                if s.name.is_empty() { "-".into() } else { s.name.clone() },
                s.pid.to_string(),
                match (s.kind, s.alive) {
                    (shmq::SlotKind::Group, _) if s.max_deliveries > 0 || s.dead_lettered > 0 => format!(
                        "group, {} dead-lettered (after {} deliveries)",
                        s.dead_lettered,
                        if s.max_deliveries > 0 { s.max_deliveries.to_string() } else { "-".into() }
                    ),
                    (shmq::SlotKind::Group, _) => "group".into(),
                    (shmq::SlotKind::Member, true) => "alive, member".into(),
                    (shmq::SlotKind::Member, false) => "DEAD member".into(),
                    (shmq::SlotKind::Durable, true) => "alive, durable".into(),
                    (shmq::SlotKind::Durable, false) => "detached, durable".into(),
                    (_, true) => "alive".into(),
                    (_, false) => "DEAD".into(),
                },
                s.cursor.to_string(),
                units::human(s.lag_bytes),
                s.lag_messages.to_string(),
                s.received.to_string(),
                s.lost.to_string(),
            ]
        })
        .collect();
    table(&["SLOT", "NAME", "PID", "STATE", "CURSOR", "LAG", "LAG MSGS", "RECEIVED", "LOST"], &rows);
    Ok(())
}
