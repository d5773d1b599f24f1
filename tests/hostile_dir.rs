//! A shared topic directory is hostile ground (issue #15): what another
//! local user can plant or change there must give a clear error, never a
//! hang, and never let them swap a topic under us. CI runs as root, so the
//! "other user" is `nobody` (uid 65534): files and directories are handed
//! to it with `chown`.

mod common;
use common::TestDir;
use shmq::{OpenError, Topic};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

fn chown(path: &Path, uid: u32) -> bool {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path; chown touches no memory of ours.
    let ok = unsafe { libc::chown(c.as_ptr(), uid, uid) } == 0;
    if !ok {
        eprintln!("skipped: cannot chown (not root)");
    }
    ok
}

fn shmq(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shmq")).arg("--dir").arg(dir).args(args).output().expect("run")
}

#[test]
fn a_fifo_under_a_topic_name_is_refused_at_once() {
    let d = TestDir::new();
    let fifo = d.path().join("trap");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Every way in returns (a FIFO opened for reading would block until a
    // writer came: these would hang forever without O_NONBLOCK).
    let t0 = Instant::now();
    for writable in [false, true] {
        let r = if writable { Topic::open("trap", &d.opts()) } else { Topic::open_read_only("trap", &d.opts()) };
        assert!(matches!(r, Err(OpenError::NotATopic { what: "a FIFO", .. })), "{r:?}");
    }
    for args in [&["info", "trap"][..], &["tail", "trap"], &["ls"], &["watch", "--once"], &["gc"]] {
        let o = shmq(d.path(), args);
        assert!(t0.elapsed() < Duration::from_secs(20), "shmq {args:?} hung");
        if args[0] == "info" || args[0] == "tail" {
            assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
            assert!(String::from_utf8_lossy(&o.stderr).contains("FIFO"), "{args:?}: {o:?}");
        }
    }
    let o = shmq(d.path(), &["rm", "trap"]);
    assert_eq!(o.status.code(), Some(1), "rm without --force keeps what is not a topic: {o:?}");
    assert!(fifo.exists());
}

#[test]
fn a_directory_others_can_change_is_refused() {
    let d = TestDir::new();
    let dir = d.path().join("shared");
    std::fs::create_dir(&dir).expect("mkdir");
    let opts = shmq::Options::new().dir(&dir).capacity(4096);
    // Writable by everyone, no sticky bit: anyone could rename a file over
    // a topic.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let r = Topic::create("t", &opts);
    assert!(matches!(&r, Err(OpenError::UnsafeDirectory { reason, .. }) if reason.contains("sticky")), "{r:?}");
    // With the sticky bit (as /dev/shm and /tmp have) nobody can remove or
    // rename our files: fine.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let t = Topic::create("t", &opts).expect("a sticky shared directory is safe");
    drop(t);
    // Owned by another (non-root) user: they could swap its entries.
    if chown(&dir, NOBODY) {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let r = Topic::open("t", &opts);
        assert!(matches!(&r, Err(OpenError::UnsafeDirectory { reason, .. }) if reason.contains("uid")), "{r:?}");
        let r = Topic::create("u", &opts);
        assert!(matches!(r, Err(OpenError::UnsafeDirectory { .. })), "{r:?}");
    }
}

#[test]
fn another_users_file_under_our_name_is_neither_used_nor_removed() {
    let d = TestDir::new();
    // Another user created "victim" first (as a topic, or anything).
    let t = Topic::create("victim", &d.opts().capacity(4096)).expect("create");
    drop(t);
    if !chown(&d.path().join("victim"), NOBODY) {
        return;
    }
    // Our create does not report success for their file...
    assert!(matches!(Topic::create("victim", &d.opts().capacity(4096)), Err(OpenError::AlreadyExists { .. })));
    // ...and open_or_create does not hand it to us either.
    let r = Topic::open_or_create("victim", &d.opts().capacity(4096));
    assert!(matches!(&r, Err(OpenError::PermissionDenied(m)) if m.contains("uid")), "{r:?}");
    // rm and gc leave another user's topic alone without --force.
    let o = shmq(d.path(), &["rm", "victim"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("belongs to uid"), "{o:?}");
    let o = shmq(d.path(), &["gc"]);
    assert!(o.status.success() && d.path().join("victim").exists(), "{o:?}");
    let o = shmq(d.path(), &["rm", "--force", "victim"]);
    assert!(o.status.success() && !d.path().join("victim").exists(), "{o:?}");
}

#[test]
fn bad_input_is_an_error_not_something_else() {
    let d = TestDir::new();
    let o = shmq(d.path(), &["create", "m", "--mode", "7777"]);
    assert_eq!(o.status.code(), Some(2), "setuid/setgid/sticky modes are refused: {o:?}");
    let o = shmq(d.path(), &["create", "z", "--capacity", "4KiB", "--max-message", "0"]);
    assert_eq!(o.status.code(), Some(2), "a topic for empty messages only is refused: {o:?}");
    // (That 1TiB parses is a unit test of the CLI's units: creating it here
    // could reserve a terabyte.)
    let o = shmq(d.path(), &["create", "f", "--capacity", "4KiB", "--max-message", "64"]);
    assert!(o.status.success(), "{o:?}");
    // A file larger than a message is refused from its size, unread; an
    // endless one (/dev/zero) after max + 1 bytes.
    let big = d.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 1000]).expect("write");
    for f in [big.to_str().expect("utf-8"), "/dev/zero"] {
        let o = shmq(d.path(), &["pub", "f", "--file", f]);
        assert_eq!(o.status.code(), Some(2), "{f}: {o:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("largest message is 64"), "{o:?}");
    }
    // Rust: commit past the reservation, and a type with bit 31.
    let t = Topic::open("f", &d.opts()).expect("open");
    let mut sub = t.subscribe().expect("subscribe");
    let mut p = t.producer().expect("producer");
    let g = p.reserve(8).expect("reserve");
    assert_eq!(g.commit(300), Err(shmq::PublishError::CommitTooLarge { len: 300, reserved: 8 }));
    assert_eq!(p.publish_typed(1 << 31, b"x"), Err(shmq::PublishError::InvalidType(1 << 31)));
    assert!(matches!(sub.try_recv(), Err(shmq::RecvError::Empty)), "nothing was published");
    let r = Topic::open("f", &shmq::Options::new().dir(""));
    assert!(matches!(r, Err(OpenError::InvalidOptions(_))), "{r:?}");
}

/// A committed frame whose stamp was zeroed, with later frames committed
/// after it, is skipped and counted within a bounded time, by a blocking
/// subscriber and by one that only polls; never waited on forever.
#[test]
fn a_zeroed_stamp_is_skipped_and_counted_not_waited_on() {
    use std::os::unix::fs::FileExt;
    for polling in [false, true] {
        let d = TestDir::new();
        let t = Topic::create("z", &d.opts().capacity(4096).max_message(64)).expect("create");
        let mut sub = t.subscribe().expect("subscribe");
        let mut p = t.producer().expect("producer");
        for k in 0u8..6 {
            p.publish(&[k; 40]).expect("publish"); // 96-byte frames
        }
        // Zero the stamp of message 1 (the frame at position 96).
        let data = shmq::layout::Layout::data_offset_for(64) as u64;
        let f = std::fs::OpenOptions::new().write(true).open(d.path().join("z")).expect("open file");
        f.write_all_at(&[0u8; 8], data + 96).expect("zero the stamp");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 5 {
            assert!(Instant::now() < deadline, "stuck at a corrupt frame (polling: {polling}); got {got:?}");
            let m = if polling { sub.try_recv() } else { sub.recv_timeout(Duration::from_secs(5)) };
            match m {
                Ok(m) => got.push(m[0]),
                Err(shmq::RecvError::Empty) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, [0, 2, 3, 4, 5], "message 1 is skipped, every other one arrives");
        assert_eq!(t.info().repaired, 1, "and the skip is counted");
    }
}
