//! The inbound bridge's record of what it applied: the last stream
//! sequence it published into the topic, so a redelivery after its own
//! crash is not published twice.
//!
//! A 64-byte file beside the topic (`.shmq-bridge/NAME.applied`), mapped,
//! updated after every local publish:
//!
//! ```text
//!  0   magic "SHMQBRIN"
//!  8   generation g (u64)
//!  16  slot 0: stream seq, topic published count after it, topic instance
//!  40  slot 1: the same
//! ```
//!
//! A store writes slot `(g+1) % 2` and then `g+1` (release), so the
//! current slot is always whole: a bridge killed mid-store leaves the
//! previous record. One record can still be one publish behind (killed
//! between the publish and the store): the topic's published count tells
//! that, see `inbound`.
//!
//! Only one bridge of a name runs at a time (its status lock), so there is
//! one writer; the record is read at start, before that writer exists.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapMut;

const MAGIC: u64 = u64::from_le_bytes(*b"SHMQBRIN");
const LEN: usize = 64;
const GEN: usize = 8;
const SLOT: [usize; 2] = [16, 40];

/// What the record says was applied last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Stream sequence of the last message published into the topic.
    pub seq: u64,
    /// The topic's published-message count right after that publish.
    pub published: u64,
    /// [`shmq::Topic::instance_id`] of the topic it went into.
    pub instance: u64,
}

#[derive(Debug)]
pub struct Record {
    map: MmapMut,
}

impl Record {
    /// Opens or creates the record file.
    pub fn open(path: &Path) -> Result<Record, String> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let len = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?.len();
        if len != LEN as u64 {
            if len != 0 {
                return Err(format!(
                    "{} is not a bridge record ({len} bytes); remove it to start over",
                    path.display()
                ));
            }
            f.set_len(LEN as u64).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        // Only one bridge of a name runs (its status lock); another process
        // writing the file can give a wrong record, never a bad access.
        // SAFETY: every access is at a fixed offset inside the 64 bytes.
        let map = unsafe { MmapMut::map_mut(&f) }.map_err(|e| format!("cannot map {}: {e}", path.display()))?;
        let r = Record { map };
        match r.word(0).load(Ordering::Relaxed) {
            0 => r.word(0).store(MAGIC, Ordering::Relaxed),
            MAGIC => {}
            _ => return Err(format!("{} is not a bridge record (bad magic); remove it to start over", path.display())),
        }
        r.map.flush().ok();
        Ok(r)
    }

    fn word(&self, off: usize) -> &AtomicU64 {
        assert!(off % 8 == 0 && off + 8 <= LEN);
        // SAFETY: `off` is 8-aligned and inside the mapping (asserted), and
        // the mapping is page-aligned, so the u64 is aligned; AtomicU64 has
        // u64's layout; the mapping lives as long as `self`.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU64) }
    }

    /// The last whole record, if any was stored.
    pub fn load(&self) -> Option<Applied> {
        // Acquire pairs with `store`'s Release of the generation (defensive:
        // the reader is a later process, after the writer's exit).
        let g = self.word(GEN).load(Ordering::Acquire);
        if g == 0 {
            return None;
        }
        let s = SLOT[(g % 2) as usize];
        Some(Applied {
            seq: self.word(s).load(Ordering::Relaxed),
            published: self.word(s + 8).load(Ordering::Relaxed),
            instance: self.word(s + 16).load(Ordering::Relaxed),
        })
    }

    /// Records `a`: the spare slot first, then the generation that makes it current.
    pub fn store(&self, a: Applied) {
        let g = self.word(GEN).load(Ordering::Relaxed) + 1;
        let s = SLOT[(g % 2) as usize];
        self.word(s).store(a.seq, Ordering::Relaxed);
        self.word(s + 8).store(a.published, Ordering::Relaxed);
        self.word(s + 16).store(a.instance, Ordering::Relaxed);
        // Release: the slot's words are written before the generation that
        // names them (pairs with `load`'s Acquire). Within one machine the
        // page cache keeps the stores of a killed process; order is what matters.
        self.word(GEN).store(g, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_alternate_slots_and_survive_reopen() {
        let dir = std::env::temp_dir().join(format!("shmq-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.applied");
        let r = Record::open(&p).unwrap();
        assert_eq!(r.load(), None);
        for i in 1..=5 {
            r.store(Applied { seq: i * 10, published: i, instance: 7 });
        }
        drop(r);
        let r = Record::open(&p).unwrap();
        assert_eq!(r.load(), Some(Applied { seq: 50, published: 5, instance: 7 }));
        // A torn store (slot written, generation not) leaves the last whole record.
        r.word(SLOT[0]).store(999, Ordering::Relaxed);
        assert_eq!(r.load(), Some(Applied { seq: 50, published: 5, instance: 7 }));
        std::fs::write(&p, b"short").unwrap();
        assert!(Record::open(&p).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
