//! Topics: creating, opening and removing them (their options are in
//! `options.rs`), and the checks of the directory they live in.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{OpenError, ProducerError, SubscribeError};
use crate::layout::{hdr, Policy};
use crate::mem::Memory;
use crate::name::validate_name;
use crate::options::{default_dir, Options, DEFAULT_MODE};
use crate::producer::Producer;
use crate::ring::Ring;
use crate::segment::{self, Segment};
use crate::start::Start;
use crate::subscriber::Subscriber;

/// A topic: one ring in one file, mapped into this process.
///
/// `Topic` is cheap to clone (it shares the mapping) and `Send + Sync`;
/// producers and subscribers made from it keep the mapping alive.
///
/// # Examples
/// ```
/// use shmq::{Options, Topic};
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-{}", std::process::id()));
/// let opts = Options::new().dir(&dir).capacity(64 << 10);
/// let topic = Topic::create("quotes", &opts)?;
/// let mut sub = topic.subscribe()?;
/// let mut prod = topic.producer()?;
/// prod.publish(b"hello")?;
/// assert_eq!(&*sub.try_recv()?, b"hello");
/// # drop(sub); drop(prod);
/// Topic::unlink_in(&dir, "quotes")?;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Topic {
    ring: Arc<Ring<Segment>>,
    name: String,
}

impl Topic {
    /// Creates a new topic; fails with [`OpenError::AlreadyExists`] if one of
    /// that name exists. Creates the directory (mode 0700) if needed.
    pub fn create(name: &str, opts: &Options) -> Result<Topic, OpenError> {
        validate_name(name)?;
        let layout = opts.layout()?;
        let dir = opts.dir_value();
        ensure_dir(&dir)?;
        let seg = Segment::create(&dir, name, &layout, opts.mode.unwrap_or(DEFAULT_MODE))?;
        Ok(Topic { ring: Arc::new(Ring::new(seg, layout)), name: name.to_string() })
    }

    /// Opens an existing topic for producing and subscribing; checks the
    /// settings `opts` sets.
    pub fn open(name: &str, opts: &Options) -> Result<Topic, OpenError> {
        Self::open_mode(name, opts, true)
    }

    /// Opens an existing topic read-only, for inspection: it can report
    /// counters and subscribers but neither publish nor subscribe, and never
    /// changes the ring.
    pub fn open_read_only(name: &str, opts: &Options) -> Result<Topic, OpenError> {
        Self::open_mode(name, opts, false)
    }

    fn open_mode(name: &str, opts: &Options, writable: bool) -> Result<Topic, OpenError> {
        validate_name(name)?;
        let dir = opts.dir_checked()?;
        if writable {
            // A directory others can change could hand us their file under
            // the name between our look and our use.
            check_dir(&dir)?;
        }
        let (seg, layout) = Segment::open(
            &opts.dir_value(),
            name,
            writable,
            opts.ready_timeout.unwrap_or(Duration::from_secs(1)),
            opts.allow_foreign_owner,
        )?;
        opts.check(&layout)?;
        if writable && layout.asymmetric_fences && !crate::sys::membarrier_ready() {
            return Err(OpenError::Incompatible {
                field: "fences",
                expected: "symmetric fences (this process cannot register for membarrier)".into(),
                found: "asymmetric fences (membarrier GLOBAL_EXPEDITED), chosen by the topic's creator".into(),
            });
        }
        let ring = Ring::new(seg, layout);
        if writable {
            recover_if_rebooted(&ring)?;
        }
        Ok(Topic { ring: Arc::new(ring), name: name.to_string() })
    }

    /// Opens the topic, or creates it with `opts` if it does not exist
    /// (safe against a concurrent creator: exactly one creates it).
    pub fn open_or_create(name: &str, opts: &Options) -> Result<Topic, OpenError> {
        loop {
            match Self::open(name, opts) {
                Err(OpenError::NotFound { .. }) => {}
                other => return other,
            }
            match Self::create(name, opts) {
                Err(OpenError::AlreadyExists { .. }) => continue,
                other => return other,
            }
        }
    }

    /// Removes the topic named `name` from the default directory
    /// (`SHMQ_DIR`). Processes that have it mapped keep using it; new
    /// opens fail.
    pub fn unlink(name: &str) -> Result<(), OpenError> {
        Self::unlink_in(&default_dir(), name)
    }

    /// Removes the topic named `name` from `dir`.
    pub fn unlink_in(dir: &Path, name: &str) -> Result<(), OpenError> {
        validate_name(name)?;
        if dir.as_os_str().is_empty() {
            return Err(OpenError::InvalidOptions("the topic directory is an empty path".into()));
        }
        segment::unlink(dir, name)
    }

    /// Attaches a producer. On a single-producer topic, only one live
    /// producer at a time: another gets [`ProducerError::Busy`]; a producer
    /// whose process died is taken over (and its unfinished frame turned
    /// into padding).
    pub fn producer(&self) -> Result<Producer, ProducerError> {
        if !self.ring.mem.writable() {
            return Err(ProducerError::ReadOnly);
        }
        Producer::attach(self.ring.clone())
    }

    /// Closes the stream at its end now, as [`Producer::close`] does,
    /// without being its producer (`shmq close`): a producer still
    /// publishing reopens it with its next message.
    pub fn close(&self) -> Result<(), ProducerError> {
        if !self.ring.mem.writable() {
            return Err(ProducerError::ReadOnly);
        }
        self.ring.close();
        Ok(())
    }

    /// Subscribes from the newest message: receives every message
    /// published after this call returns.
    pub fn subscribe(&self) -> Result<Subscriber, SubscribeError> {
        self.subscribe_with(Start::Newest, "")
    }

    /// Subscribes from the oldest message the ring still holds. On a
    /// `Block` topic the oldest frames within two max-size messages of
    /// being overwritten are skipped: a producer that has not yet seen the
    /// new subscriber may be overwriting them.
    pub fn subscribe_from_oldest(&self) -> Result<Subscriber, SubscribeError> {
        self.subscribe_with(Start::Oldest, "")
    }

    /// Subscribes at `start`, with a `name` shown by inspection tools.
    /// [`Start::Time`] needs a topic with timestamps
    /// ([`SubscribeError::NoTimestamps`]).
    pub fn subscribe_with(&self, start: Start, name: &str) -> Result<Subscriber, SubscribeError> {
        if !self.ring.mem.writable() {
            return Err(SubscribeError::ReadOnly);
        }
        self.check_start(start)?;
        Subscriber::attach(self.ring.clone(), start, name)
    }

    /// Attaches the durable subscriber `name`: its cursor lives in the
    /// topic and outlives this process. Releasing a message (dropping it)
    /// acknowledges it; a process that dies and subscribes again with the
    /// same name resumes at the first message it had not released, so
    /// every message is delivered at least once. While detached, a durable
    /// subscriber keeps holding a `Block` producer back (nothing is lost)
    /// unless the topic has a [`Options::durable_expiry`]. The first
    /// subscription starts at the newest message.
    ///
    /// Errors: [`SubscribeError::NameTaken`] if a live process holds the
    /// name, [`SubscribeError::Expired`] (once) if it expired.
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-d-{}", std::process::id()));
    /// let topic = Topic::create("orders", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut billing = topic.subscribe_durable("billing")?;
    /// let mut p = topic.producer()?;
    /// p.publish(b"order 1")?;
    /// p.publish(b"order 2")?;
    /// assert_eq!(&*billing.recv()?, b"order 1"); // released (acknowledged) on drop
    /// drop(billing);                              // or the process dies
    /// let mut billing = topic.subscribe_durable("billing")?;
    /// assert_eq!(&*billing.recv()?, b"order 2"); // resumes where it stopped
    /// # drop(billing);
    /// topic.unsubscribe_durable("billing")?;
    /// # drop((p, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_durable(&self, name: &str) -> Result<Subscriber, SubscribeError> {
        if !self.ring.mem.writable() {
            return Err(SubscribeError::ReadOnly);
        }
        check_durable_name(name)?;
        Subscriber::attach_durable(self.ring.clone(), name)
    }

    /// [`Topic::subscribe_durable`], whose first subscription starts at
    /// `start` instead of the newest message (a durable subscriber that
    /// exists resumes where it stopped, whatever `start` says).
    pub fn subscribe_durable_from(&self, name: &str, start: Start) -> Result<Subscriber, SubscribeError> {
        if !self.ring.mem.writable() {
            return Err(SubscribeError::ReadOnly);
        }
        check_durable_name(name)?;
        self.check_start(start)?;
        Subscriber::attach_durable_from(self.ring.clone(), name, start)
    }

    /// Removes the durable subscriber `name`: its cursor stops holding the
    /// producer. `Ok(false)` if there is none. Fails with
    /// [`SubscribeError::NameTaken`] while a live process holds it.
    pub fn unsubscribe_durable(&self, name: &str) -> Result<bool, SubscribeError> {
        if !self.ring.mem.writable() {
            return Err(SubscribeError::ReadOnly);
        }
        check_durable_name(name)?;
        self.ring.remove_durable(name.as_bytes()).map_err(|pid| SubscribeError::NameTaken { name: name.into(), pid })
    }

    /// Joins consumer group `group`: the members of a group share the
    /// stream, and each message goes to exactly one member (work sharing).
    /// A member that dies holding a message (received, not released) has
    /// it redelivered to another member (at-least-once). The group's
    /// position lives in the topic: it starts at the newest message when
    /// the group is first joined and holds a `Block` producer back while
    /// its messages wait, even with no member attached, until
    /// [`Topic::remove_group`]. Plain subscribers and other groups read
    /// the same topic independently. `Block` topics only
    /// ([`SubscribeError::GroupNeedsBlock`]).
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic, RecvError};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-g-{}", std::process::id()));
    /// let topic = Topic::create("jobs", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut a = topic.subscribe_group("workers")?;
    /// let mut b = topic.subscribe_group("workers")?;
    /// let mut p = topic.producer()?;
    /// p.publish(b"job 1")?;
    /// p.publish(b"job 2")?;
    /// assert_eq!(&*a.recv()?, b"job 1");
    /// assert_eq!(&*b.recv()?, b"job 2");               // each job goes to one worker
    /// assert_eq!(a.try_recv().unwrap_err(), RecvError::Empty);
    /// # drop((a, b));
    /// topic.remove_group("workers")?;
    /// # drop((p, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_group(&self, group: &str) -> Result<Subscriber, SubscribeError> {
        self.subscribe_group_with(group, &crate::GroupOptions::new())
    }

    /// What joining consumer group `group` needs of this handle and topic.
    pub(crate) fn check_group(&self, group: &str) -> Result<(), SubscribeError> {
        if !self.ring.mem.writable() {
            return Err(SubscribeError::ReadOnly);
        }
        if self.ring.layout.policy != Policy::Block {
            return Err(SubscribeError::GroupNeedsBlock);
        }
        check_durable_name(group)
    }

    pub(crate) fn ring_arc(&self) -> Arc<Ring<Segment>> {
        self.ring.clone()
    }

    /// Removes consumer group `group` (its position stops holding the
    /// producer). `Ok(false)` if there is none; [`SubscribeError::GroupInUse`]
    /// while live members remain.
    pub fn remove_group(&self, group: &str) -> Result<bool, SubscribeError> {
        if !self.ring.mem.writable() {
            return Err(SubscribeError::ReadOnly);
        }
        check_durable_name(group)?;
        self.ring.remove_group(group.as_bytes()).map_err(|members| SubscribeError::GroupInUse { members })
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Path of the topic file.
    pub fn path(&self) -> &Path {
        self.ring.mem.path()
    }
    /// Ring capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.ring.layout.capacity
    }
    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.ring.layout.max_message as usize
    }
    /// Number of subscriber slots.
    pub fn max_subscribers(&self) -> u32 {
        self.ring.layout.max_subscribers
    }
    /// Loss policy.
    pub fn policy(&self) -> Policy {
        self.ring.layout.policy
    }
    /// Whether several producers may publish at once.
    pub fn multi_producer(&self) -> bool {
        self.ring.layout.multi_producer
    }
    /// A number that names this creation of the topic: a topic removed and
    /// created again under the same name gets another (it mixes the
    /// random key the creator drew with the creation time). For anything
    /// that labels messages beyond the host, such as the NATS bridge's
    /// message ids, so two lives of one name never collide.
    pub fn instance_id(&self) -> u64 {
        let key = self.ring.layout.stamp_key;
        let created = self.ring.mem.load64(hdr::CREATED_UNIX_NS, std::sync::atomic::Ordering::Relaxed);
        // splitmix64's finaliser: every input bit reaches every output bit.
        let mut z = key ^ created.rotate_left(32);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Pid of the creating process.
    pub fn creator_pid(&self) -> u32 {
        self.ring.mem.load32(hdr::CREATOR_PID, std::sync::atomic::Ordering::Relaxed)
    }

    /// A snapshot of the counters and the subscriber table, read without
    /// taking part in the protocol.
    pub fn info(&self) -> crate::info::TopicInfo {
        crate::info::TopicInfo::read(&self.ring, &self.name)
    }

    /// A passive reader from `start`: reads through loads only (works on a
    /// read-only topic) and never slows a producer; see [`crate::Tail`].
    /// [`Start::Time`] needs a topic with timestamps
    /// ([`SubscribeError::NoTimestamps`]).
    pub fn tail(&self, start: Start) -> Result<crate::Tail, SubscribeError> {
        self.check_start(start)?;
        Ok(crate::Tail::new(self.ring.clone(), start))
    }

    /// Whether reading can start at `start`: by time only with timestamps
    /// (every message of a topic without them reads as published at 0).
    fn check_start(&self, start: Start) -> Result<(), SubscribeError> {
        match start {
            Start::Time(_) if !self.ring.layout.timestamps => Err(SubscribeError::NoTimestamps),
            _ => Ok(()),
        }
    }

    /// Pids of the other processes that have this topic's file mapped
    /// (from `/proc/*/maps`), for display: processes of other users and of
    /// other pid namespaces are invisible. Whether the topic is in use is
    /// [`Topic::in_use`]'s answer, not this list's.
    pub fn users(&self) -> Vec<u32> {
        crate::sys::processes_mapping(self.path())
    }

    /// Whether another handle has this topic open for producing or
    /// subscribing: in this process or another, of any user, in any pid
    /// namespace (every writable handle holds a shared kernel lock on the
    /// topic file until it is dropped or its process exits or `exec`s).
    /// Read-only handles (inspection) do not count.
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-inuse-{}", std::process::id()));
    /// let opts = Options::new().dir(&dir).capacity(64 << 10);
    /// let topic = Topic::create("busy", &opts)?;
    /// let look = Topic::open_read_only("busy", &opts)?;
    /// assert!(look.in_use());
    /// drop(topic);
    /// assert!(!look.in_use());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn in_use(&self) -> bool {
        self.ring.mem.in_use()
    }

    /// Frees the slots of subscribers whose processes died. Returns how many.
    pub fn reap_dead_subscribers(&self) -> u32 {
        if !self.ring.mem.writable() {
            return 0;
        }
        self.ring.reap_dead()
    }

    /// Repairs what dead processes left: reaps dead subscribers' slots and,
    /// on a single-producer topic whose producer died, takes ownership
    /// briefly to turn its unfinished frame into padding. Returns (slots
    /// reaped, frames repaired). Needs a writable handle.
    pub fn repair(&self) -> (u32, u32) {
        if !self.ring.mem.writable() {
            return (0, 0);
        }
        let reaped = self.ring.reap_dead();
        let before = self.info().repaired;
        let mut repaired = 0;
        if !self.multi_producer() && self.info().producer_pid.is_some() {
            // Attaching takes over from a dead owner and repairs its claim;
            // a live owner makes this fail with Busy, which is fine.
            if let Ok(p) = self.producer() {
                drop(p);
                repaired = (self.info().repaired - before) as u32;
            }
        }
        (reaped, repaired)
    }
}

/// Checks that nobody but its owner (this user, or root) can change what
/// a topic directory holds, as ssh checks the directories of its files:
/// it must belong to this user or to root, and if others may write to it,
/// the sticky bit must stop them from removing or renaming our files.
fn check_dir(dir: &Path) -> Result<(), OpenError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => OpenError::NotFound { path: dir.to_path_buf() },
        std::io::ErrorKind::PermissionDenied => {
            OpenError::PermissionDenied(format!("cannot look into the topic directory {}", dir.display()))
        }
        _ => OpenError::Io { op: "reading the topic directory's metadata", source: e },
    })?;
    let unsafe_dir = |reason: String| Err(OpenError::UnsafeDirectory { path: dir.to_path_buf(), reason });
    if !meta.is_dir() {
        return unsafe_dir("it is not a directory".into());
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return unsafe_dir(format!(
            "it belongs to uid {}, and another user could swap the topics in it (use a directory of your own, \
             or have it made by root)",
            meta.uid()
        ));
    }
    let mode = meta.mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return unsafe_dir(format!(
            "others may write to it (mode {:04o}) and it has no sticky bit, so they could remove or rename \
             topics in it: chmod o-w,g-w it, or chmod +t it",
            mode & 0o7777
        ));
    }
    Ok(())
}

fn ensure_dir(dir: &Path) -> Result<(), OpenError> {
    if dir.is_dir() {
        return check_dir(dir);
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            OpenError::PermissionDenied(format!("cannot create the topic directory {}", dir.display()))
        }
        _ => OpenError::Io { op: "creating the topic directory", source: e },
    })?;
    // Someone else may have made it first.
    check_dir(dir)
}

fn check_durable_name(name: &str) -> Result<(), SubscribeError> {
    let bad = |why: &str| Err(SubscribeError::InvalidName(format!("{name:?}: {why}")));
    if name.is_empty() || name.len() > crate::layout::SLOT_NAME_LEN {
        return bad("must be 1 to 32 bytes");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return bad("only A-Z a-z 0-9 . _ - are allowed");
    }
    Ok(())
}

/// A file-backed topic that outlived a machine restart (its header carries
/// another boot id) is recovered to its last flushed message before first
/// use: see `Ring::recover_after_reboot`. An exclusive `flock` makes one
/// opener do it; the others wait for it and find the new boot id.
fn recover_if_rebooted(ring: &Ring<Segment>) -> Result<(), OpenError> {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::Ordering::Acquire;
    let boot = crate::sys::boot_id();
    // Acquire: pairs with the Release store of the boot id that ends a
    // recovery, so a topic recovered by another opener is seen whole.
    let seen = |r: &Ring<Segment>| r.mem.load64(hdr::BOOT_ID, Acquire);
    if boot == 0 || seen(ring) == 0 || seen(ring) == boot {
        return Ok(());
    }
    let io = |op| move |source| OpenError::Io { op, source };
    let f = std::fs::File::open(ring.mem.path()).map_err(io("opening the topic file to recover it"))?;
    // SAFETY: flock on a descriptor we own; released when `f` is dropped
    // (or this process dies).
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io("locking the topic file to recover it")(std::io::Error::last_os_error()));
    }
    if seen(ring) != boot {
        ring.recover_after_reboot(boot);
        ring.mem.sync_range(0, ring.layout.file_len() as usize).map_err(io("syncing the recovered topic"))?;
    }
    Ok(())
}
