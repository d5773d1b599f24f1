//! `shmq create`: create a topic.

use shmq::{Options, Policy, Topic};

use crate::{fail, units, Fail, PolicyArg, EXIT_USAGE, R};

#[allow(clippy::too_many_arguments)]
pub fn run(
    topic: &str,
    opts: Options,
    capacity: u64,
    max_message: Option<u64>,
    policy: PolicyArg,
    subs: u32,
    multi: bool,
    mode: &str,
) -> R {
    let mode = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .map_err(|_| Fail(EXIT_USAGE, format!("invalid --mode {mode:?}: expected octal, e.g. 0660")))?;
    let mut o = opts.capacity(capacity).max_subscribers(subs).multi_producer(multi).mode(mode).policy(match policy {
        PolicyArg::Block => Policy::Block,
        PolicyArg::Overwrite => Policy::Overwrite,
    });
    if let Some(m) = max_message {
        o = o.max_message(u32::try_from(m).map_err(|_| fail("--max-message is too large"))?);
    }
    let t = Topic::create(topic, &o)?;
    println!(
        "created {} ({} ring, max message {}, {}, {} slots{})",
        t.path().display(),
        units::human(t.capacity()),
        units::human(t.max_message() as u64),
        t.policy(),
        t.max_subscribers(),
        if t.info().timestamps { ", timestamps" } else { "" }
    );
    Ok(())
}
