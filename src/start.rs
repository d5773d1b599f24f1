//! Where a new subscriber, or a [`crate::Tail`], starts reading.

/// Where a new subscriber (or a [`crate::Tail`]) starts.
///
/// # Examples
/// ```
/// use shmq::{Options, Start, Topic};
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-start-{}", std::process::id()));
/// let opts = Options::new().dir(&dir).capacity(64 << 10).max_message(1024);
/// let topic = Topic::create("replayed", &opts)?;
/// let mut producer = topic.producer()?;
/// for m in [&b"a"[..], b"b", b"c"] {
///     producer.publish(m)?;
/// }
/// // A subscriber that joins now sees the messages the ring still holds.
/// let mut sub = topic.subscribe_with(Start::Seq(1), "replayer")?;
/// assert_eq!(&*sub.try_recv()?, b"b");
/// # drop((sub, producer, topic)); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the last committed message: only messages published from now on.
    Newest,
    /// At the oldest message the ring still holds.
    Oldest,
    /// At the first retained message whose sequence number is at least
    /// this; at the newest if none is yet. On an `Overwrite` topic whose
    /// oldest retained message is already past it, the first receive
    /// reports the missing ones as `Lagged`.
    Seq(u64),
    /// At the first retained message published at or after this time
    /// (`CLOCK_MONOTONIC` nanoseconds, as [`crate::Message::timestamp_ns`];
    /// [`crate::monotonic_ns`] is now); at the newest if none is yet.
    /// Needs a topic with timestamps.
    Time(u64),
}

impl Start {
    /// Whether a message with `seq` published at `ts` is where this start
    /// stops (always, for `Newest`/`Oldest`).
    pub(crate) fn reached_by(self, seq: u64, ts: u64) -> bool {
        match self {
            Start::Newest | Start::Oldest => true,
            Start::Seq(s) => seq >= s,
            Start::Time(t) => ts >= t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Start;

    #[test]
    fn reached_by_compares_the_right_field() {
        assert!(Start::Newest.reached_by(0, 0) && Start::Oldest.reached_by(0, 0));
        assert!(!Start::Seq(5).reached_by(4, u64::MAX) && Start::Seq(5).reached_by(5, 0));
        assert!(!Start::Time(100).reached_by(u64::MAX, 99) && Start::Time(100).reached_by(0, 100));
    }
}
