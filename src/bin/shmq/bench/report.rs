//! What the bench prints: progress while it runs, then the tables (or the
//! JSON report) and the targets, every ratio a median of paired ratios.

use std::io::Write;

use super::{Kind, Plan};

// ------------------------------------------------------------ report

pub(super) struct Progress {
    pub(super) total: usize,
    pub(super) done: usize,
    pub(super) tty: bool,
}

impl Progress {
    pub(super) fn step(&mut self, what: &str) {
        self.done += 1;
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        let bar =
            format!("[{}{}] {:>2}/{} {what}", "#".repeat(filled), " ".repeat(width - filled), self.done, self.total);
        if self.tty {
            eprint!("\r\x1b[2K{bar}");
        } else {
            eprintln!("{bar}");
        }
        let _ = std::io::stderr().flush();
    }
    pub(super) fn end(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

pub(super) fn size_name(s: usize) -> String {
    if s >= 1 << 20 {
        format!("{} MiB", s >> 20)
    } else if s >= 1024 {
        format!("{} KiB", s >> 10)
    } else {
        format!("{s} B")
    }
}
/// The median over repetitions of `a[i] / b[i]`: each ratio compares two
/// measurements taken back to back, so a change in the machine's state
/// between repetitions (a neighbour, the host moving our vCPUs) cancels.
pub(super) fn paired_ratio(a: Option<Vec<f64>>, b: Option<Vec<f64>>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let r: Vec<f64> = a.iter().zip(&b).filter(|(_, &y)| y > 0.0).map(|(x, y)| x / y).collect();
    (!r.is_empty()).then(|| median_by(r, |x| *x))
}

/// How steady repeated runs were: the slowest over the median (`None`
/// with fewer than three runs, where it says nothing).
pub(super) fn steadiness(runs: Option<Vec<f64>>) -> Option<f64> {
    let runs = runs.filter(|r| r.len() >= 3)?;
    let slowest = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let median = median_by(runs, |x| *x);
    (median > 0.0).then(|| slowest / median)
}

/// The median of `runs` by `key` (the upper one of an even count).
pub(super) fn median_by<T: Copy>(mut runs: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    runs[runs.len() / 2]
}

/// Prints (or writes as JSON) what `run_in` measured: per measurement the
/// median over repetitions, per ratio the median of the paired ratios, and
/// the targets.
#[allow(clippy::too_many_arguments)]
pub fn print(
    plan: &Plan,
    json: bool,
    reps: usize,
    lat_sizes: &[usize],
    tput_sizes: &[usize],
    lat_runs: Vec<(Kind, usize, Vec<[u64; 5]>)>,
    tput_runs: Vec<(Kind, usize, Vec<f64>)>,
    fan_runs: Vec<(usize, Vec<f64>)>,
) -> Result<(), String> {
    // Per repetition, one figure of a measurement (p50s, or msgs/s).
    let lat_reps = |kind: Kind, size: usize, q: usize| {
        lat_runs.iter().find(|x| x.0 == kind && x.1 == size).map(|x| x.2.iter().map(|p| p[q] as f64).collect())
    };
    let tput_reps =
        |kind: Kind, size: usize| tput_runs.iter().find(|x| x.0 == kind && x.1 == size).map(|x| x.2.clone());
    let lat_ratio = |a: Kind, b: Kind, size: usize| paired_ratio(lat_reps(a, size, 0), lat_reps(b, size, 0));
    let tput_ratio = |a: Kind, b: Kind, size: usize| paired_ratio(tput_reps(a, size), tput_reps(b, size));
    let targets: Vec<(&str, Option<f64>, &str, f64)> = vec![
        ("one-way p50 / raw cache line p50 (64 B)", lat_ratio(Kind::Shmq, Kind::Raw, 64), "<=", 1.25),
        (
            "shmq p99.9 / shmq p50 (64 B)",
            paired_ratio(lat_reps(Kind::Shmq, 64, 3), lat_reps(Kind::Shmq, 64, 0)),
            "<=",
            3.0,
        ),
        ("64 B throughput / bare ring", tput_ratio(Kind::Shmq, Kind::Bare, 64), ">=", 0.5),
        ("64 B publish_batch throughput / bare ring", tput_ratio(Kind::ShmqBatch, Kind::Bare, 64), ">=", 0.8),
        ("64 B batch in place throughput / bare ring", tput_ratio(Kind::ShmqBatchWith, Kind::Bare, 64), ">=", 0.8),
        ("64 B throughput: slowest run / median run", steadiness(tput_reps(Kind::Shmq, 64)), ">=", 0.6),
        ("64 B throughput / unix socket", tput_ratio(Kind::Shmq, Kind::Unix, 64), ">=", 30.0),
        ("4 KiB throughput / bare ring", tput_ratio(Kind::Shmq, Kind::Bare, 4096), ">=", 1.0),
        ("blocking round trip p50 / futex ping-pong p50", lat_ratio(Kind::ShmqBlock, Kind::Futex, 64), "<=", 1.1),
        ("C API p50 / Rust API p50 (64 B)", lat_ratio(Kind::C, Kind::Shmq, 64), "<=", 1.1),
    ];
    let lat: Vec<(Kind, usize, [u64; 5])> =
        lat_runs.iter().map(|(k, s, runs)| (*k, *s, median_by(runs.clone(), |p| p[0] as f64))).collect();
    let tput: Vec<(Kind, usize, f64)> =
        tput_runs.iter().map(|(k, s, runs)| (*k, *s, median_by(runs.clone(), |r| *r))).collect();
    let fan: Vec<(usize, f64)> = fan_runs.into_iter().map(|(k, runs)| (k, median_by(runs, |r| *r))).collect();
    let met = |v: f64, op: &str, t: f64| if op == "<=" { v <= t } else { v >= t };

    if json || plan.json_out.is_some() {
        let v = serde_json::json!({
            "cpus": [plan.cpus.0, plan.cpus.1],
            "quick": plan.quick,
            "repeat": reps,
            "latency_one_way_ns": lat.iter().map(|(k, s, p)| serde_json::json!({
                "kind": k.name(), "size": s, "p50": p[0], "p90": p[1], "p99": p[2], "p999": p[3], "max": p[4],
            })).collect::<Vec<_>>(),
            "throughput": tput.iter().map(|(k, s, r)| serde_json::json!({
                "kind": k.name(), "size": s, "msgs_per_s": r, "gb_per_s": r * *s as f64 / 1e9,
            })).collect::<Vec<_>>(),
            "fanout_64b": fan.iter().map(|(k, r)| serde_json::json!({
                "subscribers": k, "delivered_msgs_per_s": r,
            })).collect::<Vec<_>>(),
            "shmq_over_frames_p50_64b": lat_ratio(Kind::Shmq, Kind::Frames, 64),
            "targets": targets.iter().map(|(n, v, op, t)| serde_json::json!({
                "name": n, "ratio": v, "op": op, "target": t, "met": v.map(|v| met(v, op, *t)),
            })).collect::<Vec<_>>(),
        });
        if let Some(path) = &plan.json_out {
            std::fs::write(path, format!("{v}\n")).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        if json {
            println!("{v}");
            return Ok(());
        }
    }

    println!(
        "shmq bench: processes pinned to CPUs {} and {}{}",
        plan.cpus.0,
        plan.cpus.1,
        if plan.quick { " (quick)" } else { "" }
    );
    if reps > 1 {
        println!("each figure: the median of {reps} runs (by p50, or by msgs/s); each ratio: the median");
        println!("of the {reps} ratios of two measurements taken back to back");
    }
    for &size in lat_sizes {
        println!("\nround-trip latency, {} messages, reported one-way (ns)", size_name(size));
        println!("  {:<26} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9}", "", "p50", "p90", "p99", "p99.9", "max", "p50/raw");
        for (k, _, p) in lat.iter().filter(|x| x.1 == size) {
            let r = lat_ratio(*k, Kind::Raw, size).map_or(String::from("-"), |r| format!("{r:.2}x"));
            println!("  {:<26} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9}", k.label(), p[0], p[1], p[2], p[3], p[4], r);
        }
    }
    for &size in tput_sizes {
        println!("\nthroughput, {} messages, every byte checked", size_name(size));
        println!("  {:<26} {:>13} {:>9} {:>10} {:>10}", "", "msgs/s", "GB/s", "vs bare", "vs unix");
        for (k, _, r) in tput.iter().filter(|x| x.1 == size) {
            let vb = tput_ratio(*k, Kind::Bare, size).map_or("-".into(), |b| format!("{b:.2}x"));
            let vu = tput_ratio(*k, Kind::Unix, size).map_or("-".into(), |u| format!("{u:.1}x"));
            println!("  {:<26} {:>13.0} {:>9.3} {:>10} {:>10}", k.label(), r, r * size as f64 / 1e9, vb, vu);
        }
    }
    if !fan.is_empty() {
        println!("\nfan-out, 64 B messages, one producer (CPU {}) and k subscriber processes", plan.cpus.0);
    }
    for (k, r) in &fan {
        println!("  k = {k}: {r:>12.0} messages/s delivered in total ({:.0} per subscriber)", r / *k as f64);
    }
    if let Some(r) = lat_ratio(Kind::Shmq, Kind::Frames, 64) {
        println!(
            "\nshmq's one-way p50 over the bare ring of frames (the same two cache lines, nothing else), 64 B: {r:.2}x"
        );
    }
    println!("\ntargets (ratios from this run)");
    for (n, v, op, t) in &targets {
        match v {
            Some(v) => {
                println!("  {} {:<48} {:>7.2} (target {op} {t})", if met(*v, op, *t) { "met " } else { "MISS" }, n, v)
            }
            None => println!("  n/a  {n:<48} (not measured)"),
        }
    }
    Ok(())
}
