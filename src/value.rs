//! Typed zero-copy payloads: a `#[repr(C)]` type that is
//! [`bytemuck::Pod`] (any bytes are a valid value, no padding, no
//! pointers) is published as its bytes and read back in place, with its
//! size and alignment checked, never transmuted blindly.
//!
//! `bytemuck` was chosen over `zerocopy` for its smaller surface: the one
//! trait pair users derive (`Pod`, `Zeroable`) is all the proof a
//! plain-bytes cast needs, and `try_from_bytes` already reports a short or
//! misaligned slice as an error. Payloads are aligned: a `Block` payload
//! sits 32 bytes into a 32-byte aligned frame, and an `Overwrite` copy
//! lands in a 64-byte aligned buffer ([`AlignedBuf`]), so any type aligned
//! to 32 bytes or less can be read in place.
//!
//! No type tag is stored in the topic: a tag shared by Rust, C and Python
//! needs a naming scheme for types across languages, which is the user's
//! (put it in the message type, `publish_typed`). What is checked is what
//! makes a read sound: the length is exactly the type's size, and the
//! address is aligned for it.

use std::marker::PhantomData;

use crate::error::{PublishError, ValueError};
use crate::producer::{Grant, Producer};
use crate::subscriber::{Message, MessageRef};

/// The largest alignment a typed payload may need (Block frames are
/// 32-byte aligned).
pub const MAX_VALUE_ALIGN: usize = 32;

/// `bytes` as a `T`, if it is exactly `T`'s size and aligned for it.
pub(crate) fn view<T: bytemuck::Pod>(bytes: &[u8]) -> Result<&T, ValueError> {
    check::<T>(bytes)?;
    bytemuck::try_from_bytes(bytes)
        .map_err(|_| ValueError::Misaligned { align: std::mem::align_of::<T>(), addr: bytes.as_ptr() as usize })
}

/// `bytes` as a `T`, copied (any alignment), if it is exactly `T`'s size.
pub(crate) fn read<T: bytemuck::Pod>(bytes: &[u8]) -> Result<T, ValueError> {
    if bytes.len() != std::mem::size_of::<T>() {
        return Err(ValueError::Size { expected: std::mem::size_of::<T>(), found: bytes.len() });
    }
    Ok(bytemuck::pod_read_unaligned(bytes))
}

fn check<T>(bytes: &[u8]) -> Result<(), ValueError> {
    if bytes.len() != std::mem::size_of::<T>() {
        return Err(ValueError::Size { expected: std::mem::size_of::<T>(), found: bytes.len() });
    }
    if bytes.as_ptr() as usize % std::mem::align_of::<T>() != 0 {
        return Err(ValueError::Misaligned { align: std::mem::align_of::<T>(), addr: bytes.as_ptr() as usize });
    }
    Ok(())
}

impl Producer {
    /// Publishes `value` as its bytes (waiting for room, as `publish`).
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-val-{}", std::process::id()));
    /// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct Tick { seq: u64, price: f64, qty: u32, side: u32 }
    ///
    /// let mut sub = topic.subscribe()?;
    /// let mut p = topic.producer()?;
    /// p.publish_value(&Tick { seq: 1, price: 1.0842, qty: 100, side: 0 })?;
    /// let mut g = p.reserve_value::<Tick>()?; // built in place
    /// g.seq = 2;
    /// g.qty = 5;
    /// g.commit()?;
    /// let m = sub.recv()?;
    /// assert_eq!(m.value::<Tick>()?.price, 1.0842); // read in place, checked
    /// drop(m);
    /// assert_eq!(sub.recv()?.value::<Tick>()?.qty, 5);
    /// # drop((sub, p, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_value<T: bytemuck::Pod>(&mut self, value: &T) -> Result<(), PublishError> {
        self.publish(bytemuck::bytes_of(value))
    }

    /// Lends room for one `T` inside the ring, zeroed, to build in place;
    /// [`ValueGrant::commit`] publishes it. A type aligned to more than
    /// [`MAX_VALUE_ALIGN`] bytes is refused ([`PublishError::Unaligned`]).
    pub fn reserve_value<T: bytemuck::Pod>(&mut self) -> Result<ValueGrant<'_, T>, PublishError> {
        if std::mem::align_of::<T>() > MAX_VALUE_ALIGN {
            return Err(PublishError::Unaligned { align: std::mem::align_of::<T>() });
        }
        let mut grant = self.reserve(std::mem::size_of::<T>())?;
        grant.fill(0);
        // The payload of a frame is 32-byte aligned and exactly `T`'s size:
        // checked here once, so the derefs below cannot fail.
        if view::<T>(&grant).is_err() {
            return Err(PublishError::Unaligned { align: std::mem::align_of::<T>() });
        }
        Ok(ValueGrant { grant, _t: PhantomData })
    }
}

/// Room for one `T` in the ring, lent by [`Producer::reserve_value`];
/// derefs to the `T`. Dropped without commit, it becomes padding.
#[derive(Debug)]
pub struct ValueGrant<'a, T> {
    grant: Grant<'a>,
    _t: PhantomData<T>,
}

impl<T: bytemuck::Pod> ValueGrant<'_, T> {
    /// Publishes the value.
    pub fn commit(self) -> Result<(), PublishError> {
        self.grant.commit(std::mem::size_of::<T>())
    }
    /// Sets the message's user type (as [`Grant::set_type`]).
    pub fn set_type(&mut self, msg_type: u32) {
        self.grant.set_type(msg_type);
    }
}

impl<T: bytemuck::Pod> std::ops::Deref for ValueGrant<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Size and alignment were checked in `reserve_value`.
        bytemuck::from_bytes(&self.grant)
    }
}

impl<T: bytemuck::Pod> std::ops::DerefMut for ValueGrant<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        bytemuck::from_bytes_mut(&mut self.grant)
    }
}

impl Message<'_> {
    /// The payload as a `T`, in place: [`ValueError`] if its length is not
    /// `T`'s size or it is not aligned for `T` (payloads are aligned to
    /// 32 bytes, so only a type aligned to more fails that way).
    pub fn value<T: bytemuck::Pod>(&self) -> Result<&T, ValueError> {
        view(self.data())
    }
    /// The payload as a `T`, copied: only its length is checked.
    pub fn read_value<T: bytemuck::Pod>(&self) -> Result<T, ValueError> {
        read(self.data())
    }
}

impl MessageRef<'_> {
    /// As [`Message::value`].
    pub fn value<T: bytemuck::Pod>(&self) -> Result<&T, ValueError> {
        view(self)
    }
    /// As [`Message::read_value`].
    pub fn read_value<T: bytemuck::Pod>(&self) -> Result<T, ValueError> {
        read(self)
    }
}

/// 64 bytes, 64-byte aligned: the unit of an [`AlignedBuf`].
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Chunk([u8; 64]);

// SAFETY: `Chunk` is a `repr(C)` array of bytes with no padding (64 bytes,
// align 64): every bit pattern is valid, and all-zero is a valid value.
unsafe impl bytemuck::Zeroable for Chunk {}
// SAFETY: as above; it holds no pointers or interior mutability, and is
// `Copy` and `'static`.
unsafe impl bytemuck::Pod for Chunk {}

/// A byte buffer whose start is 64-byte aligned: where an `Overwrite`
/// subscriber copies messages, so typed values can be read in place.
pub struct AlignedBuf {
    chunks: Box<[Chunk]>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes (rounded up to whole chunks inside).
    pub fn new(len: usize) -> AlignedBuf {
        AlignedBuf { chunks: vec![Chunk([0; 64]); len.div_ceil(64)].into_boxed_slice(), len }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf").field("len", &self.len).finish()
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.chunks)[..self.len]
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.chunks)[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_alignment_are_checked_never_assumed() {
        let mut b = AlignedBuf::new(100);
        assert_eq!(b.len(), 100);
        assert_eq!(b.as_ptr() as usize % 64, 0);
        b[..8].copy_from_slice(&7u64.to_le_bytes());
        assert_eq!(*view::<u64>(&b[..8]).expect("aligned, exact"), 7);
        assert_eq!(view::<u64>(&b[..7]), Err(ValueError::Size { expected: 8, found: 7 }));
        assert!(matches!(view::<u64>(&b[1..9]), Err(ValueError::Misaligned { align: 8, .. })));
        assert_eq!(read::<u64>(&b[..8]), Ok(7));
        assert_eq!(read::<u32>(&b[1..5]), Ok(0), "a copy needs no alignment");
        assert!(read::<u32>(&b[..3]).is_err());
    }
}
