//! Test helpers: a private topic directory per test, removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A child process's setting `k`, given by the test that spawned it.
pub fn child_env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"))
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TestDir(PathBuf);

impl TestDir {
    #[allow(clippy::new_without_default)]
    pub fn new() -> TestDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "shmq-test-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::thread::current().name().unwrap_or("t").replace("::", "-")
        ));
        std::fs::create_dir_all(&p).expect("create test dir");
        TestDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn opts(&self) -> shmq::Options {
        shmq::Options::new().dir(&self.0)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// splitmix64: the deterministic "random" behind message sizes and bytes.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Length of message `k` of producer `p`, in `min..=max`.
pub fn msg_len(p: u64, k: u64, min: usize, max: usize) -> usize {
    min + (mix((p << 40) ^ k) % (max - min + 1) as u64) as usize
}

/// Fills `buf` with the bytes of message `k` of producer `p`. Messages of
/// 12 bytes or more start with `p` (u32) and `k` (u64), so a reader can
/// tell producers apart.
pub fn fill(p: u64, k: u64, buf: &mut [u8]) {
    let seed = mix((p << 48) ^ k ^ 0x5555);
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let w = seed.wrapping_add((i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        chunk.copy_from_slice(&w.to_le_bytes()[..chunk.len()]);
    }
    if buf.len() >= 12 {
        buf[..4].copy_from_slice(&(p as u32).to_le_bytes());
        buf[4..12].copy_from_slice(&k.to_le_bytes());
    }
}

/// Reads `(p, k)` from a message of 12 bytes or more.
pub fn ident(msg: &[u8]) -> (u64, u64) {
    (u32::from_le_bytes(msg[..4].try_into().unwrap()) as u64, u64::from_le_bytes(msg[4..12].try_into().unwrap()))
}

/// Checks that `msg` is exactly message `k` of producer `p`.
pub fn check(p: u64, k: u64, msg: &[u8], min: usize, max: usize, scratch: &mut Vec<u8>) -> Result<(), String> {
    let len = msg_len(p, k, min, max);
    if msg.len() != len {
        return Err(format!("producer {p} message {k}: length {} != {len}", msg.len()));
    }
    scratch.resize(len, 0);
    fill(p, k, scratch);
    if msg != &scratch[..] {
        return Err(format!("producer {p} message {k}: bytes differ"));
    }
    Ok(())
}

/// A child process running one role of `tests/cross_process.rs`, talked to
/// over its stdin/stdout one line at a time.
pub struct Child {
    pub proc: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Child {
    /// Runs this test binary's ignored `child` test with `SHMQ_ROLE=role`
    /// and the given extra environment.
    pub fn spawn(role: &str, env: &[(&str, String)]) -> Child {
        Self::spawn_in(&[], role, env)
    }

    /// As [`Child::spawn`], run through `wrapper` (e.g. `unshare --pid
    /// --fork --kill-child`, so the child lives in its own pid namespace
    /// and dies with the wrapper).
    pub fn spawn_in(wrapper: &[&str], role: &str, env: &[(&str, String)]) -> Child {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = std::process::Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => std::process::Command::new(&exe),
        };
        cmd.args(["child", "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"])
            .env("SHMQ_ROLE", role)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = cmd.spawn().expect("spawn child");
        let out = std::io::BufReader::new(proc.stdout.take().unwrap());
        Child { proc, out }
    }

    /// The next line the child printed that starts with one of shmq's
    /// markers (`READY`, `FULL`, `DONE`, `ERR`), skipping harness noise.
    pub fn line(&mut self) -> String {
        use std::io::BufRead;
        loop {
            let mut l = String::new();
            if self.out.read_line(&mut l).unwrap_or(0) == 0 {
                return "EOF".into();
            }
            let l = l.trim().to_string();
            for m in ["READY", "FULL", "DONE", "ERR"] {
                if let Some(i) = l.find(m) {
                    return l[i..].to_string();
                }
            }
        }
    }

    /// Waits for a line starting with `marker`; panics with what came instead.
    pub fn expect(&mut self, marker: &str) -> String {
        let l = self.line();
        assert!(l.starts_with(marker), "expected {marker}, child said {l:?}");
        l
    }

    /// Sends a line to the child's stdin.
    pub fn say(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.proc.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the child to exit and asserts it succeeded.
    pub fn finish(mut self) {
        drop(self.proc.stdin.take());
        let st = self.proc.wait().unwrap();
        assert!(st.success(), "child failed: {st}");
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// `key=value` field of a `DONE` line.
pub fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .parse()
        .unwrap()
}
