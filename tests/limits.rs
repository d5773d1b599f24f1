//! Resource limits (issue #7, item 5): a full file system, a file-size
//! limit, the open-file limit and the address-space limit give typed
//! errors, never a SIGBUS, a panic or a leaked file.
//!
//! Limits are process-wide, so each limit test runs in a child process
//! (this test binary again, role in `SHMQ_ROLE`) that sets the limit, tries,
//! and prints what it got.

mod common;
use common::TestDir;
use shmq::{OpenError, Options, Topic};
use std::path::Path;
use std::process::Command;

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64) {
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(resource, &mut cur), 0);
        cur.rlim_cur = soft.min(cur.rlim_max);
        assert_eq!(libc::setrlimit(resource, &cur), 0);
    }
}

/// The child side: sets one limit, then runs the operation under it.
#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    let dir = std::env::var("SHMQ_TEST_DIR").unwrap();
    let opts = Options::new().dir(&dir);
    let result: Result<Topic, OpenError> = match std::env::var("SHMQ_ROLE").unwrap().as_str() {
        "fsize" => {
            // Without this, exceeding the limit kills the process (SIGXFSZ).
            // SAFETY: ignoring a signal; no handler runs.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            set_limit(libc::RLIMIT_FSIZE, 64 << 10);
            Topic::create("big", &opts.capacity(1 << 20))
        }
        "nofile" => {
            // No new descriptor at all: the next open fails with EMFILE.
            set_limit(libc::RLIMIT_NOFILE, 0);
            Topic::open("small", &opts)
        }
        "as" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let vm_kb: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmSize:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap();
            // 16 MiB of headroom, then map a 64 MiB topic.
            set_limit(libc::RLIMIT_AS, (vm_kb << 10) + (16 << 20));
            Topic::open("huge", &opts)
        }
        other => panic!("unknown role {other}"),
    };
    match result {
        Ok(_) => println!("RESULT ok"),
        Err(e) => println!("RESULT {}", describe(&e)),
    }
}

fn describe(e: &OpenError) -> String {
    match e {
        OpenError::NoSpace { needed } => format!("NoSpace needed={needed}"),
        OpenError::Io { op, source } => format!("Io op={op:?} errno={:?}", source.raw_os_error()),
        other => format!("other {other:?}"),
    }
}

fn run_child(role: &str, dir: &Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"])
        .env("SHMQ_ROLE", role)
        .env("SHMQ_TEST_DIR", dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {role} failed ({}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().find_map(|l| l.find("RESULT ").map(|i| l[i + 7..].to_string())).expect("child printed a RESULT")
}

#[test]
fn file_size_limit_gives_no_space_and_leaves_no_file() {
    let d = TestDir::new();
    assert_eq!(
        run_child("fsize", d.path()),
        format!("NoSpace needed={}", shmq::layout::Layout::data_offset_for(64) + (1 << 20))
    );
    assert!(entries(d.path()).is_empty(), "no topic or temporary file left: {:?}", entries(d.path()));
}

#[test]
fn open_file_limit_gives_an_io_error() {
    let d = TestDir::new();
    let _t = Topic::create("small", &d.opts().capacity(4096)).unwrap();
    assert_eq!(run_child("nofile", d.path()), format!("Io op=\"opening the topic file\" errno=Some({})", libc::EMFILE));
}

#[test]
fn address_space_limit_gives_an_io_error() {
    let d = TestDir::new();
    let _t = Topic::create("huge", &d.opts().capacity(64 << 20)).unwrap();
    let got = run_child("as", d.path());
    assert!(got.starts_with("Io ") && got.ends_with(&format!("errno=Some({})", libc::ENOMEM)), "got {got}");
}

/// Mounts a 1 MiB tmpfs (needs root with CAP_SYS_ADMIN, which CI has); the
/// size limit tests above cover the same path without privileges.
struct SmallTmpfs(std::path::PathBuf);
impl SmallTmpfs {
    fn mount(d: &TestDir) -> Option<SmallTmpfs> {
        let p = d.path().join("tmpfs");
        std::fs::create_dir(&p).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&p)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallTmpfs(p))
    }
}
impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_tmpfs_gives_no_space_and_the_topics_already_there_keep_working() {
    let d = TestDir::new();
    let Some(fs) = SmallTmpfs::mount(&d) else {
        eprintln!(
            "cannot mount a tmpfs here (not root?); covered by file_size_limit_gives_no_space_and_leaves_no_file"
        );
        return;
    };
    let opts = Options::new().dir(&fs.0).capacity(256 << 10);
    let first = Topic::create("t0", &opts).unwrap();
    let mut made = 1;
    let err = loop {
        match Topic::create(&format!("t{made}"), &opts) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, OpenError::NoSpace { .. }), "{err:?}");
    assert!((2..=4).contains(&made), "{made} topics of 260 KiB in 1 MiB");
    println!("a 1 MiB tmpfs took {made} topics of 260 KiB");
    let mut names = entries(&fs.0);
    names.retain(|n| n.starts_with('.'));
    assert!(names.is_empty(), "no temporary file left behind: {names:?}");
    // What was created works: its pages were reserved at create, so
    // touching them cannot SIGBUS on the full file system.
    let mut sub = first.subscribe().unwrap();
    let mut p = first.producer().unwrap();
    for i in 0..10_000u32 {
        p.publish(&i.to_le_bytes()).unwrap();
        assert_eq!(&*sub.recv().unwrap(), &i.to_le_bytes());
    }
    drop((sub, p, first));
    drop(fs);
}
