//! Outbound: a local topic into a JetStream stream.
//!
//! Two halves joined by channels:
//!
//! - **The reader** (a thread: the topic's receives block) owns a durable
//!   subscriber. On a `Block` topic it reads *ahead*
//!   ([`shmq::Subscriber::recv_ahead_raw`]): each message is copied out and
//!   sent up, but stays in the ring; it is released
//!   ([`shmq::Subscriber::release_through`]) only when the publisher sends
//!   its [`Ack`] back. It stops reading once `--window` messages are
//!   unconfirmed, so a stalled server holds a `Block` producer back as any
//!   slow subscriber does (`--on-down drop` instead releases and counts).
//! - **The publisher** (async) publishes each message with its
//!   `Nats-Msg-Id` ([`wire`]) and keeps up to a window in flight, awaiting
//!   acknowledgements in order; an acknowledged message is confirmed to the
//!   reader only after every message before it was.
//!
//! **Nothing stored twice, nothing out of order.** Each publish also says
//! which stream sequence must be the stream's last
//! (`Nats-Expected-Last-Sequence`: the one the message before it got, or
//! will get; the bridge is the stream's only writer, so the sequences of a
//! window in flight are known in advance). A message the server lost (a
//! leader killed with it in flight) therefore makes every later one fail
//! instead of being stored past the gap. On any error the publisher waits
//! (back-off), then *resyncs* ([`crate::resync`]): it reads the stream's last sequence and last
//! message, drops from its window everything at or before that message's
//! position (stored already: confirmed), and publishes the rest again in
//! order. The same resync at start skips what an earlier run stored but did
//! not get to release, so a retry long after JetStream's de-duplication
//! window still stores nothing twice. This needs the stream to have one
//! writer: this bridge.
//!
//! The chain is on sequences, not on message ids
//! (`Nats-Expected-Last-Msg-Id`), although ids would not need the window's
//! sequences predicted: a replicated stream's leader checks an expected
//! sequence before it proposes the message, so a refusal is only an answer,
//! but an expected id is checked by every replica as it applies the entry,
//! and nats-server 2.15.1 takes a refusal there for a write error and stops
//! the stream on every replica until the servers restart (measured:
//! `docs/BRIDGE.md`, "Replicated streams").

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, stream::Stream};
use bytes::Bytes;
use futures_util::future::OptionFuture;
use shmq::{Ack, Policy, RecvError, Start, Subscriber, Topic, Wait};
use tokio::sync::mpsc;

use crate::cli::{OnDown, OutArgs};
use crate::conn::{self, NewStream};
use crate::resync::{resync_patiently, stored_positions, WALK_SLACK};
use crate::status::Stats;
use crate::wire::{self, Meta};
use crate::{wait_or_stop, Fail, Stop};

/// A message copied out of the topic, on its way to the stream.
#[derive(Debug)]
struct Item {
    data: Bytes,
    meta: Meta,
    /// Releases it in the topic (None on `Overwrite`: released already).
    ack: Option<Ack>,
}

#[derive(Debug)]
enum Up {
    /// Messages read in one go (up to [`BATCH`]): one wake of the runtime for all.
    Batch(Vec<Item>),
    Fatal(String),
}

/// Most messages the reader sends up at once.
const BATCH: usize = 64;

type AckFut = Pin<Box<dyn Future<Output = Result<PublishAck, jetstream::context::PublishError>> + Send>>;

pub async fn run(a: OutArgs, dir: PathBuf, stats: Arc<Stats>, mut stop: Stop) -> Result<(), Fail> {
    let opts = shmq::Options::new().dir(&dir);
    let topic = Topic::open(&a.topic, &opts).map_err(|e| Fail::open(&a.topic, e))?;
    let instance = topic.instance_id();
    let name = format!("shmq-bridge out {}", a.topic);
    let reconnected = Arc::new(tokio::sync::Notify::new());
    let client = conn::connect(&a.to, a.nats.connect_timeout, &name, stats.clone(), reconnected.clone()).await?;
    let window = a.nats.window as usize;
    let js = jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        // Acks of futures dropped by a recovery hold their permits until
        // `ack_timeout`; room for several windows keeps the republish from
        // waiting on them.
        .ack_timeout(Duration::from_secs(5))
        .max_ack_inflight(window * 8 + 64)
        .backpressure_on_inflight(true)
        .build(client.clone());
    let stream_name = a.nats.stream.clone().unwrap_or_else(|| conn::default_stream(&a.nats.subject));
    let create = a.create_stream.then(|| NewStream {
        replicas: a.replicas as usize,
        max_age: a.max_age,
        max_bytes: a.max_bytes,
        duplicate_window: a.duplicate_window,
        memory: a.storage == crate::cli::StorageArg::Memory,
    });
    let mut stream = conn::stream(&js, &stream_name, &a.nats.subject, create.as_ref(), Duration::from_secs(30)).await?;
    let max_payload = client.server_info().max_payload;
    if topic.max_message() + 512 > max_payload {
        eprintln!(
            "shmq-bridge: warning: the topic takes messages up to {} bytes but the server's max_payload is {max_payload}: a larger message stops the bridge",
            topic.max_message()
        );
    }

    // Where the stream's copy of this topic ends.
    let sync = match resync_patiently(&mut stream, instance, &stats, &mut stop).await {
        Some(s) => s,
        None => return Ok(()), // stopped while the server was away
    };
    let sub = subscribe(&topic, &a.nats.durable, sync.seq)?;

    let (up_tx, mut up_rx) = mpsc::channel::<Up>(window.max(16));
    let (ack_tx, ack_rx) = std_mpsc::channel::<Ack>();
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reader = Reader {
        sub,
        tx: up_tx,
        acks: ack_rx,
        window: window as u64,
        on_down: a.on_down,
        drop_after: a.drop_after,
        stop: reader_stop.clone(),
        stats: stats.clone(),
        instance,
    };
    let handle = std::thread::Builder::new()
        .name("topic-reader".into())
        .spawn(move || reader.run())
        .map_err(|e| Fail::runtime(format!("cannot start the reader thread: {e}")))?;

    let mut p = Publisher {
        js,
        stream,
        subject: a.nats.subject.clone(),
        instance,
        last_eos: sync.eos,
        expect: sync.last_seq,
        prev: sync.position,
        skip_through: sync.position,
        q: VecDeque::new(),
        acks: ack_tx,
        stats: stats.clone(),
    };
    let r = p.pump(&mut up_rx, window, &mut stop, &reconnected).await;
    // Stop the reader: it applies the confirmations sent so far, then exits.
    drop(up_rx);
    reader_stop.store(true, Relaxed);
    drop(p);
    let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    r
}

/// The durable subscriber. On `Overwrite` it starts after the last message
/// the stream holds (released messages are gone from its cursor, so the
/// stream, not the cursor, says where to go on).
fn subscribe(topic: &Topic, durable: &str, stored_seq: Option<u64>) -> Result<Subscriber, Fail> {
    let fail = |e: shmq::SubscribeError| {
        Fail::runtime(format!("topic {:?}: durable subscriber {durable:?}: {e}", topic.name()))
    };
    if topic.policy() == Policy::Overwrite {
        if let Some(seq) = stored_seq {
            topic.unsubscribe_durable(durable).map_err(fail)?;
            return topic.subscribe_durable_from(durable, Start::Seq(seq + 1)).map_err(fail);
        }
    }
    topic.subscribe_durable_from(durable, Start::Oldest).map_err(fail)
}

/// The async half: publishes, keeps the window, confirms in order.
struct Publisher {
    js: jetstream::Context,
    stream: Stream,
    subject: String,
    instance: u64,
    /// The stream sequence the next publish expects to be the stream's last.
    expect: u64,
    /// Position of the last message published from this topic instance
    /// (`Shmq-Prev` of the next), if known.
    prev: Option<u64>,
    /// The stream ends with this topic's end of stream at this position.
    last_eos: Option<u64>,
    /// Messages at or before this position are in the stream already.
    skip_through: Option<u64>,
    /// Published, awaiting acknowledgement, oldest first; each has its
    /// ack future until it is taken to be awaited.
    q: VecDeque<(Item, Option<AckFut>)>,
    acks: std_mpsc::Sender<Ack>,
    stats: Arc<Stats>,
}

impl Publisher {
    /// The loop: take messages while the window has room, await the oldest
    /// acknowledgement, recover from errors; on a stop, wait up to 5 s for
    /// what is in flight, confirm what was acknowledged, and return.
    async fn pump(
        &mut self,
        rx: &mut mpsc::Receiver<Up>,
        window: usize,
        stop: &mut Stop,
        reconnected: &tokio::sync::Notify,
    ) -> Result<(), Fail> {
        let mut cur: Option<AckFut> = None;
        let mut backoff = 0usize;
        let mut draining: Option<tokio::time::Instant> = None;
        let mut reader_gone = false;
        // A fatal error waits, like a stop, for what is in flight, so that
        // what the stream took is released before the bridge exits.
        let mut fatal: Option<Fail> = None;
        loop {
            if cur.is_none() {
                cur = self.q.front_mut().and_then(|f| f.1.take());
            }
            if (draining.is_some() || reader_gone) && self.q.is_empty() {
                return fatal.map_or(Ok(()), Err);
            }
            let room = draining.is_none() && !reader_gone && self.q.len() < window;
            let deadline = draining.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = stop.changed(), if draining.is_none() => {
                    draining = Some(tokio::time::Instant::now() + Duration::from_secs(5));
                }
                _ = tokio::time::sleep_until(deadline), if draining.is_some() => return fatal.map_or(Ok(()), Err),
                // Acknowledgements due on the old connection never come:
                // resync now rather than after the publish timeout.
                _ = reconnected.notified(), if draining.is_none() && !self.q.is_empty() => {
                    cur = None;
                    if !self.recover("the connection was re-established".to_string(), 0, false, stop).await? {
                        return fatal.map_or(Ok(()), Err);
                    }
                }
                Some(r) = OptionFuture::from(cur.as_mut()), if cur.is_some() => {
                    cur = None;
                    match r {
                        Ok(ack) => {
                            self.confirm_front(ack.duplicate, false);
                            backoff = 0;
                        }
                        Err(_) if draining.is_some() => return fatal.map_or(Ok(()), Err),
                        Err(e) => {
                            backoff += 1;
                            let refused = e.kind() == PublishErrorKind::WrongLastSequence;
                            if !self.recover(format!("publish: {e}"), backoff, refused, stop).await? {
                                return fatal.map_or(Ok(()), Err);
                            }
                        }
                    }
                }
                m = rx.recv(), if room => match m {
                    Some(Up::Batch(items)) => {
                        for item in items {
                            if let Err(f) = self.push(item).await {
                                fatal = Some(f);
                                draining = Some(tokio::time::Instant::now() + Duration::from_secs(5));
                                break;
                            }
                        }
                    }
                    Some(Up::Fatal(e)) => {
                        fatal = Some(Fail::runtime(e));
                        draining = Some(tokio::time::Instant::now() + Duration::from_secs(5));
                    }
                    None => reader_gone = true,
                },
            }
            self.stats.in_flight.store(self.q.len() as u64, Relaxed);
        }
    }

    /// Publishes `item` (or confirms it at once if the stream holds it).
    async fn push(&mut self, item: Item) -> Result<(), Fail> {
        if item.meta.eos && self.last_eos == Some(item.meta.position) {
            // The stream ends with this very end of stream already.
            self.stats.resynced.fetch_add(1, Relaxed);
            return Ok(());
        }
        if self.q.is_empty() && self.skip_through.is_some_and(|p| item.meta.position <= p) {
            self.q.push_back((item, None));
            self.confirm_front(false, true);
            return Ok(());
        }
        self.skip_through = None;
        let fut = self.publish(&item).await?;
        self.q.push_back((item, Some(fut)));
        Ok(())
    }

    async fn publish(&mut self, item: &Item) -> Result<AckFut, Fail> {
        let id = if item.meta.eos {
            wire::eos_id(self.instance, item.meta.position)
        } else {
            wire::msg_id(self.instance, item.meta.position)
        };
        let meta = Meta { prev: self.prev, ..item.meta };
        let b = PublishMessage::build()
            .payload(item.data.clone())
            .headers(meta.headers())
            .message_id(&id)
            .expected_last_sequence(self.expect);
        self.expect += 1;
        if !item.meta.eos {
            self.prev = Some(item.meta.position);
        }
        match self.js.send_publish(self.subject.clone(), b).await {
            Ok(f) => Ok(Box::pin(f.into_future())),
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => Err(Fail::runtime(format!(
                "the message at position {} is {} bytes, more than the server takes ({e}): raise the server's max_payload or lower the topic's max message; it stays in the topic, unreleased",
                item.meta.position,
                item.data.len()
            ))),
            Err(e) => Ok(Box::pin(async move { Err(e) })),
        }
    }

    /// The oldest message is in the stream: count it, release it in the topic.
    fn confirm_front(&mut self, duplicate: bool, resynced: bool) {
        let Some((item, _)) = self.q.pop_front() else { return };
        if duplicate {
            self.stats.duplicates.fetch_add(1, Relaxed);
        }
        if resynced {
            self.stats.resynced.fetch_add(1, Relaxed);
        }
        self.stats.acknowledged.fetch_add(1, Relaxed);
        if let Some(a) = item.ack {
            let _ = self.acks.send(a);
        }
    }

    /// The front is not in the stream, yet the stream holds a later
    /// message of this topic (at `through`): another writer moved the
    /// stream's sequence while the window was in flight, so the messages
    /// after the front met expectations meant for it. The front cannot go
    /// in before them any more: it is released unsent and counted as
    /// dropped, and the inbound bridge, which sees the hole by `Shmq-Prev`,
    /// counts it as lost. Only a second writer on the stream (which the
    /// bridge does not support) gets here.
    fn drop_front(&mut self, through: u64) {
        let Some((item, _)) = self.q.pop_front() else { return };
        self.stats.dropped.fetch_add(1, Relaxed);
        self.stats.error(format!(
            "stream {:?} has another writer: the message at position {} was refused and a later one (position {through}) stored; dropped, and counted as lost on the far side",
            self.stream.cached_info().config.name,
            item.meta.position
        ));
        if let Some(a) = item.ack {
            let _ = self.acks.send(a);
        }
    }

    /// After a failed acknowledgement: back off, resync with the stream,
    /// confirm what it holds, publish the rest again in order. `refused`:
    /// the stream refused the front's expected sequence (so the front is
    /// not in the stream, whatever a later message says). `false` if
    /// stopped meanwhile.
    async fn recover(&mut self, why: String, backoff: usize, refused: bool, stop: &mut Stop) -> Result<bool, Fail> {
        self.stats.error(why);
        self.stats.retries.fetch_add(1, Relaxed);
        for f in self.q.iter_mut() {
            f.1 = None;
        }
        if backoff > 0 && wait_or_stop(conn::reconnect_delay(backoff), stop).await {
            return Ok(false);
        }
        let mut attempt = 0;
        let (sync, stored) = loop {
            let Some(sync) = resync_patiently(&mut self.stream, self.instance, &self.stats, stop).await else {
                return Ok(false);
            };
            // A refused front that the stream seems to hold (a later
            // message is there) is either an older copy of it stored after
            // all, or a hole left by another writer: look.
            let front = self.q.front().map(|f| f.0.meta.position);
            let (Some(front), Some(through), true) = (front, sync.position, refused) else { break (sync, None) };
            if front > through {
                break (sync, None);
            }
            let steps = self.q.len() as u64 + WALK_SLACK;
            match stored_positions(&self.stream, self.instance, sync.last_seq, front, steps).await {
                Ok(set) => break (sync, set),
                Err(e) => {
                    self.stats.error(&e);
                    attempt += 1;
                    if wait_or_stop(conn::reconnect_delay(attempt), stop).await {
                        return Ok(false);
                    }
                }
            }
        };
        if let Some(through) = sync.position {
            while let Some((pos, eos)) = self.q.front().map(|f| (f.0.meta.position, f.0.meta.eos)) {
                if pos > through {
                    break;
                }
                // An end of stream shares its position with the message
                // after it, so the walk does not list it: it goes with
                // what the stream holds after it, as before.
                match &stored {
                    Some(set) if !eos && !set.contains(&pos) => self.drop_front(through),
                    _ => self.confirm_front(false, true),
                }
            }
        }
        if sync.eos.is_some() && self.q.front().is_some_and(|f| f.0.meta.eos && Some(f.0.meta.position) == sync.eos) {
            self.confirm_front(false, true);
        }
        self.last_eos = sync.eos;
        self.expect = sync.last_seq;
        self.prev = sync.position;
        for i in 0..self.q.len() {
            let fut = self.publish(&self.q[i].0.clone_item()).await?;
            self.q[i].1 = Some(fut);
        }
        Ok(true)
    }
}

impl Item {
    fn clone_item(&self) -> Item {
        Item { data: self.data.clone(), meta: self.meta, ack: None }
    }
}

/// The topic half, on its own thread.
struct Reader {
    sub: Subscriber,
    tx: mpsc::Sender<Up>,
    acks: std_mpsc::Receiver<Ack>,
    window: u64,
    on_down: OnDown,
    drop_after: Duration,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    instance: u64,
}

impl Reader {
    fn run(mut self) {
        let ahead = self.sub.can_read_ahead();
        let mut outstanding = 0u64; // sent up, not yet confirmed
        let mut full_since: Option<Instant> = None;
        let (mut dropped, mut lagged) = (0u64, 0u64);
        let mut batch = Vec::with_capacity(BATCH);
        // Where the last message read ends, its sequence, and the end of
        // stream last carried (by this run).
        let (mut read_next, mut read_seq, mut eos_sent) = (self.sub.position(), 0u64, None);
        loop {
            self.apply_acks(&mut outstanding, None);
            if self.stop.load(Relaxed) {
                break;
            }
            if ahead && outstanding >= self.window {
                if !self.flush(&mut batch) {
                    break;
                }
                let since = *full_since.get_or_insert_with(Instant::now);
                if self.on_down == OnDown::Block || since.elapsed() < self.drop_after {
                    self.apply_acks(&mut outstanding, Some(Duration::from_millis(100)));
                    continue;
                }
                // --on-down drop, the window full for drop_after: release
                // the next message unsent and count it.
                match self.sub.recv_ahead_raw(Wait::For(Duration::from_millis(10))) {
                    Ok((_, ack)) => {
                        self.sub.release_through(ack);
                        dropped += 1;
                        self.stats.dropped.fetch_add(1, Relaxed);
                    }
                    Err(RecvError::Timeout | RecvError::Empty | RecvError::Closed) => {}
                    Err(e) => return self.fatal(e),
                }
                continue;
            }
            full_since = None;
            // Short waits while confirmations are due, so a release is never late.
            let wait = if !batch.is_empty() {
                Wait::Now // more while they come, then send the batch
            } else {
                Wait::For(Duration::from_millis(if outstanding > 0 { 1 } else { 100 }))
            };
            let r = if ahead {
                self.sub.recv_ahead_raw(wait).map(|(m, a)| (m, Some(a)))
            } else {
                self.sub.recv_raw(wait).map(|m| (m, None))
            };
            match r {
                Ok((m, ack)) => {
                    // The payload stays where it is (in the ring unreleased, or
                    // in the subscriber's buffer on Overwrite) until the next
                    // receive or release; it is copied before either.
                    // SAFETY: `m.data` points at `m.len` bytes kept as said above.
                    let payload = unsafe { std::slice::from_raw_parts(m.data, m.len) };
                    let data = Bytes::copy_from_slice(payload);
                    if !ahead {
                        self.sub.release_raw();
                    }
                    read_next = ack.map_or_else(|| self.sub.position(), |a| a.position());
                    read_seq = m.seq;
                    self.stats.lost.fetch_add(m.lost, Relaxed);
                    self.stats.read.fetch_add(1, Relaxed);
                    let meta = Meta {
                        instance: self.instance,
                        position: m.position,
                        seq: m.seq,
                        msg_type: m.msg_type,
                        timestamp_ns: m.timestamp_ns,
                        lagged: m.lost + std::mem::take(&mut lagged),
                        dropped: std::mem::take(&mut dropped),
                        prev: None, // set by the publisher, which knows what it stored
                        eos: false,
                    };
                    if ahead {
                        outstanding += 1;
                    }
                    batch.push(Item { data, meta, ack });
                    if batch.len() >= BATCH && !self.flush(&mut batch) {
                        break;
                    }
                }
                Err(RecvError::Timeout | RecvError::Empty) => {
                    if !self.flush(&mut batch) {
                        break;
                    }
                }
                // End of stream: nothing comes until a producer reopens it; look again at leisure.
                // End of stream: carry it once per end (a publish after a
                // close reopens the stream; its next close is another end),
                // then look again at leisure.
                Err(RecvError::Closed) => {
                    if eos_sent != Some(read_next) {
                        eos_sent = Some(read_next);
                        let meta = Meta {
                            instance: self.instance,
                            position: read_next,
                            seq: read_seq,
                            lagged: std::mem::take(&mut lagged),
                            dropped: std::mem::take(&mut dropped),
                            eos: true,
                            ..Meta::default()
                        };
                        batch.push(Item { data: Bytes::new(), meta, ack: None });
                    }
                    if !self.flush(&mut batch) {
                        break;
                    }
                    self.apply_acks(&mut outstanding, Some(Duration::from_millis(100)))
                }
                Err(RecvError::Lagged(n)) => {
                    lagged += n;
                    self.stats.lost.fetch_add(n, Relaxed);
                }
                Err(e) => {
                    self.flush(&mut batch);
                    return self.fatal(e);
                }
            }
        }
        self.apply_acks(&mut outstanding, None);
    }

    /// Sends the batch up; false if the publisher is gone.
    fn flush(&mut self, batch: &mut Vec<Item>) -> bool {
        batch.is_empty()
            || self.tx.blocking_send(Up::Batch(std::mem::replace(batch, Vec::with_capacity(BATCH)))).is_ok()
    }

    /// Releases through the newest confirmation received (waiting up to
    /// `wait` for one if given).
    fn apply_acks(&mut self, outstanding: &mut u64, wait: Option<Duration>) {
        let mut last = None;
        if let Some(w) = wait {
            if let Ok(a) = self.acks.recv_timeout(w) {
                *outstanding = outstanding.saturating_sub(1);
                last = Some(a);
            }
        }
        while let Ok(a) = self.acks.try_recv() {
            *outstanding = outstanding.saturating_sub(1);
            last = Some(a);
        }
        if let Some(a) = last {
            // false: released already (by a drop past it); nothing to do.
            self.sub.release_through(a);
        }
    }

    fn fatal(mut self, e: RecvError) {
        self.apply_acks(&mut 0, None);
        let _ = self.tx.blocking_send(Up::Fatal(format!("reading topic {:?}: {e}", self.sub.slot())));
    }
}
