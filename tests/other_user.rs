//! Another local user, for real (issue #15): processes running as `nobody`
//! (uid 65534) race our creates in a shared sticky directory, and hold
//! topics we look at, publish to and repair. Unlike `hostile_dir.rs`
//! (which hands files to `nobody` with `chown`), every move of the other
//! user here is made by a process with that user's credentials, so the
//! kernel's permission checks (the sticky bit, OFD lock tests across
//! users) are the ones that decide. Needs root (CI runs as root); skipped
//! with a message otherwise.

mod common;
use common::TestDir;
use shmq::{OpenError, Topic};
use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

/// A directory everyone may write, sticky (as /dev/shm and /tmp are),
/// inside a test directory `nobody` may traverse. `None` when not root.
fn shared_dir(d: &TestDir) -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to act as another user");
        return None;
    }
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = d.path().join("shared");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    Some(dir)
}

/// `shmq --dir DIR ARGS...` run as `nobody` (setpriv drops every credential).
fn shmq_as_nobody(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_shmq"))
        .arg("--dir")
        .arg(dir)
        .args(args);
    c
}

fn shmq(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shmq")).arg("--dir").arg(dir).args(args).output().expect("run shmq")
}

/// Polls `cond` until it holds or `secs` pass (waiting on another
/// process's progress, which has no other signal here).
fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Forks a child that becomes `nobody` and, until killed, keeps planting
/// its own files and symlinks under `names` in `dir` (created, renamed
/// over the name, removed again), as an attacker racing our creates would.
/// Only raw syscalls run after the fork (no allocation: the parent has
/// other threads).
fn spawn_attacker(dir: &Path, names: &[String]) -> libc::pid_t {
    let c = |p: PathBuf| CString::new(p.into_os_string().into_encoded_bytes()).expect("path");
    let targets: Vec<CString> = names.iter().map(|n| c(dir.join(n))).collect();
    let temps: Vec<CString> = names.iter().map(|n| c(dir.join(format!(".evil-{n}")))).collect();
    let decoy = c(PathBuf::from("/etc/passwd"));
    // SAFETY: fork; the child only makes async-signal-safe syscalls on
    // memory prepared before it, then exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: plain syscalls on the NUL-terminated strings above.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
                libc::_exit(3);
            }
            // Plant every name, then remove every name: each is held by
            // the attacker about half the time.
            loop {
                for (k, (t, tmp)) in targets.iter().zip(&temps).enumerate() {
                    if k % 2 == 0 {
                        let fd = libc::open(tmp.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o666);
                        if fd >= 0 {
                            libc::ftruncate(fd, 1 << 16);
                            libc::close(fd);
                            libc::rename(tmp.as_ptr(), t.as_ptr());
                        }
                    } else {
                        libc::symlink(decoy.as_ptr(), t.as_ptr());
                    }
                }
                for t in &targets {
                    libc::unlink(t.as_ptr());
                }
            }
        }
    }
    pid
}

fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: our own child; waitpid reaps it.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
}

#[test]
fn a_user_racing_our_creates_never_gets_their_file_taken_for_ours() {
    let d = TestDir::new();
    let Some(dir) = shared_dir(&d) else { return };
    let names: Vec<String> = (0..300).map(|i| format!("t{i}")).collect();
    let attacker = spawn_attacker(&dir, &names);
    // The attacker is running as nobody once its files appear.
    let ran = wait_until(20, || {
        std::fs::read_dir(&dir).expect("ls").flatten().any(|e| e.metadata().is_ok_and(|m| m.uid() == NOBODY))
    });
    let opts = shmq::Options::new().dir(&dir).capacity(4096);
    let mut ours = Vec::new();
    let mut refused = 0;
    for n in &names {
        match Topic::create(n, &opts) {
            Ok(t) => {
                // What we were told we created is our file, under our name.
                let m = std::fs::symlink_metadata(dir.join(n)).expect("our topic's name");
                assert!(m.file_type().is_file() && m.uid() == 0, "{n}: create reported success for {m:?}");
                ours.push((n.clone(), t));
            }
            Err(OpenError::AlreadyExists { .. }) => refused += 1,
            Err(e) => panic!("{n}: create failed with {e:?} (expected success or AlreadyExists)"),
        }
    }
    kill_and_reap(attacker);
    assert!(ran, "the attacker never planted a file as nobody");
    eprintln!("{} created, {refused} refused while the attacker held the name", ours.len());
    // The sticky bit kept the attacker from renaming over or removing what
    // we created: every topic we were given still carries our own data.
    for (n, t) in &ours {
        let m = std::fs::symlink_metadata(dir.join(n)).expect("still there");
        assert!(m.file_type().is_file() && m.uid() == 0, "{n} was replaced: {m:?}");
        let mut p = t.producer().expect("producer");
        let mut s = t.subscribe().expect("subscribe");
        p.publish(n.as_bytes()).expect("publish");
        let again = Topic::open(n, &opts).expect("reopen by name");
        assert_eq!(again.info().published_messages, 1, "{n}: the name leads to another file");
        let msg = s.recv_timeout(Duration::from_secs(5)).expect("recv");
        assert_eq!(&*msg, n.as_bytes());
    }
}

/// Waits for `child`, at most `secs`; kills it and fails if it overstays.
fn wait_child(mut child: Child, secs: u64) -> std::process::Output {
    if !wait_until(secs, || child.try_wait().ok().flatten().is_some()) {
        let _ = child.kill();
        panic!("the other user's process did not finish: {:?}", child.wait_with_output());
    }
    child.wait_with_output().expect("output")
}

#[test]
fn another_users_subscriber_is_seen_alive_kept_and_reaped_only_when_dead() {
    let d = TestDir::new();
    let Some(dir) = shared_dir(&d) else { return };
    // nobody creates a topic the group/others may use, and subscribes.
    let o = shmq_as_nobody(&dir, &["create", "feed", "--capacity", "4096", "--mode", "0666"]).output().expect("create");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::metadata(dir.join("feed")).expect("feed").uid(), NOBODY);
    let reader = shmq_as_nobody(&dir, &["tail", "feed", "--subscribe", "--from", "newest", "--count", "1", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tail as nobody");
    // Opening another user's topic is refused unless asked for (it could
    // be a trap); asked for, the file's mode decides.
    let r = Topic::open("feed", &shmq::Options::new().dir(&dir));
    assert!(matches!(&r, Err(OpenError::PermissionDenied(m)) if m.contains("uid 65534")), "{r:?}");
    let t = Topic::open("feed", &shmq::Options::new().dir(&dir).allow_foreign_owner(true)).expect("a 0666 topic");
    let joined = wait_until(20, || t.info().subscribers.len() == 1);
    assert!(joined, "nobody's subscriber never joined: {:?}", t.info().subscribers);
    // Its liveness is a lock test across users: alive, not reaped, and the
    // topic is in use, so neither rm nor gc removes it.
    assert!(t.info().subscribers[0].alive);
    assert_eq!(t.repair(), (0, 0), "a live subscriber of another user was reaped");
    let o = shmq(&dir, &["rm", "feed"]);
    assert_eq!(o.status.code(), Some(1), "rm removed another user's live topic: {o:?}");
    let o = shmq(&dir, &["gc"]);
    assert!(o.status.success() && dir.join("feed").exists(), "{o:?}");
    // What we publish reaches it.
    t.producer().expect("producer").publish(b"from root").expect("publish");
    let o = wait_child(reader, 30);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("from root"), "{o:?}");
    // A second subscriber of nobody's, SIGKILLed, is reaped by our repair.
    let mut reader = shmq_as_nobody(&dir, &["tail", "feed", "--subscribe", "-f"])
        .stdout(Stdio::null())
        .spawn()
        .expect("tail as nobody");
    assert!(wait_until(20, || t.info().subscribers.len() == 1), "second subscriber never joined");
    reader.kill().expect("kill");
    reader.wait().expect("reap");
    assert!(!t.info().subscribers[0].alive, "a dead subscriber of another user looks alive");
    assert_eq!(t.repair().0, 1, "our repair reclaims another user's dead subscriber");
    assert!(t.info().subscribers.is_empty());
}
