//! Consumer groups: members share one stream, and each message goes to
//! exactly one member (the Disruptor's work pool).
//!
//! The group's *record* is a slot owned by no process whose cursor is the
//! group's claim cursor: a member takes the next frame by CASing it past
//! the frame (`Release`), after *announcing* the frame in its own slot's
//! cursor, which then gates the producer until the member releases it
//! ([`slot::IDLE`] again). The producer's scan reads the record before the
//! members (`scan_min_cursor`), so it sees every announcement a taken
//! frame needs. A member that dies holding a message has it redelivered
//! to another member, which adopts the dead member's slot.
//!
//! Poison messages: each member slot counts the deliveries of the message
//! it holds (`slot::DELIVERIES`: 1 when taken, +1 by each adopter). When
//! an adopter finds a message already delivered the group's
//! `MAX_DELIVERIES` times, it does not deliver it again: it hands it to its
//! dead-letter [`Sink`] (the subscriber's producer on the dead-letter
//! topic), then frees the slot and counts it (`slot::DEAD_LETTERED` on the
//! group record). A sink without room (a full `Block` dead-letter topic)
//! keeps the slot, which goes on gating the producer, and is retried at
//! the adopter's next take: the group is held back, the message not lost.
//! The counts need no ordering of their own: they are read by an adopter
//! only after the holder died, which the kernel's lock orders.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::reading::STUCK_POLLS;
use super::{sane_pos, FrameView, JoinError, ReadError, Ring, SubState, LIVENESS_CHECK_NS};
use crate::layout::{ctr, frame, slot, LenType, Owner, SlotName, Stamp, StampState, FRAME_HEADER, MAX_POS};
use crate::mem::Memory;
use crate::start::Start;

/// Where a group member sends messages it gives up on: a poison message
/// (delivered the group's maximum number of times) or one it rejects.
pub trait DeadLetters: Send {
    /// Stores `payload` (the message `view` describes, delivered
    /// `deliveries` times; `rejected` by a member rather than poison).
    /// `wait`: wait for room; else `false` when there is none now.
    fn bury(&mut self, view: &FrameView, payload: &[u8], deliveries: u32, rejected: bool, wait: bool) -> bool;
}

/// A member's [`DeadLetters`], boxed (and `Debug` for [`SubState`]).
pub struct Sink(pub Box<dyn DeadLetters>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl<M: Memory> Ring<M> {
    /// The record slot of consumer group `name`.
    fn find_group(&self, key: &SlotName) -> Option<usize> {
        (0..self.layout.max_subscribers as usize).find(|&i| {
            let s = self.layout.slot(i);
            // Acquire: only defensive (it could be Relaxed): every caller
            // holds the names lock, whose Acquire orders the creator's
            // writes, made before it let the lock go.
            self.mem.load32(s + slot::STATE, Acquire) == slot::state::ACTIVE
                && self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::GROUP != 0
                && self.name_is(s, key)
        })
    }

    /// Joins consumer group `name` (`Block` topics): creates the group's
    /// record at the newest message if it does not exist, then takes a
    /// member slot. Each message goes to exactly one member (work sharing,
    /// as in the Disruptor's work pool).
    pub fn join_group(&self, name: &[u8]) -> Result<SubState, JoinError> {
        self.join_group_with(name, None)
    }

    /// As [`Ring::join_group`]; `max_deliveries` (when given) is stored in
    /// a group this creates, and must match one that exists
    /// ([`JoinError::GroupSettings`] with the group's value otherwise).
    pub fn join_group_with(&self, name: &[u8], max_deliveries: Option<u32>) -> Result<SubState, JoinError> {
        let key = SlotName::new(name);
        // Find-or-create under the names lock (see `join_durable`). The
        // record belongs to no process (owner none), so no reaper frees it.
        let g = self
            .with_names_lock(|| match self.find_group(&key) {
                Some(g) => Some(g),
                None => self.join_as(Start::Newest, key.as_bytes(), slot::flags::GROUP, Owner::NONE).map(|st| {
                    let s = self.layout.slot(st.slot);
                    // Relaxed: read by members of this group, which find it
                    // under the names lock.
                    self.mem.store32(s + slot::MAX_DELIVERIES, max_deliveries.unwrap_or(0), Relaxed);
                    self.mem.store64(s + slot::DEAD_LETTERED, 0, Relaxed);
                    st.slot
                }),
            })
            .ok_or(JoinError::NoFreeSlot)?;
        let stored = self.max_deliveries(g);
        if max_deliveries.is_some_and(|m| m != stored) {
            return Err(JoinError::GroupSettings { max_deliveries: stored });
        }
        let me = Owner::from_raw(self.mem.attach().map_err(JoinError::Attach)?);
        let Some(m) = self.take_slot(slot::flags::MEMBER, &key, me) else {
            self.mem.detach(me.raw());
            return Err(JoinError::NoFreeSlot);
        };
        let s = self.layout.slot(m);
        // Relaxed: published by the Release store of ACTIVE below.
        self.mem.store32(s + slot::GROUP, g as u32, Relaxed);
        self.mem.store64(s + slot::CURSOR, slot::IDLE, Relaxed);
        // Release: publishes the fields above to scans and reapers.
        self.mem.store32(s + slot::STATE, slot::state::ACTIVE, Release);
        let mut st = SubState::new(m, slot::IDLE, me);
        st.group = Some(g);
        Ok(st)
    }

    /// Group member: takes the group's next message (exactly one member
    /// gets each), or redelivers a dead member's unreleased one.
    #[inline(never)]
    pub(super) fn group_take(&self, st: &mut SubState, g: usize) -> Result<Option<FrameView>, ReadError> {
        if let Some(i) = st.bury_pending {
            self.retry_bury(st, g, i)?;
        }
        if let Some(v) = self.adopt_dead(st, g)? {
            return Ok(Some(v));
        }
        let gs = self.layout.slot(g);
        let ms = self.layout.slot(st.slot);
        let mut passes = 0u64;
        loop {
            // Acquire: only defensive (it could be Relaxed): what a member
            // needs of a frame is published by its stamp, loaded with
            // Acquire below; the announcement another member's CAS
            // publishes is for the producer, not for us.
            // Compute with the sane position, CAS the raw word: a corrupt
            // (unaligned) cursor is then replaced instead of failing every
            // CAS forever (found by tests/hostile.rs, like the tail's).
            let raw = self.mem.load64(gs + slot::CURSOR, Acquire);
            let next = sane_pos(raw);
            // Each pass skips a frame or retries a lost race; more passes
            // than the ring has frames means the memory is corrupt (a cursor
            // pinned at the clamp skipped the same frame forever: found by
            // tests/hostile.rs).
            passes += 1;
            if raw >= MAX_POS || passes > self.cap() / FRAME_HEADER as u64 + 64 {
                return Err(ReadError::Corrupt(format!("group cursor {raw:#x} does not advance")));
            }
            let off = self.layout.frame_at(next);
            // Acquire: pairs with the producer's Release stamp store.
            let stamp = self.mem.load64(off + frame::STAMP, ord!(Acquire, "group_stamp_acquire", Relaxed));
            let state = Stamp::state(stamp, next, self.key());
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            if !matches!(state, StampState::Committed | StampState::Aborted) {
                if self.layout.multi_producer {
                    st.cursor = next;
                    st.idle += 1;
                    if st.idle >= STUCK_POLLS {
                        st.idle = 0;
                        if self.unstick(st) {
                            continue;
                        }
                    }
                }
                return Ok(None);
            }
            let Some(size) = self.frame_len_of(next, lt) else {
                // Acquire: only defensive, as the load above.
                if self.load_pos(gs + slot::CURSOR, Acquire) != next {
                    continue; // another member moved on; what we read may be reused
                }
                return Err(ReadError::Corrupt(format!(
                    "frame at position {next}: length/type word {lt:#x} is invalid"
                )));
            };
            let skip = state == StampState::Aborted || LenType::from_raw(lt).is_padding();
            if !skip {
                // A first delivery (read by an adopter after our death).
                self.mem.store32(ms + slot::DELIVERIES, 1, Relaxed);
                // Announce the frame before taking it (see `scan_min_cursor`).
                self.mem.store64(ms + slot::CURSOR, next, Relaxed);
            }
            // Release: our announcement (above) is visible to a producer
            // that reads the new group cursor with Acquire.
            if self
                .mem
                .cas64(gs + slot::CURSOR, raw, next + size, ord!(Release, "group_cursor_relaxed", Relaxed), Relaxed)
                .is_err()
            {
                if !skip {
                    // Withdraw the announcement, and wake a producer that
                    // saw it and went to sleep (loom found this lost wake:
                    // `group_members_take_each_message_once`).
                    // Release: only defensive (it could be Relaxed): we read
                    // nothing of the frame before we lost it.
                    self.mem.store64(ms + slot::CURSOR, slot::IDLE, Release);
                    #[cfg(not(shmq_mutation = "group_no_wake"))]
                    self.wake_space();
                }
                continue;
            }
            if skip {
                self.wake_space();
                continue;
            }
            st.cursor = next;
            return Ok(Some(self.view_at(next, lt, size)));
        }
    }

    /// Group member: a dead member's unreleased message, taken over (at
    /// most every [`LIVENESS_CHECK_NS`]); dead idle members are freed.
    fn adopt_dead(&self, st: &mut SubState, g: usize) -> Result<Option<FrameView>, ReadError> {
        let now = self.mem.now_ns();
        if st.last_check != 0 && now.saturating_sub(st.last_check) < LIVENESS_CHECK_NS {
            return Ok(None);
        }
        st.last_check = now.max(1);
        for i in 0..self.layout.max_subscribers as usize {
            let s = self.layout.slot(i);
            // The Acquires from here to the redelivered frame's stamp are
            // only defensive: we act only on a member the kernel reports
            // dead (its lock is gone: `Memory::alive`), and a process's death, observed through
            // the kernel, orders everything it wrote (its announcement, the
            // frame it had acquired) before our look. The model gives death
            // that ordering too (`LoomMem::kill`).
            if i == st.slot
                || self.mem.load32(s + slot::STATE, Acquire) != slot::state::ACTIVE
                || self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::MEMBER == 0
                || self.mem.load32(s + slot::GROUP, Relaxed) as usize != g
            {
                continue;
            }
            // Acquire: pairs with the Release of an adopter's CAS below (or
            // the member's ACTIVE), so a live owner's lock is seen: a message
            // another member has adopted is not adopted twice (mutation
            // `adopt_owner_acquire`).
            let owner =
                Owner::from_raw(self.mem.load64(s + slot::OWNER, ord!(Acquire, "adopt_owner_acquire", Relaxed)));
            if self.mem.alive(owner.raw()) {
                continue;
            }
            // Acquire: defensive, see above; the CAS makes one adopter.
            // The slot is ours now: our lock vouches for it while we hold
            // its message (if we die too, another member adopts it).
            // Release: publishes our attachment's lock with our id (see the
            // load above; mutation `adopt_publish`).
            let success = ord!(AcqRel, "adopt_publish", Acquire);
            if self.mem.cas64(s + slot::OWNER, owner.raw(), st.attach.raw(), success, Relaxed).is_err() {
                continue;
            }
            self.mem.store64(s + slot::PID, self.mem.pid() as u64, Relaxed);
            let p = self.load_pos(s + slot::CURSOR, Acquire);
            if p >= slot::IDLE {
                // Held nothing: free the slot. Release: only defensive (it
                // read nothing a producer could overwrite).
                if self.mem.cas32(s + slot::STATE, slot::state::ACTIVE, slot::state::FREE, Release, Relaxed).is_ok() {
                    self.mem.add64(ctr::REAPED, 1, Relaxed);
                }
                continue;
            }
            // Its cursor still gates the frame at p: deliver it again.
            let off = self.layout.frame_at(p);
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            // Acquire: defensive, see above (the dead member acquired it).
            let ok = self.mem.load64(off + frame::STAMP, Acquire) == Stamp::committed(p, self.key()).raw();
            // A member only ever announces a message, never padding: a
            // padding length word here is corrupt (and as a payload length
            // it could reach past the end of the ring).
            let is_pad = LenType::from_raw(lt).is_padding();
            let (Some(size), true, false) = (self.frame_len_of(p, lt), ok, is_pad) else {
                return Err(ReadError::Corrupt(format!("redelivered frame at position {p} is not intact")));
            };
            self.mem.add64(ctr::REAPED, 1, Relaxed);
            let mut view = self.view_at(p, lt, size);
            // Relaxed: written by the dead holders, ordered by their deaths.
            let delivered = self.mem.load32(s + slot::DELIVERIES, Relaxed).max(1);
            let max = self.max_deliveries(g);
            if max > 0 && delivered >= max && st.dead_letters.is_some() {
                // Poison: delivered `max` times, never released.
                if !self.bury(st, g, i, &view, delivered) {
                    st.bury_pending = Some(i); // no room: keep it, try again
                }
                continue;
            }
            view.deliveries = delivered.saturating_add(1);
            self.mem.store32(s + slot::DELIVERIES, view.deliveries, Relaxed);
            st.adopted = Some(i);
            st.cursor = p;
            return Ok(Some(view));
        }
        Ok(None)
    }

    /// A member's group's `MAX_DELIVERIES` (0: no limit, or not a member).
    pub fn group_max_deliveries(&self, st: &SubState) -> u32 {
        st.group.map_or(0, |g| self.max_deliveries(g))
    }

    /// The group's `MAX_DELIVERIES` (0: no limit).
    fn max_deliveries(&self, g: usize) -> u32 {
        // Relaxed: written once when the group was created, before its
        // record's Release store of ACTIVE, which every member has seen.
        self.mem.load32(self.layout.slot(g) + slot::MAX_DELIVERIES, Relaxed)
    }

    /// Hands the poison message `view` held by dead member slot `i` (which
    /// we own now) to the dead-letter sink, without waiting; on success
    /// frees the slot and counts it. Returns whether it was stored.
    fn bury(&self, st: &mut SubState, g: usize, i: usize, view: &FrameView, delivered: u32) -> bool {
        let Some(sink) = st.dead_letters.as_mut() else {
            return false;
        };
        let mut payload = vec![0u8; view.len as usize];
        // SAFETY: `view` is a committed frame the slot's cursor gates, so
        // its payload lies in the ring and no producer writes it.
        unsafe { self.mem.read(view.payload_off, &mut payload) };
        if !sink.0.bury(view, &payload, delivered, false, false) {
            return false;
        }
        // Release: our read of the frame happens before a producer that sees
        // the slot free overwrites it (mutation `bury_free_relaxed`).
        let _ = self.mem.cas32(
            self.layout.slot(i) + slot::STATE,
            slot::state::ACTIVE,
            slot::state::FREE,
            ord!(Release, "bury_free_relaxed", Relaxed),
            Relaxed,
        );
        self.mem.add64(self.layout.slot(g) + slot::DEAD_LETTERED, 1, Relaxed);
        st.bury_pending = None;
        self.wake_space();
        true
    }

    /// Tries again to bury the poison message of slot `i` (kept after the
    /// dead-letter topic had no room).
    fn retry_bury(&self, st: &mut SubState, g: usize, i: usize) -> Result<(), ReadError> {
        let s = self.layout.slot(i);
        let p = self.load_pos(s + slot::CURSOR, Relaxed);
        let off = self.layout.frame_at(p);
        let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
        // Acquire: defensive, as in `adopt_dead`.
        let ok = self.mem.load64(off + frame::STAMP, Acquire) == Stamp::committed(p, self.key()).raw();
        let (Some(size), true, false) = (self.frame_len_of(p, lt), ok, LenType::from_raw(lt).is_padding()) else {
            return Err(ReadError::Corrupt(format!("dead-letter frame at position {p} is not intact")));
        };
        let view = self.view_at(p, lt, size);
        let delivered = self.mem.load32(s + slot::DELIVERIES, Relaxed);
        self.bury(st, g, i, &view, delivered);
        Ok(())
    }

    /// Group member: sends the message it holds (`view`) to the dead-letter
    /// sink, waiting for room, and counts it; the caller then releases it.
    /// `false` if this member has no sink.
    pub fn reject(&self, st: &mut SubState, view: &FrameView) -> bool {
        let (Some(g), Some(sink)) = (st.group, st.dead_letters.as_mut()) else {
            return false;
        };
        let mut payload = vec![0u8; view.len as usize];
        // SAFETY: the frame this member holds: committed, gated by its cursor.
        unsafe { self.mem.read(view.payload_off, &mut payload) };
        if !sink.0.bury(view, &payload, view.deliveries, true, true) {
            return false;
        }
        self.mem.add64(self.layout.slot(g) + slot::DEAD_LETTERED, 1, Relaxed);
        true
    }

    /// Group member: releases the message it holds (its own, or one it
    /// redelivered for a dead member, whose slot it then frees).
    pub(super) fn group_release(&self, st: &mut SubState) {
        let s = self.layout.slot(st.slot);
        // Relaxed: statistics for inspectors.
        self.mem.store64(s + slot::RECEIVED, st.received, Relaxed);
        if let Some(dead) = st.adopted.take() {
            // Release: our reads of the frame happen before a producer that
            // sees the slot free overwrites it (pairs with the Acquire state
            // load of its scan).
            let _ = self.mem.cas32(
                self.layout.slot(dead) + slot::STATE,
                slot::state::ACTIVE,
                slot::state::FREE,
                ord!(Release, "adopt_free_relaxed", Relaxed),
                Relaxed,
            );
        } else {
            // Release: as above, for our own announced frame.
            self.mem.store64(s + slot::CURSOR, slot::IDLE, ord!(Release, "cursor_relaxed", Relaxed));
        }
        st.cursor = slot::IDLE;
        self.wake_space();
    }

    /// Removes consumer group `name` (its cursor stops gating). `Err(n)`
    /// if `n` live members are in it.
    pub fn remove_group(&self, name: &[u8]) -> Result<bool, usize> {
        // Under the names lock, as find-or-create is (see `remove_durable`).
        self.with_names_lock(|| self.remove_group_locked(name))
    }

    fn remove_group_locked(&self, name: &[u8]) -> Result<bool, usize> {
        let Some(g) = self.find_group(&SlotName::new(name)) else {
            return Ok(false);
        };
        let live = (0..self.layout.max_subscribers as usize)
            .filter(|&i| {
                let s = self.layout.slot(i);
                // Acquire: pairs with the member's Release store of ACTIVE,
                // so its flags, group and owner (read after it) are its own.
                self.mem.load32(s + slot::STATE, Acquire) == slot::state::ACTIVE
                    && self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::MEMBER != 0
                    && self.mem.load32(s + slot::GROUP, Relaxed) as usize == g
                    && { self.mem.alive(self.mem.load64(s + slot::OWNER, Relaxed)) }
            })
            .count();
        if live > 0 {
            return Err(live);
        }
        let s = self.layout.slot(g);
        self.mem.store32(s + slot::FLAGS, 0, Relaxed);
        // Release: only defensive (it could be Relaxed): the record's
        // cursor gates nothing a member still reads (members hold frames
        // through their own cursors, and none is alive).
        let _ = self.mem.cas32(s + slot::STATE, slot::state::ACTIVE, slot::state::FREE, Release, Relaxed);
        self.wake_space();
        Ok(true)
    }
}
