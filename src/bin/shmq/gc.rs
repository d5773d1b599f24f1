//! `shmq gc`: remove topics no live process uses, and files left by
//! creators that crashed.

use std::path::Path;

use shmq::{Options, Topic};

use crate::ls::scan_dir;
use crate::{fail, R};

fn temp_creator(name: &str) -> Option<u32> {
    // .NAME.PID.NANOS.tmp
    let parts: Vec<&str> = name.trim_end_matches(".tmp").rsplitn(3, '.').collect();
    parts.get(1)?.parse().ok()
}

pub fn run(dir: &Path, opts: &Options, dry_run: bool) -> R {
    let (names, temps) = scan_dir(dir)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut n = 0;
    for name in names {
        let Ok(t) = Topic::open_read_only(&name, opts) else {
            println!("kept {name}: not a readable shmq topic");
            continue;
        };
        let users = t.users();
        // Live subscribers, and durable ones that will come back.
        let live_subs =
            t.info().subscribers.iter().filter(|s| s.alive || s.durable || s.kind == shmq::SlotKind::Group).count();
        drop(t);
        if users.is_empty() && live_subs == 0 {
            if !dry_run {
                Topic::unlink_in(dir, &name)?;
            }
            println!("{verb} {name}: no live process uses it");
            n += 1;
        }
    }
    for tmp in temps {
        let dead = temp_creator(&tmp).is_none_or(|pid| shmq::__private::sys::process_start(pid).is_none());
        if dead {
            if !dry_run {
                std::fs::remove_file(dir.join(&tmp)).map_err(|e| fail(format!("removing {tmp}: {e}")))?;
            }
            println!("{verb} {tmp}: left by a creation that never finished");
            n += 1;
        }
    }
    if n == 0 {
        println!("nothing to remove");
    }
    Ok(())
}
