//! Parked waits and the waker threads that watch them (see the module docs
//! of [`crate::park`] for the design).
//!
//! A *shard* is one waker thread and the waits it watches: at most
//! [`WORDS_PER_SHARD`] distinct futex words (one `futex_waitv` call takes
//! 128, and one is the shard's own control word). Every wait on a word goes
//! to the shard that already watches it, else to the first with room, else
//! to a new shard. Each shard's state sits behind its own mutex; the global
//! list of shards behind another, taken only to register (lock order:
//! list, then shard).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::Duration;

use super::futex::{self, Support, WaitV};
use crate::layout::wake;
use crate::ring::Ring;
use crate::segment::Segment;

/// Distinct futex words one shard watches (its control word makes 128).
pub const WORDS_PER_SHARD: usize = futex::WAITV_MAX - 1;

/// How long a wait may go unlooked-at (ns): as a blocking wait's sleep
/// slice, every parked wait is ended this often so its task can look for
/// dead peers, evictions and stuck claims (which no futex wake announces).
/// 50 ms unless [`set_slice`] says otherwise.
static SLICE_NS: AtomicU64 = AtomicU64::new(50_000_000);

/// Sets how often a parked wait is ended to look for dead peers.
pub fn set_slice(d: Duration) {
    SLICE_NS.store(d.as_nanos().clamp(1_000_000, u64::MAX as u128) as u64, Relaxed);
}

fn slice_ns() -> u64 {
    SLICE_NS.load(Relaxed)
}

/// How long a waker thread with nothing to watch lingers before it exits.
const LINGER: Duration = Duration::from_millis(100);

/// Which of the topic's two waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A subscriber waiting for a message (`wake::DATA_FUTEX`).
    Data,
    /// A producer waiting for room (`wake::SPACE_FUTEX`).
    Space,
}

impl Kind {
    fn word(self) -> usize {
        match self {
            Kind::Data => wake::DATA_FUTEX,
            Kind::Space => wake::SPACE_FUTEX,
        }
    }
}

/// Who to tell when a wait ends.
#[derive(Debug)]
pub enum Notify {
    /// An async task.
    Task(Waker),
    /// An event loop polling this eventfd (C API, `Subscriber::readiness_fd`).
    /// Shared, so a thread that notifies after the owner let go writes to a
    /// descriptor that is still open.
    Fd(Arc<OwnedFd>),
}

impl Notify {
    fn notify(self) {
        match self {
            Notify::Task(w) => w.wake(),
            Notify::Fd(fd) => futex::signal(&fd),
        }
    }
}

struct Entry {
    ring: Arc<Ring<Segment>>,
    kind: Kind,
    /// The futex word's value when the wait was parked.
    seen: u32,
    /// When it was parked (monotonic ns), for the liveness slice.
    since: u64,
    notify: Notify,
}

impl Entry {
    fn word(&self) -> &AtomicU32 {
        self.ring.mem.a32(self.kind.word())
    }

    /// Whether the wait is over: its word moved (a producer or subscriber
    /// made progress and woke it), or it has gone a slice unlooked-at.
    fn due(&self, now: u64) -> bool {
        // Relaxed: the futex word only signals; the woken task re-reads the
        // ring after its own fence (as a woken blocking waiter does).
        self.word().load(Relaxed) != self.seen || now.saturating_sub(self.since) >= slice_ns()
    }
}

#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    /// Waits per futex word address: the words this shard watches.
    words: HashMap<usize, usize>,
    running: bool,
}

#[derive(Default)]
struct Shard {
    state: Mutex<State>,
    /// Bumped (and woken) when a wait is added, so the thread rebuilds its
    /// list. Process-private.
    ctl: AtomicU32,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state (every
        // update is a single map operation): go on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

static SHARDS: OnceLock<Mutex<Vec<Arc<Shard>>>> = OnceLock::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A parked wait: the ring's waiter count includes it until it is fired
/// (by its waker thread) or dropped, whichever comes first; either undoes
/// the count exactly once.
#[derive(Debug)]
pub struct Registration {
    id: u64,
    shard: Arc<Shard>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").finish_non_exhaustive()
    }
}

/// Parks a wait that [`Ring::park_data`] or [`Ring::park_space`] counted
/// (with `seen`, the word's value then) until its word moves or a slice
/// passes; then `notify` is told, once.
pub fn register(ring: &Arc<Ring<Segment>>, kind: Kind, seen: u32, notify: Notify) -> Registration {
    let id = NEXT_ID.fetch_add(1, Relaxed);
    let addr = ring.mem.a32(kind.word()) as *const AtomicU32 as usize;
    let per_shard = if futex::support() == Support::Many { WORDS_PER_SHARD } else { 1 };
    let shards = SHARDS.get_or_init(Default::default);
    let mut list = shards.lock().unwrap_or_else(|e| e.into_inner());
    let pick = list
        .iter()
        .find(|s| s.lock().words.contains_key(&addr))
        .or_else(|| list.iter().find(|s| s.lock().words.len() < per_shard))
        .cloned();
    let shard = match pick {
        Some(s) => s,
        None => {
            let s = Arc::new(Shard::default());
            list.push(s.clone());
            s
        }
    };
    let mut st = shard.lock();
    drop(list);
    let since = crate::sys::monotonic_ns();
    st.entries.insert(id, Entry { ring: ring.clone(), kind, seen, since, notify });
    *st.words.entry(addr).or_insert(0) += 1;
    if !st.running {
        let s = shard.clone();
        let spawned = std::thread::Builder::new().name("shmq-waker".into()).spawn(move || run(&s));
        if spawned.is_ok() {
            st.running = true;
        } else {
            // No thread: end the wait at once; the task looks again and
            // parks again (a poll, not a hang).
            let e = remove(&mut st, id);
            drop(st);
            if let Some(e) = e {
                e.notify.notify();
            }
            return Registration { id, shard };
        }
    }
    drop(st);
    shard.ctl.fetch_add(1, Relaxed);
    futex::wake_private(&shard.ctl);
    Registration { id, shard }
}

/// Takes entry `id` out of the shard and undoes its waiter count.
fn remove(st: &mut State, id: u64) -> Option<Entry> {
    let e = st.entries.remove(&id)?;
    let addr = e.word() as *const AtomicU32 as usize;
    if let Some(n) = st.words.get_mut(&addr) {
        *n -= 1;
        if *n == 0 {
            st.words.remove(&addr);
        }
    }
    match e.kind {
        Kind::Data => e.ring.unpark_data(),
        Kind::Space => e.ring.unpark_space(),
    }
    Some(e)
}

impl Registration {
    /// Whether the wait is still parked; if so, `waker` is the one to wake
    /// (a task may move between threads, with a new waker).
    pub fn repark(&self, waker: &Waker) -> bool {
        let mut st = self.shard.lock();
        match st.entries.get_mut(&self.id) {
            Some(e) => {
                if !matches!(&e.notify, Notify::Task(w) if w.will_wake(waker)) {
                    e.notify = Notify::Task(waker.clone());
                }
                true
            }
            None => false,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut st = self.shard.lock();
        remove(&mut st, self.id);
    }
}

/// The number of waker threads running in this process (for tests and
/// `shmq`'s diagnostics).
pub fn threads() -> usize {
    SHARDS.get().map_or(0, |l| l.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|s| s.lock().running).count())
}

/// A shard's waker thread: waits on every watched word at once, fires the
/// waits whose word moved or whose slice passed, and exits when it has had
/// nothing to watch for [`LINGER`].
fn run(shard: &Shard) {
    let mut list: Vec<WaitV> = Vec::with_capacity(futex::WAITV_MAX);
    let mut due: Vec<Notify> = Vec::new();
    let mut idle_since: Option<u64> = None;
    loop {
        let now = crate::sys::monotonic_ns();
        let deadline;
        // Holds rings the list points into alive across the wait.
        let keep: Vec<Arc<Ring<Segment>>>;
        {
            let mut st = shard.lock();
            if st.entries.is_empty() {
                let since = *idle_since.get_or_insert(now);
                if now.saturating_sub(since) >= LINGER.as_nanos() as u64 {
                    st.running = false;
                    return;
                }
                deadline = since + LINGER.as_nanos() as u64;
            } else {
                idle_since = None;
                let oldest = st.entries.values().map(|e| e.since).min().unwrap_or(now);
                deadline = oldest.saturating_add(slice_ns());
            }
            list.clear();
            // Read under the lock: a registration after this bumps it, so
            // the wait below returns at once instead of missing the entry.
            list.push(WaitV::new(&shard.ctl, shard.ctl.load(Relaxed), false));
            let mut seen_words: Vec<(usize, u32)> = Vec::with_capacity(st.entries.len());
            for e in st.entries.values() {
                let key = (e.word() as *const AtomicU32 as usize, e.seen);
                if !seen_words.contains(&key) && list.len() < futex::WAITV_MAX {
                    seen_words.push(key);
                    list.push(WaitV::new(e.word(), e.seen, true));
                }
            }
            keep = st.entries.values().map(|e| e.ring.clone()).collect();
        }
        match futex::support() {
            Support::Many => futex::wait_many(&list, deadline),
            // One word per shard on old kernels (each shard watches one:
            // `register`); new waits on it are seen within 5 ms.
            Support::One => {
                let left = Duration::from_nanos(deadline.saturating_sub(now)).min(Duration::from_millis(5));
                futex::wait_one(list.get(1).unwrap_or(&list[0]), left);
            }
        }
        drop(keep);
        let now = crate::sys::monotonic_ns();
        {
            let mut st = shard.lock();
            let fired: Vec<u64> = st.entries.iter().filter(|(_, e)| e.due(now)).map(|(id, _)| *id).collect();
            for id in fired {
                if let Some(e) = remove(&mut st, id) {
                    due.push(e.notify);
                }
            }
        }
        for n in due.drain(..) {
            n.notify();
        }
    }
}
