//! A Rust peer for the cross-language tests (python/tests, with the same
//! roles as python/tests/peer.py and python/tests/peer.c): publishes or
//! checks `n` messages of a fixed pattern on an existing topic.
//!
//! ```text
//! interop publish DIR TOPIC N MAXLEN   # message i: len 1 + i*7919 % MAXLEN, byte j = i*131 + j*7
//! interop check   DIR TOPIC N MAXLEN   # subscribes, prints "ready", then checks N messages: "ok N"
//! ```

use std::process::ExitCode;
use std::time::Duration;

use shmq::{Options, Topic};

fn pattern(i: u64, maxlen: u64, out: &mut Vec<u8>) {
    let len = 1 + (i * 7919) % maxlen;
    out.clear();
    out.extend((0..len).map(|j| (i.wrapping_mul(131).wrapping_add(j * 7) & 0xff) as u8));
}

fn run(args: &[String]) -> Result<String, Box<dyn std::error::Error>> {
    let [role, dir, topic, n, maxlen] = args else {
        return Err("usage: interop publish|check DIR TOPIC N MAXLEN".into());
    };
    let n: u64 = n.parse()?;
    let maxlen: u64 = maxlen.parse()?;
    let topic = Topic::open(topic, &Options::new().dir(dir))?;
    let mut want = Vec::new();
    match role.as_str() {
        "publish" => {
            let mut p = topic.producer()?;
            for i in 0..n {
                pattern(i, maxlen, &mut want);
                p.publish(&want)?;
            }
            Ok(format!("published {n}"))
        }
        "check" => {
            let mut sub = topic.subscribe()?;
            println!("ready");
            for i in 0..n {
                let msg = sub.recv_timeout(Duration::from_secs(60))?;
                pattern(i, maxlen, &mut want);
                if *msg != *want {
                    return Err(format!("message {i}: {} bytes, not the {} expected", msg.len(), want.len()).into());
                }
            }
            Ok(format!("ok {n}"))
        }
        other => Err(format!("unknown role {other:?}").into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("interop: {e}");
            ExitCode::FAILURE
        }
    }
}
