//! Attaching producers, and the single producer's ownership of the
//! producer line.
//!
//! Every producer attaches ([`Memory::attach`]): it takes an attachment id
//! and holds its lock for as long as it lives. A multi-producer writes that
//! id into the mark of each claim it makes ("Stuck claims" in the `ring`
//! module docs), so a subscriber can ask whether the claim's producer
//! lives. A single-producer topic has at most one producer at a time: the
//! producer line's `OWNER` word names its attachment. Attaching takes the
//! word with a CAS (`Acquire`, pairing with the previous owner's `Release`
//! on detach, so the tail and counters it left are seen); a word whose
//! attachment is dead is taken over, after which the dead owner's
//! unfinished claim is repaired ([`Ring::repair_single_claim`]).

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::{ProducerState, Ring};
use crate::layout::{prod, Owner};
use crate::mem::Memory;

/// Why a producer could not attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachError {
    /// A live producer holds this single-producer topic (its pid, for
    /// display).
    Busy(u32),
    /// The kernel gave no lock to attach with (out of descriptors).
    Attach(String),
}

impl<M: Memory> Ring<M> {
    /// Attaches a producer: takes an attachment; on a single-producer topic
    /// also the producer line (or [`AttachError::Busy`] while a live
    /// producer, in this process or another, holds it), repairing a dead
    /// predecessor's claim. Returns the new producer's state.
    pub fn attach_producer(&self) -> Result<ProducerState, AttachError> {
        let me = Owner::from_raw(self.mem.attach().map_err(AttachError::Attach)?);
        if self.layout.multi_producer {
            self.note_producer(me.raw());
            let mut st = self.producer_state();
            st.owner = me;
            return Ok(st);
        }
        let mut cur = Owner::NONE;
        loop {
            // AcqRel. Acquire: pairs with the previous owner's Release on
            // detach, so we see the tail and counters it left. Release:
            // publishes our attachment's lock (taken above) with our id, so
            // another attacher that reads the id (Acquire, on failure) and
            // then tests the lock finds it held.
            let success = ord!(ord!(AcqRel, "owner_acquire", Release), "owner_publish", Acquire);
            let failure = ord!(Acquire, "owner_acquire", Relaxed);
            match self.mem.cas64(prod::OWNER, cur.raw(), me.raw(), success, failure) {
                Ok(_) => break,
                Err(found) => {
                    let found = Owner::from_raw(found);
                    if !found.is_none() && self.mem.alive(found.raw()) {
                        self.mem.detach(me.raw());
                        // Relaxed: for the message only.
                        return Err(AttachError::Busy(self.mem.load64(prod::OWNER_PID, Relaxed) as u32));
                    }
                    cur = found;
                }
            }
        }
        self.note_producer(me.raw());
        // Relaxed: for display.
        self.mem.store64(prod::OWNER_PID, self.mem.pid() as u64, Relaxed);
        let mut st = self.producer_state();
        st.owner = me;
        // The previous owner may have died between claim and commit.
        self.repair_single_claim(&mut st);
        Ok(st)
    }

    /// Gives up what [`Ring::attach_producer`] took.
    pub fn detach_producer(&self, st: &ProducerState) {
        if !self.layout.multi_producer {
            // Release: our last tail and counters are visible to the next
            // owner's Acquire CAS.
            let _ = self.mem.cas64(prod::OWNER, st.owner.raw(), Owner::NONE.raw(), Release, Relaxed);
        }
        self.mem.detach(st.owner.raw());
    }
}
