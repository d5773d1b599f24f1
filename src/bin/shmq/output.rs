//! What several subcommands print: aligned tables, and a topic as JSON
//! (the library's `TopicInfo` through serde, plus what only the CLI knows:
//! the processes that map the topic).

use shmq::TopicInfo;

/// A topic as the JSON object `ls --json` and `info --json` print (see
/// docs/CLI.md): every `TopicInfo` field, plus `users` (pids mapping the
/// topic that this user can see, for display), `in_use` (someone has it
/// open for producing or subscribing: the kernel's answer, in any pid
/// namespace) and `stale` (not in use).
pub fn info_json(i: &TopicInfo, users: &[u32], in_use: bool) -> serde_json::Value {
    let mut v =
        serde_json::to_value(i).unwrap_or_else(|e| serde_json::json!({ "name": i.name, "error": e.to_string() }));
    if let Some(o) = v.as_object_mut() {
        o.insert("users".into(), serde_json::json!(users));
        o.insert("in_use".into(), serde_json::json!(in_use));
        o.insert("stale".into(), serde_json::json!(!in_use));
    }
    v
}

/// Prints `rows` under `head`, each column as wide as its widest cell.
pub fn table(head: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
