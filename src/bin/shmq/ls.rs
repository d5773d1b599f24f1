//! `shmq ls`: the topics in the directory, one line (or JSON object) each.

use std::path::Path;

use shmq::{Options, Topic, TopicInfo};

use crate::output::{info_json, table};
use crate::{fail, units, Fail, EXIT_NOT_FOUND, R};

/// Topic names in `dir` (visible files), sorted, and hidden temporary
/// files left by creators.
pub fn scan_dir(dir: &Path) -> Result<(Vec<String>, Vec<String>), Fail> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Fail(EXIT_NOT_FOUND, format!("topic directory {} does not exist (no topics yet?)", dir.display()))
        } else {
            fail(format!("cannot read {}: {e}", dir.display()))
        }
    })?;
    let (mut names, mut temps) = (Vec::new(), Vec::new());
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            if name.ends_with(".tmp") {
                temps.push(name);
            }
        } else {
            names.push(name);
        }
    }
    names.sort();
    temps.sort();
    Ok((names, temps))
}

pub fn worst_lag(i: &TopicInfo) -> u64 {
    i.subscribers.iter().map(|s| s.lag_bytes).max().unwrap_or(0)
}

pub fn run(dir: &Path, opts: &Options, json: bool) -> R {
    let (names, temps) = scan_dir(dir)?;
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for name in &names {
        match Topic::open_read_only(name, opts) {
            Ok(t) => {
                let i = t.info();
                let users = t.users();
                let in_use = t.in_use();
                out.push(info_json(&i, &users, in_use));
                rows.push(vec![
                    name.clone(),
                    units::human(i.capacity),
                    i.policy.to_string(),
                    if i.multi_producer { "multi" } else { "single" }.into(),
                    format!("{}/{}", i.subscribers.len(), i.max_subscribers),
                    i.published_messages.to_string(),
                    units::human(worst_lag(&i)),
                    match (in_use, users.len()) {
                        (false, _) => "stale".to_string(),
                        (true, 0) => "in use".into(),
                        (true, n) => format!("in use ({n} pids seen)"),
                    } + if i.closed { ", closed" } else { "" },
                ]);
            }
            Err(e) => {
                out.push(serde_json::json!({ "name": name, "error": e.to_string() }));
                rows.push(vec![
                    name.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("unreadable: {e}"),
                ]);
            }
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(out));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no topics in {}", dir.display());
    } else {
        table(&["TOPIC", "CAPACITY", "POLICY", "PRODUCER", "SUBS", "PUBLISHED", "WORST LAG", "STATE"], &rows);
    }
    if !temps.is_empty() {
        println!("{} unfinished topic file(s) from interrupted creations: `shmq gc` removes them", temps.len());
    }
    Ok(())
}
