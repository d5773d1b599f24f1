//! `shmq gc`: remove topics no live process uses, and files left by
//! creators that crashed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use shmq::{Options, Topic};

use crate::ls::scan_dir;
use crate::{fail, R};

/// A file left by a creation that never finished (the fallback path on
/// file systems without `O_TMPFILE`) is no older than a few milliseconds
/// while its creator lives: one a minute old is abandoned, whoever made it
/// (pids are no help across pid namespaces).
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

pub fn run(dir: &Path, opts: &Options, dry_run: bool) -> R {
    let (names, temps) = scan_dir(dir)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut n = 0;
    for name in names {
        let owned = std::fs::symlink_metadata(dir.join(&name)).is_ok_and(|m| m.uid() == me);
        if !owned {
            println!("kept {name}: it belongs to another user");
            continue;
        }
        let t = match Topic::open_read_only(&name, opts) {
            Ok(t) => t,
            Err(e) => {
                println!("kept {name}: not a usable shmq topic ({e}); `shmq rm` removes it");
                continue;
            }
        };
        // In use by anyone (the kernel's users lock, any pid namespace);
        // or durable subscribers and groups that will come back.
        let keeps = t.info().subscribers.iter().any(|s| s.alive || s.durable || s.kind == shmq::SlotKind::Group);
        let in_use = t.in_use();
        drop(t);
        if !in_use && !keeps {
            if !dry_run {
                Topic::unlink_in(dir, &name)?;
            }
            println!("{verb} {name}: nothing uses it");
            n += 1;
        }
    }
    for tmp in temps {
        let old = std::fs::symlink_metadata(dir.join(&tmp))
            .ok()
            .filter(|m| m.uid() == me)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ABANDONED_AFTER);
        if old {
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
