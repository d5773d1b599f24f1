//! One topic file, mapped: creating it safely, opening it with every header
//! field checked, and the production [`Memory`] over the mapping.
//!
//! # Creation
//! A topic is built under a hidden temporary name (`.NAME.PID.NANOS.tmp`,
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, the requested mode set with `fchmod` so the
//! umask does not widen or narrow it), its space reserved with
//! `posix_fallocate` (a full /dev/shm is an error now, not a SIGBUS later),
//! mapped, initialised, marked ready with a `Release` store, and only then
//! `link`ed to its real name, which fails if the name exists. So a process
//! killed during creation leaves at most a hidden temporary file (removed
//! by `shmq gc`), never a half-initialised topic under the real name. An
//! opener still checks the ready flag (files written by other tools), waits
//! a bounded time for it, and reports [`OpenError::NotReady`].
//!
//! # Opening
//! The header is read with `pread` and validated against the file's real
//! length *before* the file is mapped, so a hostile file cannot make us map
//! or fault in more than its validated geometry.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::OpenError;
use crate::layout::{hdr, lock, prod, state, topic_flags, Layout, LINE, MAGIC, VERSION};
use crate::mem::Memory;
use crate::sys;

/// A mapped topic file.
#[derive(Debug)]
pub struct Segment {
    map: MmapRaw,
    len: usize,
    writable: bool,
    path: PathBuf,
    /// The topic uses asymmetric fences (see `ring` module docs).
    asymmetric: bool,
    /// The topic file, kept open (`O_CLOEXEC`): a writable handle holds
    /// the users lock through it, and every liveness test is made
    /// through it (it holds no attachment lock, so it sees them all).
    file: File,
    /// This handle's attachments: each has its own descriptor of the file
    /// (its own open file description), which holds the attachment's lock.
    attachments: Mutex<HashMap<u64, File>>,
    /// A thread of this process holds the names lock (the kernel lock does
    /// not exclude threads sharing one descriptor).
    names_held: AtomicBool,
}

// SAFETY: the mapping is shared memory used only through atomics, through
// raw copies guarded by the ring protocol, or by `Message` guards whose
// lifetime is tied to a `Subscriber`; nothing in `Segment` is tied to a
// thread.
unsafe impl Send for Segment {}
// SAFETY: as above; every shared access is atomic or protocol-guarded.
unsafe impl Sync for Segment {}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> OpenError {
    move |source| OpenError::Io { op, source }
}

fn random_u64() -> u64 {
    let mut v = 0u64;
    // SAFETY: writes at most 8 bytes into `v`, which is valid and writable.
    let n = unsafe { libc::getrandom((&mut v as *mut u64).cast(), 8, 0) };
    if n != 8 {
        v = sys::monotonic_ns() ^ ((std::process::id() as u64) << 32) ^ sys::unix_ns().rotate_left(17);
    }
    v | 1
}

/// Header fields read from a file before mapping it.
struct RawHeader([u8; 4096]);

impl RawHeader {
    fn u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.0[off..off + 4].try_into().unwrap_or([0; 4]))
    }
    fn u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.0[off..off + 8].try_into().unwrap_or([0; 8]))
    }
}

fn read_header(file: &File) -> Result<RawHeader, OpenError> {
    use std::os::unix::fs::FileExt;
    let mut h = RawHeader([0; 4096]);
    let mut got = 0;
    while got < LINE {
        match file.read_at(&mut h.0[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("reading the topic header")(e)),
        }
    }
    if got < LINE {
        return Err(OpenError::Corrupt { reason: format!("file is only {got} bytes, shorter than a header") });
    }
    Ok(h)
}

impl Segment {
    /// Creates the topic file at `dir/name` with `layout`, file mode `mode`.
    pub fn create(dir: &Path, name: &str, layout: &Layout, mode: u32) -> Result<Segment, OpenError> {
        let path = dir.join(name);
        let denied = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                OpenError::PermissionDenied(format!("cannot create files in {}", dir.display()))
            }
            _ => io("creating the topic file")(e),
        };
        // An unnamed file (O_TMPFILE): nobody can open, replace or rename
        // it while it is built; `link` then gives it its name.
        let unnamed = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(mode)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir);
        match unnamed {
            Ok(file) => Self::build(file, None, &path, layout, mode),
            // File systems without O_TMPFILE: a hidden temporary name,
            // `O_EXCL|O_NOFOLLOW`, checked after the link like the other.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::EISDIR)) => {
                let tmp = dir.join(format!(".{name}.{:016x}.tmp", random_u64()));
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&tmp)
                    .map_err(denied)?;
                let result = Self::build(file, Some(&tmp), &path, layout, mode);
                // The temporary name is gone in every case.
                let _ = std::fs::remove_file(&tmp);
                result
            }
            Err(e) => Err(denied(e)),
        }
    }

    /// Builds the topic in `file` (unnamed, or named `tmp`), then links it
    /// to `path` and checks that the name now leads to this very file.
    fn build(file: File, tmp: Option<&Path>, path: &Path, layout: &Layout, mode: u32) -> Result<Segment, OpenError> {
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(io("setting the topic file mode"))?;
        let len = layout.file_len();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: `fd` is an open file descriptor owned by `file`.
        let rc = unsafe { libc::posix_fallocate(fd, 0, len as libc::off_t) };
        match rc {
            0 => {}
            libc::ENOSPC | libc::EFBIG => return Err(OpenError::NoSpace { needed: len }),
            libc::EOPNOTSUPP | libc::EINVAL => {
                // File systems without fallocate: size the file; pages are
                // then allocated on first touch (documented limitation).
                file.set_len(len).map_err(io("sizing the topic file"))?;
            }
            e => return Err(io("reserving the topic's space")(std::io::Error::from_raw_os_error(e))),
        }
        let mut seg = Self::map(file, len as usize, true, path.to_path_buf())?;
        seg.asymmetric = layout.asymmetric_fences;
        seg.init_header(layout);
        let cstr = |p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| OpenError::InvalidOptions("path has NUL".into()))
        };
        let c_path = cstr(path)?;
        let linked = match tmp {
            // SAFETY: both are valid NUL-terminated paths. `link` never
            // follows or replaces an existing target: it fails with EEXIST.
            Some(tmp) => unsafe { libc::link(cstr(tmp)?.as_ptr(), c_path.as_ptr()) },
            None => {
                let fd = seg.file.as_raw_fd();
                let proc_path = cstr(Path::new(&format!("/proc/self/fd/{fd}")))?;
                // SAFETY: valid NUL-terminated paths; linkat of a
                // /proc/self/fd link with AT_SYMLINK_FOLLOW names our open
                // unnamed file, and fails with EEXIST if `path` exists.
                let rc = unsafe {
                    libc::linkat(
                        libc::AT_FDCWD,
                        proc_path.as_ptr(),
                        libc::AT_FDCWD,
                        c_path.as_ptr(),
                        libc::AT_SYMLINK_FOLLOW,
                    )
                };
                if rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) {
                    rc
                } else {
                    // No /proc: link the descriptor itself (needs
                    // CAP_DAC_READ_SEARCH).
                    // SAFETY: `fd` is open; the empty path with AT_EMPTY_PATH
                    // names it; `c_path` is valid.
                    unsafe { libc::linkat(fd, c"".as_ptr(), libc::AT_FDCWD, c_path.as_ptr(), libc::AT_EMPTY_PATH) }
                }
            }
        };
        if linked != 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EEXIST) => OpenError::AlreadyExists { path: path.to_path_buf() },
                _ => io("publishing the topic file")(e),
            });
        }
        // The name must lead to the file we built, not to one someone swapped in.
        let named = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .and_then(|f| f.metadata())
            .map_err(io("checking the created topic file"))?;
        let ours = seg.file.metadata().map_err(io("checking the created topic file"))?;
        if (named.dev(), named.ino()) != (ours.dev(), ours.ino()) {
            return Err(OpenError::PermissionDenied(format!(
                "{} was replaced by another file while it was created; check who else writes to {}",
                path.display(),
                path.parent().unwrap_or(path).display()
            )));
        }
        Ok(seg)
    }

    fn init_header(&self, layout: &Layout) {
        let m = self;
        // Relaxed: nobody else can see the file yet (it has a private
        // temporary name); the Release store of READY publishes everything.
        m.store64(hdr::MAGIC, MAGIC, Ordering::Relaxed);
        m.store32(hdr::VERSION, VERSION, Ordering::Relaxed);
        m.store64(hdr::DATA_OFFSET, layout.data_offset as u64, Ordering::Relaxed);
        m.store64(hdr::CAPACITY, layout.capacity, Ordering::Relaxed);
        m.store32(hdr::MAX_MESSAGE, layout.max_message, Ordering::Relaxed);
        m.store32(hdr::MAX_SUBSCRIBERS, layout.max_subscribers, Ordering::Relaxed);
        m.store32(hdr::POLICY, layout.policy.to_raw(), Ordering::Relaxed);
        m.store32(hdr::MULTI_PRODUCER, layout.multi_producer as u32, Ordering::Relaxed);
        m.store64(hdr::STAMP_KEY, layout.stamp_key, Ordering::Relaxed);
        m.store64(hdr::CREATED_UNIX_NS, sys::unix_ns(), Ordering::Relaxed);
        m.store32(hdr::CREATOR_PID, std::process::id(), Ordering::Relaxed);
        m.store32(hdr::LIVENESS_MS, layout.liveness_ms, Ordering::Relaxed);
        m.store64(hdr::FILE_LEN, layout.file_len(), Ordering::Relaxed);
        m.store32(hdr::FENCES, layout.asymmetric_fences as u32, Ordering::Relaxed);
        m.store32(hdr::TIMESTAMPS, layout.timestamps as u32, Ordering::Relaxed);
        m.store32(hdr::DURABLE_EXPIRY_MS, layout.durable_expiry_ms, Ordering::Relaxed);
        let flags = if layout.close_on_exit { topic_flags::CLOSE_ON_EXIT } else { 0 }
            | if layout.dead_letters { topic_flags::DEAD_LETTERS } else { 0 };
        m.store32(hdr::FLAGS, flags, Ordering::Relaxed);
        m.store64(hdr::BOOT_ID, sys::boot_id(), Ordering::Relaxed);
        m.store64(prod::TAIL, 0, Ordering::Relaxed);
        // Release: publishes the header to openers' Acquire load of STATE.
        m.store32(hdr::STATE, state::READY, Ordering::Release);
    }

    /// Opens `dir/name`: checks the file (regular, ours unless
    /// `allow_foreign_owner`), waits up to `ready_timeout` for the ready
    /// flag, validates the header, then maps it.
    pub fn open(
        dir: &Path,
        name: &str,
        writable: bool,
        ready_timeout: Duration,
        allow_foreign_owner: bool,
    ) -> Result<(Segment, Layout), OpenError> {
        Self::open_path(&dir.join(name), writable, ready_timeout, allow_foreign_owner)
    }

    /// As [`Segment::open`], for a path.
    pub fn open_path(
        path: &Path,
        writable: bool,
        ready_timeout: Duration,
        allow_foreign_owner: bool,
    ) -> Result<(Segment, Layout), OpenError> {
        // O_NONBLOCK: opening a FIFO or a device planted under a topic's name
        // must not block; what is not a regular file is refused next.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match (e.kind(), e.raw_os_error()) {
                (std::io::ErrorKind::NotFound, _) => OpenError::NotFound { path: path.to_path_buf() },
                (_, Some(libc::ELOOP)) => {
                    OpenError::PermissionDenied(format!("{} is a symbolic link; refusing to follow it", path.display()))
                }
                (std::io::ErrorKind::PermissionDenied, _) => {
                    OpenError::PermissionDenied(format!("cannot open {}", path.display()))
                }
                _ => io("opening the topic file")(e),
            })?;
        let meta = file.metadata().map_err(io("reading the topic file's metadata"))?;
        if !meta.file_type().is_file() {
            return Err(OpenError::NotATopic { path: path.to_path_buf(), what: file_kind(&meta) });
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if !allow_foreign_owner && meta.uid() != me {
            return Err(OpenError::PermissionDenied(format!(
                "{} belongs to uid {}, not to this user (uid {me}); allow foreign owners to open it",
                path.display(),
                meta.uid()
            )));
        }
        let deadline = Instant::now() + ready_timeout;
        let header = loop {
            let h = read_header(&file)?;
            if h.u64(hdr::MAGIC) != MAGIC {
                return Err(OpenError::Corrupt { reason: "bad magic: not a shmq topic file".into() });
            }
            if h.u32(hdr::STATE) == state::READY {
                break h;
            }
            if Instant::now() >= deadline {
                return Err(OpenError::NotReady);
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let real_len = meta.len();
        let layout = Layout::validate(real_len, |o| header.u32(o), |o| header.u64(o))?;
        let mut seg = Self::map(file, real_len as usize, writable, path.to_path_buf())?;
        seg.asymmetric = layout.asymmetric_fences;
        Ok((seg, layout))
    }

    fn map(file: File, len: usize, writable: bool, path: PathBuf) -> Result<Segment, OpenError> {
        if writable {
            // The users lock: a shared lock every writable handle holds, so
            // `in_use` (rm, gc) sees it from any process. It also proves the
            // file system has the locks liveness rests on.
            match sys::ofd_lock(file.as_raw_fd(), lock::USERS, true) {
                Ok(true) => {}
                Ok(false) => return Err(OpenError::PermissionDenied(format!("{} is being removed", path.display()))),
                Err(e) => return Err(OpenError::LocksUnsupported { path, source: e }),
            }
        }
        let mut opts = MmapOptions::new();
        opts.len(len).populate();
        let map = if writable { opts.map_raw(&file) } else { opts.map_raw_read_only(&file) }
            .map_err(io("mapping the topic file"))?;
        Ok(Segment {
            map,
            len,
            writable,
            path,
            asymmetric: false,
            file,
            attachments: Mutex::new(HashMap::new()),
            names_held: AtomicBool::new(false),
        })
    }

    /// Whether another handle, in this process or another, has the topic
    /// open for writing (it holds the users lock). Read-only handles
    /// (inspection) are not users.
    pub fn in_use(&self) -> bool {
        // A write-lock test conflicts with every other holder's shared lock
        // (ours, on this descriptor, does not count).
        sys::ofd_held(self.file.as_raw_fd(), lock::USERS, false).unwrap_or(true)
    }

    /// A new descriptor of the topic file: a new open file description,
    /// whose locks are its own. Opened through `/proc/self/fd` (no path
    /// lookup anyone could redirect), else by path; either way checked to
    /// be the same file.
    fn reopen(&self) -> std::io::Result<File> {
        let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        let via_proc = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(self.writable)
            .custom_flags(libc::O_CLOEXEC)
            .open(&via_proc)
            .or_else(|_| {
                std::fs::OpenOptions::new().read(true).write(self.writable).custom_flags(flags).open(&self.path)
            })?;
        let (a, b) = (f.metadata()?, self.file.metadata()?);
        if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
            return Err(std::io::Error::other("the topic file was replaced"));
        }
        Ok(f)
    }

    fn attachments(&self) -> std::sync::MutexGuard<'_, HashMap<u64, File>> {
        // A panic while the map was held leaves it consistent (one insert
        // or remove): use it anyway.
        self.attachments.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the mapping is writable.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Writes the pages holding `off..off + len` of the file to disk and
    /// waits for it (`msync(MS_SYNC)`).
    pub fn sync_range(&self, off: usize, len: usize) -> std::io::Result<()> {
        let page = 4096;
        let start = off / page * page;
        let end = (off + len).min(self.len);
        if end <= start {
            return Ok(());
        }
        // SAFETY: start..end lies inside our mapping (clamped to its length)
        // and start is page-aligned, as msync requires.
        let rc = unsafe { libc::msync(self.base().add(start).cast(), end - start, libc::MS_SYNC) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Base address of the mapping.
    pub(crate) fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    fn a64(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= self.len && off % 8 == 0, "bad u64 offset {off}");
        // SAFETY: the ring only passes in-bounds, 8-aligned offsets (see the
        // `mem` module contract); the mapping is page-aligned and lives as
        // long as `self`; all concurrent access to this word is atomic.
        unsafe { AtomicU64::from_ptr(self.base().add(off).cast()) }
    }

    pub(crate) fn a32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= self.len && off % 4 == 0, "bad u32 offset {off}");
        // SAFETY: as in `a64`, for a 4-aligned u32.
        unsafe { AtomicU32::from_ptr(self.base().add(off).cast()) }
    }
}

mod memory;

/// What a non-regular file is, for an error message.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Removes the topic file `dir/name`.
pub fn unlink(dir: &Path, name: &str) -> Result<(), OpenError> {
    let path = dir.join(name);
    std::fs::remove_file(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => OpenError::NotFound { path },
        std::io::ErrorKind::PermissionDenied => {
            OpenError::PermissionDenied(format!("cannot remove {}", path.display()))
        }
        _ => io("removing the topic file")(e),
    })
}

/// A fresh random stamp key.
pub fn new_stamp_key() -> u64 {
    random_u64()
}
