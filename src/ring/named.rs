//! Named slots: durable subscribers, and the names lock that makes
//! find-or-create of a name (durable subscriber or consumer group) atomic.
//!
//! A durable subscriber's slot outlives its process: when the process
//! leaves or dies, the slot is only *detached* (owner [`Owner::NONE`]) and
//! its cursor keeps gating, so the next process to attach under the same
//! name resumes at the first message the last one did not release
//! (at-least-once). The hand-over is one CAS on the slot's owner word,
//! `Acquire` on the taker's side paired with the `Release` detach.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{Ring, SubState};
use crate::layout::{ctr, prod, slot, wake, Owner, SlotName};
use crate::mem::Memory;
use crate::start::Start;

/// Why a durable subscriber could not attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurableError {
    /// A live process (this pid; 0 if unknown) holds the name.
    Taken(u32),
    /// The subscriber was dropped after the topic's durable expiry; its
    /// slot is freed now, so subscribing again starts afresh.
    Expired,
    /// No free slot for a new durable subscriber.
    NoFreeSlot,
}

impl<M: Memory> Ring<M> {
    /// The slot of the durable subscriber `name` (ACTIVE or EXPIRED).
    fn find_durable(&self, name: &SlotName) -> Option<(usize, u32)> {
        (0..self.layout.max_subscribers as usize).find_map(|i| {
            let s = self.layout.slot(i);
            // Acquire: only defensive (it could be Relaxed): every caller
            // holds the names lock, whose Acquire orders the creator's
            // writes, made before it let the lock go.
            let state = self.mem.load32(s + slot::STATE, Acquire);
            let durable = self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::DURABLE != 0;
            if !durable || !(state == slot::state::ACTIVE || state == slot::state::EXPIRED) {
                return None;
            }
            self.name_is(s, name).then_some((i, state))
        })
    }

    /// Attaches the durable subscriber `name` (1..=32 bytes): takes over its
    /// slot if it exists and its owner is gone, resuming at its cursor (the
    /// first message it had not released); else joins a new slot from the
    /// newest message.
    pub fn join_durable(&self, name: &[u8]) -> Result<SubState, DurableError> {
        let key = SlotName::new(name);
        let (pid, start) = self.mem.self_id();
        let me = Owner::new(pid, start).raw();
        for _ in 0..16 {
            // Find-or-create under the names lock: two processes creating
            // the same name at once would otherwise both succeed.
            let created = self.with_names_lock(|| match self.find_durable(&key) {
                Some(hit) => Ok(Err(hit)),
                None => self.join_as(Start::Newest, key.as_bytes(), slot::flags::DURABLE).map(Ok).ok_or(()),
            });
            let (i, state) = match created {
                Ok(Ok(st)) => return Ok(st),
                Ok(Err(hit)) => hit,
                Err(()) => return Err(DurableError::NoFreeSlot),
            };
            let s = self.layout.slot(i);
            if state == slot::state::EXPIRED {
                // Relaxed: the expired slot holds nothing anyone needs.
                let _ = self.mem.cas32(s + slot::STATE, slot::state::EXPIRED, slot::state::FREE, Relaxed, Relaxed);
                return Err(DurableError::Expired);
            }
            // Relaxed: only tells whom to ask about; the CAS below is what
            // takes the slot, and its Acquire what orders our reads.
            let owner = Owner::from_raw(self.mem.load64(s + slot::PID, Relaxed));
            if !owner.is_none() && self.mem.is_alive(owner.pid(), owner.start()) {
                return Err(DurableError::Taken(owner.pid()));
            }
            // Acquire: pairs with the previous owner's Release detach, so its
            // cursor and counters below are the last it published.
            if self
                .mem
                .cas64(s + slot::PID, owner.raw(), me, ord!(Acquire, "durable_relaxed", Relaxed), Relaxed)
                .is_err()
            {
                continue;
            }
            if !owner.is_none() {
                // We took it from a dead owner nobody had reaped yet.
                self.mem.add64(ctr::REAPED, 1, Relaxed);
            }
            self.mem.store64(s + slot::START, start, Relaxed);
            self.mem.store64(s + slot::SEEN_NS, self.mem.now_ns(), Relaxed);
            let tail = self.load_pos(prod::TAIL, Relaxed);
            let mut st = SubState::new(i, self.load_pos(s + slot::CURSOR, Relaxed).min(tail));
            st.expected_seq = self.mem.load64(s + slot::NEXT_SEQ, Relaxed);
            st.received = self.mem.load64(s + slot::RECEIVED, Relaxed);
            st.lost = self.mem.load64(s + slot::LOST, Relaxed);
            // Acquire: only defensive (it could be Relaxed): the slot's words
            // were ordered by the CAS above; this only notices an expiry
            // that raced it.
            if self.mem.load32(s + slot::STATE, Acquire) != slot::state::ACTIVE {
                // Expired between our look and our CAS.
                continue;
            }
            return Ok(st);
        }
        Err(DurableError::Taken(0))
    }

    /// Removes the durable subscriber `name` (its cursor stops gating).
    /// `Ok(false)` if there is none; `Err(pid)` if a live process holds it.
    pub fn remove_durable(&self, name: &[u8]) -> Result<bool, u32> {
        // Under the names lock, as find-or-create is: the search below then
        // sees every slot created before (and its state Acquire is only
        // defensive).
        self.with_names_lock(|| self.remove_durable_locked(name))
    }

    fn remove_durable_locked(&self, name: &[u8]) -> Result<bool, u32> {
        let Some((i, _)) = self.find_durable(&SlotName::new(name)) else {
            return Ok(false);
        };
        let s = self.layout.slot(i);
        let owner = Owner::from_raw(self.mem.load64(s + slot::PID, Relaxed));
        if !owner.is_none() && self.mem.is_alive(owner.pid(), owner.start()) {
            return Err(owner.pid());
        }
        // Relaxed: the slot stops gating; nobody reads through it.
        if self.mem.cas64(s + slot::PID, owner.raw(), Owner::NONE.raw(), Relaxed, Relaxed).is_err() {
            return Err(0);
        }
        self.mem.store32(s + slot::FLAGS, 0, Relaxed);
        for from in [slot::state::ACTIVE, slot::state::EXPIRED] {
            // Release: only defensive (it could be Relaxed): nobody read
            // through this slot's cursor (its owner is dead or gone), and
            // whoever claims the slot rewrites every word before publishing.
            if self.mem.cas32(s + slot::STATE, from, slot::state::FREE, Release, Relaxed).is_ok() {
                break;
            }
        }
        // A producer may be waiting on this cursor.
        self.wake_all(wake::SPACE_FUTEX);
        Ok(true)
    }

    /// Runs `f` holding the topic's names lock (header word
    /// `ctr::NAMES_LOCK`), which serialises find-or-create of named slots.
    /// A lock left by a dead process is taken over.
    pub(super) fn with_names_lock<T>(&self, f: impl FnOnce() -> T) -> T {
        let (pid, start) = self.mem.self_id();
        let me = Owner::new(pid, start).raw();
        let mut step = 0;
        // A holder keeps the lock for microseconds; one seen for a whole
        // liveness timeout is dead or a corrupt word (found by
        // tests/hostile.rs: a scribbled word naming pid 1 spun forever).
        let mut seen: Option<(Owner, u64)> = None;
        loop {
            // Acquire: pairs with the previous holder's Release unlock, so
            // the slots it created are visible to our search.
            let holder =
                match self.mem.cas64(ctr::NAMES_LOCK, 0, me, ord!(Acquire, "names_lock_relaxed", Relaxed), Relaxed) {
                    Ok(_) => break,
                    Err(holder) => Owner::from_raw(holder),
                };
            let now = self.mem.now_ns();
            let stale = match seen {
                Some((h, since)) if h == holder => {
                    now.saturating_sub(since) > self.layout.liveness_ms as u64 * 1_000_000
                }
                _ => {
                    seen = Some((holder, now));
                    false
                }
            };
            // Acquire: only defensive: a dead holder never unlocked, and
            // what it wrote before it died is ordered by the kernel's
            // report of its death (`is_alive`); the slots it created are
            // published by their own Release stores of ACTIVE.
            if (stale || !self.mem.is_alive(holder.pid(), holder.start()))
                && self.mem.cas64(ctr::NAMES_LOCK, holder.raw(), me, Acquire, Relaxed).is_ok()
            {
                break;
            }
            self.mem.snooze(step);
            step = (step + 1).min(64);
        }
        let r = f();
        // Release: what we created is visible to the next holder.
        self.mem.store64(ctr::NAMES_LOCK, 0, Release);
        r
    }
}

impl<M: Memory> Ring<M> {
    /// Writes `name` into the slot at offset `s`. Relaxed: published by
    /// the caller's Release store of the slot's state.
    pub(super) fn store_name(&self, s: usize, name: &SlotName) {
        for (k, w) in name.words().into_iter().enumerate() {
            self.mem.store64(s + slot::NAME + 8 * k, w, Relaxed);
        }
    }

    /// Whether the slot at offset `s` carries `name`. Relaxed: the caller
    /// loaded the slot's state with Acquire first.
    pub(super) fn name_is(&self, s: usize, name: &SlotName) -> bool {
        name.words().into_iter().enumerate().all(|(k, w)| self.mem.load64(s + slot::NAME + 8 * k, Relaxed) == w)
    }
}
