//! `shmq rm`: remove topics, refusing those that live processes use.

use std::path::Path;

use shmq::{OpenError, Options, Topic};

use crate::{fail, Fail, EXIT_NOT_FOUND, R};

pub fn run(dir: &Path, opts: &Options, topics: &[String], force: bool) -> R {
    let mut result = Ok(());
    for name in topics {
        let users = match Topic::open_read_only(name, opts) {
            Ok(t) => t.users(),
            Err(OpenError::NotFound { .. }) => {
                eprintln!("shmq: topic {name} not found in {}", dir.display());
                result = Err(Fail(EXIT_NOT_FOUND, format!("{name}: not found")));
                continue;
            }
            Err(_) => Vec::new(), // corrupt or foreign files can be removed
        };
        if !users.is_empty() && !force {
            eprintln!("shmq: {name} is in use by pid(s) {users:?}; stop them first or use --force");
            result = Err(fail(format!("{name}: in use")));
            continue;
        }
        Topic::unlink_in(dir, name)?;
        println!("removed {name}");
    }
    result
}
