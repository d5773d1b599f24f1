//! A file system without open-file-description locks (some NFS and FUSE
//! mounts): shmq refuses it with a clear error rather than fall back to
//! pids (issue #15). The file system is simulated by an `LD_PRELOAD` shim
//! (`tests/shims/no_ofd_locks.c`, built here with the C compiler) that
//! fails every `F_OFD_*` fcntl with `ENOLCK`, as such a mount does.

mod common;
use common::TestDir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn shim(d: &TestDir) -> Option<PathBuf> {
    let so = d.path().join("no_ofd_locks.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shims/no_ofd_locks.c");
    let built = Command::new("cc").args(["-shared", "-fPIC", "-O2", "-o"]).arg(&so).arg(&src).arg("-ldl").status();
    if !built.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no C compiler to build the shim");
        return None;
    }
    Some(so)
}

fn shmq(dir: &Path, preload: Option<&Path>, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shmq"));
    c.arg("--dir").arg(dir).args(args);
    if let Some(so) = preload {
        c.env("LD_PRELOAD", so);
    }
    c.output().expect("run shmq")
}

#[test]
fn a_file_system_without_ofd_locks_is_refused_with_what_to_do() {
    let d = TestDir::new();
    let Some(so) = shim(&d) else { return };
    let dir = d.path().join("topics");
    std::fs::create_dir(&dir).expect("mkdir");
    // Creating there fails, says why and what to do, and leaves nothing.
    let o = shmq(&dir, Some(&so), &["create", "t", "--capacity", "4096"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(err.contains("does not support open file description locks") && err.contains("/dev/shm"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).expect("ls").count(), 0, "a failed create left a file");
    // A topic made elsewhere (here: without the shim) cannot be written
    // through such a mount either: no producer or subscriber could be told
    // from a dead one.
    let o = shmq(&dir, None, &["create", "t", "--capacity", "4096"]);
    assert!(o.status.success(), "{o:?}");
    for args in [&["pub", "t", "hello"][..], &["tail", "--subscribe", "-c", "1", "t"]] {
        let o = shmq(&dir, Some(&so), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("open file description locks"), "{args:?}: {o:?}");
    }
    // Read-only inspection needs no lock of its own and still works.
    let o = shmq(&dir, Some(&so), &["info", "t"]);
    assert!(o.status.success(), "{o:?}");
    // Whether it is in use cannot be told there, so it is not removed
    // (rm says so) and gc keeps it.
    let o = shmq(&dir, Some(&so), &["rm", "t"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot answer lock tests"), "{o:?}");
    let o = shmq(&dir, Some(&so), &["gc"]);
    assert!(o.status.success() && dir.join("t").exists(), "{o:?}");
}
