//! The single producer's ownership of the producer line.
//!
//! A single-producer topic has at most one producer at a time: the producer
//! line's `OWNER` word ([`ProducerOwner`]) names it. Attaching takes the
//! word with a CAS (`Acquire`, pairing with the previous owner's `Release`
//! on detach, so the tail and counters it left are seen); a word held by a
//! dead process is taken over, after which the dead owner's unfinished
//! claim is repaired ([`Ring::repair_single_claim`]). Multi-producer topics
//! have no owner: every producer claims with a CAS on the tail.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{ProducerState, Ring};
use crate::layout::{prod, ProducerOwner};
use crate::mem::Memory;

impl<M: Memory> Ring<M> {
    /// Attaches a producer: on a single-producer topic takes ownership (or
    /// `Err(pid)` of the live process that holds it, this one included),
    /// repairs a dead predecessor's claim, and returns the new producer's
    /// state.
    pub fn attach_producer(&self) -> Result<ProducerState, u32> {
        if self.layout.multi_producer {
            return Ok(self.producer_state());
        }
        let (pid, start) = self.mem.self_id();
        let mine = ProducerOwner::held_by(pid);
        let mut cur = ProducerOwner::FREE;
        loop {
            // Acquire: pairs with the previous owner's Release on detach, so
            // we see the tail and counters it left.
            let acquire = ord!(Acquire, "owner_acquire", Relaxed);
            match self.mem.cas64(prod::OWNER, cur.raw(), mine.raw(), acquire, acquire) {
                Ok(_) => break,
                Err(found) => {
                    let found = ProducerOwner::from_raw(found);
                    // Relaxed: the holder's start time, for the liveness test.
                    let holder_start = self.mem.load64(prod::OWNER_START, Relaxed);
                    let dead = match found.holder() {
                        None => true,
                        Some(holder) => holder != pid && !self.mem.is_alive(holder, holder_start),
                    };
                    if found == mine || !dead {
                        return Err(found.holder().unwrap_or(0));
                    }
                    cur = found;
                }
            }
        }
        // Relaxed: read only by a later attacher that finds this owner's
        // word, after its own CAS.
        self.mem.store64(prod::OWNER_START, start, Relaxed);
        let mut st = self.producer_state();
        st.owner = mine;
        // The previous owner may have died between claim and commit.
        self.repair_single_claim(&mut st);
        Ok(st)
    }

    /// Gives up what [`Ring::attach_producer`] took (nothing on a
    /// multi-producer topic).
    pub fn detach_producer(&self, st: &ProducerState) {
        if st.owner != ProducerOwner::FREE {
            // Release: our last tail and counters are visible to the next
            // owner's Acquire CAS.
            let _ = self.mem.cas64(prod::OWNER, st.owner.raw(), ProducerOwner::FREE.raw(), Release, Relaxed);
        }
    }
}
