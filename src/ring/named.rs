//! Named slots: durable subscribers, and the names lock that makes
//! find-or-create of a name (durable subscriber or consumer group) atomic.
//!
//! A durable subscriber's slot outlives its process: when the process
//! leaves, the slot is *detached* (owner [`Owner::NONE`]); when it dies,
//! its owner's lock is gone; either way its cursor keeps gating, so the
//! next process to attach under the same name resumes at the first
//! message the last one did not release (at-least-once). The hand-over is
//! one CAS on the slot's owner word under the names lock, `Acquire` on the
//! taker's side paired with the `Release` detach, `Release` to publish the
//! new owner's lock to reapers (which do not take the names lock).

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::{JoinError, Ring, SubState};
use crate::layout::{ctr, prod, slot, wake, Owner, SlotName};
use crate::mem::Memory;
use crate::start::Start;

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
    pub fn join_durable(&self, name: &[u8]) -> Result<SubState, JoinError> {
        self.join_durable_from(name, Start::Newest)
    }

    /// [`Ring::join_durable`], starting at `start` if the durable
    /// subscriber is new (an existing one resumes where it stopped).
    pub fn join_durable_from(&self, name: &[u8], start: Start) -> Result<SubState, JoinError> {
        let me = Owner::from_raw(self.mem.attach().map_err(JoinError::Attach)?);
        let r = self.join_durable_as(&SlotName::new(name), me, start);
        if r.is_err() {
            self.mem.detach(me.raw());
        }
        r
    }

    /// Find, create or take over, all under the names lock: two takers, or
    /// a taker and [`Ring::remove_durable`], are serialised by it (a
    /// removal that loaded the owner before a take-over outside the lock
    /// could free the slot under its new owner: loom scenario
    /// `removal_never_frees_a_live_durable_subscriber`). The owner word's
    /// other writers do not take the lock: the owner leaving and a reaper
    /// detaching a dead owner, both only ever to [`Owner::NONE`].
    fn join_durable_as(&self, key: &SlotName, me: Owner, start: Start) -> Result<SubState, JoinError> {
        let (i, owner) = match self.with_names_lock(|| {
            let Some((i, state)) = self.find_durable(key) else {
                return self
                    .join_as(start, key.as_bytes(), slot::flags::DURABLE, me)
                    .map(Ok)
                    .ok_or(JoinError::NoFreeSlot);
            };
            let s = self.layout.slot(i);
            if state == slot::state::EXPIRED {
                // Relaxed: the expired slot holds nothing anyone needs.
                let _ = self.mem.cas32(s + slot::STATE, slot::state::EXPIRED, slot::state::FREE, Relaxed, Relaxed);
                return Err(JoinError::Expired);
            }
            // The owner can only move to NONE while we look (a leave, a
            // reaper), so a failed CAS is retried a bounded number of times.
            for _ in 0..4 {
                // Acquire: pairs with the previous owner's Release detach, so
                // its cursor and counters (read below) are the last it
                // published (mutation `durable_relaxed`). A live owner's lock
                // is visible without it: that owner's take-over was inside
                // the names lock, before ours.
                let owner =
                    Owner::from_raw(self.mem.load64(s + slot::OWNER, ord!(Acquire, "durable_relaxed", Relaxed)));
                if !owner.is_none() && self.mem.alive(owner.raw()) {
                    return Err(JoinError::Taken(self.mem.load64(s + slot::PID, Relaxed) as u32));
                }
                // AcqRel. Acquire: as the load's (from a dead owner, its
                // death, seen through the kernel's lock, orders its words
                // already). Release: publishes our attachment's lock with our
                // id to a reaper, which does not take the names lock
                // (mutation `takeover_publish`, caught by
                // `reaping_never_detaches_a_live_durable_owner`).
                let success = ord!(AcqRel, "durable_relaxed", Release, "takeover_publish", Acquire);
                if self.mem.cas64(s + slot::OWNER, owner.raw(), me.raw(), success, Relaxed).is_ok() {
                    return Ok(Err((i, owner)));
                }
            }
            Err(JoinError::Taken(0))
        })? {
            Ok(st) => return Ok(st),
            Err(took) => took,
        };
        let s = self.layout.slot(i);
        if !owner.is_none() {
            // We took it from a dead owner nobody had reaped yet.
            self.mem.add64(ctr::REAPED, 1, Relaxed);
        }
        self.mem.store64(s + slot::PID, self.mem.pid() as u64, Relaxed);
        self.mem.store64(s + slot::SEEN_NS, self.mem.now_ns(), Relaxed);
        let tail = self.load_pos(prod::TAIL, Relaxed);
        let mut st = SubState::new(i, self.load_pos(s + slot::CURSOR, Relaxed).min(tail), me);
        st.expected_seq = self.mem.load64(s + slot::NEXT_SEQ, Relaxed);
        st.received = self.mem.load64(s + slot::RECEIVED, Relaxed);
        st.lost = self.mem.load64(s + slot::LOST, Relaxed);
        // Acquire: only defensive (it could be Relaxed): the slot's words
        // were ordered by the CAS above; this only notices an expiry by a
        // reaper that raced it (it saw the slot detached for too long).
        if self.mem.load32(s + slot::STATE, Acquire) != slot::state::ACTIVE {
            // Give the slot back; it expired: say so, as if we had found it so.
            let _ = self.mem.cas64(s + slot::OWNER, me.raw(), Owner::NONE.raw(), Relaxed, Relaxed);
            return Err(JoinError::Expired);
        }
        Ok(st)
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
        // Relaxed: a live owner took the slot inside the names lock, before
        // us, so its lock is visible; the other writers only detach.
        let owner = Owner::from_raw(self.mem.load64(s + slot::OWNER, Relaxed));
        if !owner.is_none() && self.mem.alive(owner.raw()) {
            return Err(self.mem.load64(s + slot::PID, Relaxed) as u32);
        }
        // Relaxed: the slot stops gating; nobody reads through it.
        if self.mem.cas64(s + slot::OWNER, owner.raw(), Owner::NONE.raw(), Relaxed, Relaxed).is_err() {
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

    /// Runs `f` holding the topic's names lock (the kernel lock
    /// `lock::NAMES`, and a flag for threads of this process), which
    /// serialises find-or-create and removal of named slots. A holder that
    /// dies drops it, in any pid namespace; a holder keeps it for
    /// microseconds, so waiting is a spin with back-off.
    pub(super) fn with_names_lock<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut step = 0;
        #[cfg(not(shmq_mutation = "names_unlocked"))]
        while !self.mem.try_lock_names() {
            self.mem.snooze(step);
            step = (step + 1).min(64);
        }
        let _ = &mut step;
        let r = f();
        #[cfg(not(shmq_mutation = "names_unlocked"))]
        self.mem.unlock_names();
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
