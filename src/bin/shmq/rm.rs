//! `shmq rm`: remove topics, refusing, without `--force`, those in use
//! (any handle open for producing or subscribing, in any process, user or
//! pid namespace: the kernel's users lock says) and those that belong to
//! another user. A topic that cannot be opened is not taken for unused:
//! only one that is provably not a topic (a corrupt or foreign-version
//! file of this user) is removed without `--force`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use shmq::{OpenError, Options, Topic};

use crate::{fail, Fail, EXIT_NOT_FOUND, R};

/// Why `name` must not be removed without `--force`, if it must not.
fn refusal(dir: &Path, name: &str, opts: &Options) -> Result<Option<String>, Fail> {
    let path = dir.join(name);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Fail(EXIT_NOT_FOUND, format!("{name}: not found in {}", dir.display())))
        }
        Err(e) => return Ok(Some(format!("cannot look at it: {e}"))),
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Ok(Some(format!("it belongs to uid {}, not to you", meta.uid())));
    }
    match Topic::open_read_only(name, opts) {
        Ok(t) if t.in_use() => Ok(Some(match t.users() {
            // A lock test that fails (a file system without OFD locks)
            // counts as "in use"; so do users in other pid namespaces.
            pids if pids.is_empty() => "it is in use (by processes this user cannot see, or its file system \
                                        cannot answer lock tests)"
                .to_string(),
            pids => format!("it is in use (pids seen: {pids:?})"),
        })),
        Ok(_) => Ok(None),
        // Provably no usable topic: safe to remove.
        Err(OpenError::Corrupt { .. } | OpenError::VersionMismatch { .. } | OpenError::NotReady) => Ok(None),
        Err(OpenError::NotATopic { what, .. }) => Ok(Some(format!("it is {what}, not a topic"))),
        Err(e) => Ok(Some(format!("it cannot be opened to check that nobody uses it ({e})"))),
    }
}

pub fn run(dir: &Path, opts: &Options, topics: &[String], force: bool) -> R {
    let mut result = Ok(());
    for name in topics {
        if !force {
            match refusal(dir, name, opts) {
                Ok(None) => {}
                Ok(Some(why)) => {
                    eprintln!("shmq: not removing {name}: {why}; use --force to remove it anyway");
                    result = Err(fail(format!("{name}: refused")));
                    continue;
                }
                Err(f) => {
                    eprintln!("shmq: {}", f.1);
                    result = Err(f);
                    continue;
                }
            }
        }
        Topic::unlink_in(dir, name)?;
        println!("removed {name}");
    }
    result
}
