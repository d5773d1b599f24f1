//! Builds the C library, compiles the C and C++ programs in `ffi/examples`
//! and `ffi/tests/c` with the system `cc`/`c++`, and runs them as separate
//! processes against each other and against Rust processes (this test
//! binary re-run in a child role): C → C, C → Rust, Rust → C, C++ → C, plus
//! every error path, once under valgrind when it is installed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const N: u64 = 20_000;

fn ffi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`: where cargo put this test binary's profile.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf()
}

/// Builds libshmq (same profile as this test) once.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = profile_dir();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "shmq-ffi"]);
        if release {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build");
        assert!(st.success(), "building libshmq failed");
        assert!(dir.join("libshmq.a").exists() && dir.join("libshmq.so").exists());
        dir
    })
}

/// Compiles `sources` into an executable named `name`, statically linked
/// against libshmq.a (or against libshmq.so with `shared`).
fn compile(name: &str, sources: &[&str], cxx: bool, shared: bool) -> PathBuf {
    let lib = lib_dir();
    let out = lib.join("c-tests");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join(name);
    let mut cmd = Command::new(if cxx { "c++" } else { "cc" });
    cmd.args(["-O2", "-Wall", "-Wextra", "-Werror"]);
    cmd.arg(if cxx { "-std=c++17" } else { "-std=c99" });
    cmd.arg("-I").arg(ffi_dir().join("include")).arg("-I").arg(ffi_dir().join("examples"));
    for s in sources {
        cmd.arg(ffi_dir().join(s));
    }
    cmd.arg("-o").arg(&exe);
    if shared {
        cmd.arg(format!("-L{}", lib.display())).arg("-lshmq").arg(format!("-Wl,-rpath,{}", lib.display()));
    } else {
        cmd.arg(lib.join("libshmq.a")).args(["-lpthread", "-ldl", "-lm"]);
    }
    let st = cmd.status().expect("run the C compiler");
    assert!(st.success(), "compiling {name} failed");
    exe
}

/// The typed-payload program (`examples/ticks.c`).
fn ticks() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| compile("ticks", &["examples/ticks.c"], false, false))
}

/// The tick of `examples/ticks.c`, as Rust sees it.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Tick {
    seq: u64,
    price: f64,
    qty: u32,
    side: u32,
}

fn tick(k: u64) -> Tick {
    Tick { seq: k, price: k as f64 * 0.25, qty: (k % 1000) as u32, side: (k % 2) as u32 }
}

/// The event-loop subscriber (`examples/poll_subscriber.c`).
fn poll_subscriber() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| compile("poll_subscriber", &["examples/poll_subscriber.c"], false, false))
}

fn programs() -> &'static (PathBuf, PathBuf, PathBuf) {
    static P: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        (
            compile("publisher", &["examples/publisher.c"], false, false),
            compile("subscriber", &["examples/subscriber.c"], false, false),
            compile("roundtrip", &["examples/roundtrip.cpp"], true, false),
        )
    })
}

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("shmq-ffi-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Proc {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Proc {
    fn spawn(mut cmd: Command, dir: &Dir) -> Proc {
        cmd.env("SHMQ_DIR", &dir.0).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let out = BufReader::new(child.stdout.take().unwrap());
        Proc { child, out }
    }
    fn expect(&mut self, marker: &str) -> String {
        loop {
            let mut l = String::new();
            if self.out.read_line(&mut l).unwrap_or(0) == 0 {
                panic!("process ended before {marker}");
            }
            if let Some(i) = l.find(marker).or_else(|| l.find("ERR")) {
                let l = l[i..].trim().to_string();
                assert!(l.starts_with(marker), "expected {marker}, got {l:?}");
                return l;
            }
        }
    }
    fn finish(mut self) {
        let st = self.child.wait().unwrap();
        assert!(st.success(), "process failed: {st}");
    }
}

fn cmd(exe: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(exe);
    c.args(args);
    c
}

/// This test binary in a Rust child role.
fn rust(role: &str, topic: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["rust_child", "--exact", "--ignored", "--nocapture", "-q", "--test-threads=1"])
        .env("CHILD_ROLE", role)
        .env("CHILD_TOPIC", topic);
    c
}

fn pattern(k: u64) -> Vec<u8> {
    let len = 8 + ((k * 7919) % 500) as usize;
    let mut v = vec![0u8; len];
    v[..8].copy_from_slice(&k.to_le_bytes());
    for (i, b) in v.iter_mut().enumerate().skip(8) {
        *b = ((k + 31 * i as u64) & 0xff) as u8;
    }
    v
}

/// The Rust side of the cross-language tests (ignored in normal runs).
#[test]
#[ignore = "run as a child process by the cross-language tests"]
fn rust_child() {
    let topic = std::env::var("CHILD_TOPIC").unwrap();
    match std::env::var("CHILD_ROLE").unwrap().as_str() {
        "pub" => {
            let opts = shmq_rs::Options::new().capacity(64 << 10).max_message(1024);
            let t = shmq_rs::Topic::open_or_create(&topic, &opts).unwrap();
            let mut p = t.producer().unwrap();
            for k in 0..N {
                p.publish(&pattern(k)).unwrap();
            }
            println!("DONE published={N}");
        }
        "tick-pub" => {
            let t = shmq_rs::Topic::open(&topic, &shmq_rs::Options::new()).unwrap();
            let mut p = t.producer().unwrap();
            for k in 0..N {
                if k % 2 == 0 {
                    p.publish_value(&tick(k)).unwrap();
                } else {
                    let mut g = p.reserve_value::<Tick>().unwrap();
                    *g = tick(k);
                    g.commit().unwrap();
                }
            }
            println!("DONE published={N}");
        }
        "tick-sub" => {
            let t = shmq_rs::Topic::open(&topic, &shmq_rs::Options::new()).unwrap();
            let mut s = t.subscribe().unwrap();
            println!("READY");
            for k in 0..N {
                let m = s.recv_timeout(Duration::from_secs(30)).unwrap();
                assert_eq!(*m.value::<Tick>().unwrap(), tick(k), "tick {k}");
                assert!(m.value::<[u64; 4]>().is_err(), "a tick is not a value of another size");
            }
            println!("DONE received={N}");
        }
        "sub" => {
            let t = shmq_rs::Topic::open(&topic, &shmq_rs::Options::new()).unwrap();
            let mut s = t.subscribe().unwrap();
            println!("READY");
            for k in 0..N {
                let m = s.recv_timeout(Duration::from_secs(30)).unwrap();
                assert_eq!(&*m, &pattern(k)[..], "message {k}");
            }
            println!("DONE received={N}");
        }
        r => panic!("unknown role {r}"),
    }
}

/// Runs a subscriber and a publisher on a fresh topic; the subscriber
/// checks every byte of N messages.
fn pair(tag: &str, sub: impl Fn(&str) -> Command, publ: impl Fn(&str) -> Command) {
    let dir = Dir::new(tag);
    // The publisher creates the topic with open_or_create; create it here
    // first so the subscriber can subscribe before anything is published.
    let opts = shmq_rs::Options::new().dir(&dir.0).capacity(64 << 10).max_message(1024);
    let _t = shmq_rs::Topic::create("x", &opts).unwrap();
    let mut s = Proc::spawn(sub("x"), &dir);
    s.expect("READY");
    let mut p = Proc::spawn(publ("x"), &dir);
    assert_eq!(p.expect("DONE"), format!("DONE published={N}"));
    assert_eq!(s.expect("DONE"), format!("DONE received={N}"));
    p.finish();
    s.finish();
}

#[test]
fn c_to_c() {
    let (publ, sub, _) = programs();
    let n = N.to_string();
    pair("cc", |t| cmd(sub, &[t, &n]), |t| cmd(publ, &[t, &n]));
}

/// A struct published from C with SHMQ_PUBLISH_VALUE is read in place in
/// Rust with `Message::value`, and one published from Rust (copied in, or
/// built in place with `reserve_value`) with SHMQ_MSG_VALUE in C.
#[test]
fn typed_structs_cross_between_c_and_rust() {
    let t = ticks();
    let n = N.to_string();
    pair("tcr", |topic| rust("tick-sub", topic), |topic| cmd(t, &["pub", topic, &n]));
    pair("trc", |topic| cmd(t, &["sub", topic, &n]), |topic| rust("tick-pub", topic));
}

/// A C event loop waits on the readiness descriptor with poll(2) while a
/// Rust process publishes; every message arrives, in order, every byte
/// checked, and the loop really waited (it was woken at least once).
#[test]
fn c_event_loop_polls_the_readiness_fd() {
    let sub = poll_subscriber();
    let n = N.to_string();
    let dir = Dir::new("poll");
    let opts = shmq_rs::Options::new().dir(&dir.0).capacity(64 << 10).max_message(1024);
    let _t = shmq_rs::Topic::create("x", &opts).unwrap();
    let mut s = Proc::spawn(cmd(sub, &["x", &n]), &dir);
    s.expect("READY");
    let mut p = Proc::spawn(rust("pub", "x"), &dir);
    assert_eq!(p.expect("DONE"), format!("DONE published={N}"));
    let done = s.expect("DONE");
    assert!(done.starts_with(&format!("DONE received={N} wakeups=")), "{done}");
    let wakeups: u64 = done.rsplit('=').next().and_then(|w| w.parse().ok()).unwrap_or(0);
    assert!(wakeups >= 1, "{done}");
    p.finish();
    s.finish();
}

#[test]
fn c_zero_copy_to_c() {
    let (publ, sub, _) = programs();
    let n = N.to_string();
    pair("cc0", |t| cmd(sub, &[t, &n]), |t| cmd(publ, &[t, &n, "--reserve"]));
}

#[test]
fn c_to_rust() {
    let (publ, _, _) = programs();
    let n = N.to_string();
    pair("cr", |t| rust("sub", t), |t| cmd(publ, &[t, &n]));
}

#[test]
fn rust_to_c() {
    let (_, sub, _) = programs();
    let n = N.to_string();
    pair("rc", |t| cmd(sub, &[t, &n]), |t| rust("pub", t));
}

#[test]
fn cpp_to_c_and_c_to_cpp() {
    let (publ, sub, cpp) = programs();
    let n = N.to_string();
    pair("xc", |t| cmd(sub, &[t, &n]), |t| cmd(cpp, &["pub", t, &n]));
    pair("cx", |t| cmd(cpp, &["sub", t, &n]), |t| cmd(publ, &[t, &n]));
    // Batches from C++ (shmq_publish_batch), read by C.
    pair("bc", |t| cmd(sub, &[t, &n]), |t| cmd(cpp, &["batch", t, &n]));
}

fn run_errors(exe: &Path, valgrind: bool) {
    run_checks(exe, valgrind, "DONE all error paths behave");
}

/// Runs a C program of checks (under valgrind if asked) in its own topic
/// directory; it must succeed and print `done`.
fn run_checks(exe: &Path, valgrind: bool, done: &str) {
    // A directory of its own: these programs run in parallel test threads,
    // and two sharing one removed each other's topics.
    let name = exe.file_name().map_or_else(|| "checks".into(), |n| n.to_string_lossy().into_owned());
    let dir = Dir::new(&format!("{name}{}", if valgrind { "-v" } else { "" }));
    let mut c = if valgrind {
        let mut c = Command::new("valgrind");
        c.args(["--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "-q"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    let out = c.env("SHMQ_DIR", &dir.0).output().expect("run errors");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", text, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(done), "{text}");
}

#[test]
fn read_ahead_and_release_through_from_c() {
    run_checks(&compile("read_ahead", &["tests/c/read_ahead.c"], false, false), false, "DONE read-ahead behaves");
    if Command::new("valgrind").arg("--version").output().is_ok() {
        run_checks(&compile("read_ahead-v", &["tests/c/read_ahead.c"], false, false), true, "DONE read-ahead behaves");
    }
}

#[test]
fn batches_from_c() {
    run_checks(&compile("batch", &["tests/c/batch.c"], false, false), false, "DONE batches behave");
    if Command::new("valgrind").arg("--version").output().is_ok() {
        run_checks(&compile("batch-v", &["tests/c/batch.c"], false, false), true, "DONE batches behave");
    }
}

#[test]
fn every_error_path_static_and_shared() {
    run_errors(&compile("errors", &["tests/c/errors.c"], false, false), false);
    // The same program against libshmq.so.
    run_errors(&compile("errors-shared", &["tests/c/errors.c"], false, true), false);
}

#[test]
fn every_error_path_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("valgrind not installed: skipped (.ci/run installs it)");
        return;
    }
    run_errors(&compile("errors-valgrind", &["tests/c/errors.c"], false, false), true);
}

#[test]
fn header_compiles_as_cxx_with_strict_warnings() {
    let lib = lib_dir();
    let src = lib.join("c-tests").join("header_only.cpp");
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    std::fs::write(&src, "#include \"shmq.h\"\n#include \"shmq.hpp\"\nint main() { shmq_options o; shmq_options_init(&o); return o.size == 0; }\n").unwrap();
    let st = Command::new("c++")
        .args(["-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only", "-I"])
        .arg(ffi_dir().join("include"))
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only", "-x", "c", "-I"])
        .arg(ffi_dir().join("include"))
        .arg(ffi_dir().join("include/shmq.h"))
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn install_script_and_pkg_config_build_a_program() {
    if Command::new("pkg-config").arg("--version").output().is_err() {
        eprintln!("pkg-config not installed: skipped (.ci/run installs it)");
        return;
    }
    let prefix = Dir::new("prefix");
    let mut install = Command::new("bash");
    install.arg(ffi_dir().join("install.sh")).arg(&prefix.0);
    // Reuse this build's target directory.
    install.env("CARGO_TARGET_DIR", profile_dir().parent().unwrap());
    assert!(install.status().unwrap().success());
    let pc = prefix.0.join("lib/pkgconfig");
    let flags =
        Command::new("pkg-config").args(["--cflags", "--libs", "shmq"]).env("PKG_CONFIG_PATH", &pc).output().unwrap();
    assert!(flags.status.success());
    let flags = String::from_utf8(flags.stdout).unwrap();
    let exe = prefix.0.join("publisher");
    let st = Command::new("cc")
        .arg(ffi_dir().join("examples/publisher.c"))
        .arg("-I")
        .arg(ffi_dir().join("examples"))
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", prefix.0.join("lib").display()))
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success(), "cc with pkg-config flags {flags:?}");
    let dir = Dir::new("pc");
    let out = Command::new(&exe).args(["pc", "10"]).env("SHMQ_DIR", &dir.0).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "DONE published=10");
}
