//! Inbound: a JetStream stream into a local topic.
//!
//! A durable pull consumer with explicit acknowledgement delivers the
//! stream's messages on `--subject` in stream order. Each is published into
//! the topic (waiting for room as any producer does), recorded as applied
//! ([`crate::record`]), and only then acknowledged. The consumer's ack
//! policy is `All`: acknowledging a message acknowledges every one before
//! it, which is exactly what applying in order means, so the bridge acks
//! once per [`ACK_EVERY`] messages, or as soon as it has nothing else to do
//! (after [`ACK_IDLE`]), instead of once per message: the server handles
//! one ack message for up to 64 deliveries.
//!
//! **No duplicates after a crash.** A message published into the topic
//! but not acknowledged is delivered again. The record says which stream
//! sequence was applied last, so a redelivery at or before it is
//! acknowledged without a publish. A bridge killed between its publish and
//! the record's store leaves the record one message behind; the topic's
//! published count, one more than the record says, shows it, and the next
//! delivery is that message, so it is skipped too. This needs the bridge to
//! be the topic's only producer (on a single-producer topic the library
//! enforces it while the bridge runs).
//!
//! **In order, always.** A message the server delivered but the bridge
//! never got (in the socket when the server died, or at a stream leader
//! that was killed) is redelivered only after its ack wait, behind newer
//! ones. The bridge applies nothing past such a hole: each message names
//! the position of the one stored before it (`Shmq-Prev`), which must be
//! the last one applied. A message that does not follow makes the bridge
//! delete its consumer and make it again at the record's next sequence,
//! which delivers in order. If the first message of the new consumer still
//! does not follow, the stream itself lacks messages (deleted, aged out):
//! the bridge counts the hole as lost (exactly, by `Shmq-Seq`, on a
//! single-producer origin) and goes on. A message at or before the last
//! applied position of its origin is a copy and is not applied again.
//!
//! **In order after a crash.** A new consumer delivers from its start in
//! order, but the messages an old one delivered and never saw acknowledged
//! come back only after their ack wait, behind newer ones. So at every
//! start (and after the consumer is lost) the bridge deletes the durable
//! consumer and makes it again at the record's next sequence: the record,
//! not the server's ack floor, is the truth; the ack floor is used only
//! when there is no record (and `--start` only when there is neither).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self, stream::Stream};
use futures_util::StreamExt;
use shmq::{OpenError, Options, Producer, Topic};

use crate::cli::{InArgs, StartAt};
use crate::conn;
use crate::record::{Applied, Record};
use crate::status::{state_dir, Stats};
use crate::wire::Meta;
use crate::{wait_or_stop, Fail, Stop};

/// Applied messages acknowledged at once (the last acks all of them).
const ACK_EVERY: u32 = 64;
/// How long an applied message waits for company before it is acknowledged alone.
const ACK_IDLE: Duration = Duration::from_millis(2);

pub async fn run(a: InArgs, dir: PathBuf, stats: Arc<Stats>, mut stop: Stop) -> Result<(), Fail> {
    let topic = open_topic(&a, &dir)?;
    let mut producer =
        topic.producer().map_err(|e| Fail::runtime(format!("topic {:?}: cannot publish: {e}", a.topic)))?;
    let topic_instance = topic.instance_id();
    let record_path = state_dir(&dir).join(format!("in-{}-{}.applied", a.topic, a.nats.durable));
    let record = Record::open(&record_path).map_err(Fail::runtime)?;
    let mut published = topic.info().published_messages;
    let (mut applied, mut skip) = match record.load() {
        Some(r) if r.instance == topic_instance => {
            let unrecorded = published.saturating_sub(r.published);
            if unrecorded > 1 {
                eprintln!(
                    "shmq-bridge: warning: {unrecorded} messages reached topic {:?} from other producers since the last record; \
                     assuming none was this bridge's (at most one duplicate)",
                    a.topic
                );
            }
            (Some(r.seq), u64::from(unrecorded == 1))
        }
        Some(r) => {
            eprintln!(
                "shmq-bridge: topic {:?} was created again since the last record; going on after stream sequence {}",
                a.topic, r.seq
            );
            (Some(r.seq), 0)
        }
        None => (None, 0),
    };

    let reconnected = Arc::new(tokio::sync::Notify::new());
    let name = format!("shmq-bridge in {}", a.topic);
    let client = conn::connect(&a.from, a.nats.connect_timeout, &name, stats.clone(), reconnected.clone()).await?;
    // Bytes one pull may bring: a server closes a client that has more than
    // 64 MiB pending (a "slow consumer"), which a window of large messages
    // would otherwise reach; still room for the largest message.
    let pull_bytes = (16usize << 20).max(2 * client.server_info().max_payload);
    let js = jetstream::new(client);
    let stream_name = a.nats.stream.clone().unwrap_or_else(|| conn::default_stream(&a.nats.subject));
    let stream = conn::stream(&js, &stream_name, &a.nats.subject, None, Duration::from_secs(30)).await?;
    let mut attempt = 0usize;
    // Origin instance, position and sequence of the last message applied in this run.
    let mut last_origin: Option<(u64, u64, u64)> = None;
    'consumer: loop {
        let consumer = match make_consumer(&stream, &a, applied).await {
            Ok(c) => c,
            Err(e) => {
                stats.error(&e);
                stats.retries.fetch_add(1, Relaxed);
                attempt += 1;
                if attempt == 1 {
                    // Waiting is right for a server that is away; say why, once.
                    eprintln!("shmq-bridge: {e}; retrying");
                }
                if wait_or_stop(conn::reconnect_delay(attempt), &mut stop).await {
                    return Ok(());
                }
                continue;
            }
        };
        // A heartbeat every second: a pull lost with a stream leader is
        // noticed in two, not thirty.
        let pull = consumer
            .stream()
            .max_messages_per_batch(a.nats.window as usize)
            .max_bytes_per_batch(pull_bytes)
            .heartbeat(Duration::from_secs(1));
        let mut messages = match pull.expires(Duration::from_secs(5)).messages().await {
            Ok(m) => m,
            Err(e) => {
                stats.error(format!("pull: {e}"));
                attempt += 1;
                if wait_or_stop(conn::reconnect_delay(attempt), &mut stop).await {
                    return Ok(());
                }
                continue;
            }
        };
        // The first message of a new consumer: a hole before it is in the stream itself.
        let mut fresh = true;
        // The last message applied and not yet acknowledged, and how many it stands for.
        let mut held: Option<(jetstream::Message, u32)> = None;
        loop {
            let next = tokio::select! {
                _ = stop.changed() => {
                    ack(held.take(), &stats).await;
                    return Ok(());
                }
                _ = tokio::time::sleep(ACK_IDLE), if held.is_some() => {
                    ack(held.take(), &stats).await;
                    continue;
                }
                // Deliveries in the old connection are lost: start again in order.
                _ = reconnected.notified() => continue 'consumer,
                m = messages.next() => m,
            };
            let m = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    // A missed heartbeat, a server gone: deliveries may have
                    // been lost on the way, so start again in order.
                    stats.error(format!("pull: {e}"));
                    stats.retries.fetch_add(1, Relaxed);
                    attempt += 1;
                    if wait_or_stop(conn::reconnect_delay(attempt), &mut stop).await {
                        return Ok(());
                    }
                    continue 'consumer;
                }
                None => continue 'consumer,
            };
            attempt = 0;
            let seq = match m.info() {
                Ok(i) => i.stream_sequence,
                Err(e) => return Err(Fail::runtime(format!("a delivered message has no stream sequence: {e}"))),
            };
            stats.read.fetch_add(1, Relaxed);
            if applied.is_some_and(|a| seq <= a) || skip > 0 {
                // Applied already (a redelivery, or the publish the record missed).
                if applied.is_none_or(|a| seq > a) {
                    skip -= 1;
                    applied = Some(seq);
                    record.store(Applied { seq, published, instance: topic_instance });
                }
                stats.duplicates.fetch_add(1, Relaxed);
                hold(&mut held, m, &stats).await;
                continue;
            }
            let meta = Meta::parse(m.headers.as_ref()).unwrap_or_else(|e| {
                stats.error(format!("stream sequence {seq}: {e}; published with type 0"));
                Meta::default()
            });
            if meta.eos {
                // The origin's end of stream: close the local one (a later
                // message reopens it). It is not a message: the chain goes on
                // from the one before it.
                stats.lost.fetch_add(meta.lagged + meta.dropped, Relaxed);
                producer.close();
                applied = Some(seq);
                record.store(Applied { seq, published, instance: topic_instance });
                hold(&mut held, m, &stats).await;
                continue;
            }
            if let Some((instance, last_pos, last_seq)) = last_origin.filter(|o| o.0 == meta.instance && o.0 != 0) {
                if meta.position <= last_pos {
                    // A copy of a message applied already: apply once.
                    stats.duplicates.fetch_add(1, Relaxed);
                    applied = Some(seq);
                    record.store(Applied { seq, published, instance: topic_instance });
                    hold(&mut held, m, &stats).await;
                    continue;
                }
                if meta.prev.is_some_and(|p| p != last_pos) {
                    if !fresh {
                        stats.error(format!(
                            "origin {instance:016x}: the message after position {last_pos} is missing; consuming again from stream sequence {}",
                            applied.map_or(1, |a| a + 1)
                        ));
                        stats.retries.fetch_add(1, Relaxed);
                        continue 'consumer;
                    }
                    let missing = meta.seq.saturating_sub(last_seq + 1 + meta.lagged + meta.dropped).max(1);
                    stats.lost.fetch_add(missing, Relaxed);
                    stats.error(format!("the stream lacks the messages of origin {instance:016x} after position {last_pos}: counted as lost"));
                }
            }
            fresh = false;
            stats.lost.fetch_add(meta.lagged + meta.dropped, Relaxed);
            stats.in_flight.store(1, Relaxed);
            let r = tokio::select! {
                _ = stop.changed() => {
                    ack(held.take(), &stats).await; // what was applied before this one
                    return Ok(());
                }
                r = publish(&mut producer, &m.payload, meta.msg_type) => r,
            };
            r.map_err(|e| {
                Fail::runtime(format!(
                    "stream sequence {seq} ({} bytes) cannot be published into topic {:?}: {e}; it stays unacknowledged in the stream",
                    m.payload.len(),
                    a.topic
                ))
            })?;
            published += 1;
            applied = Some(seq);
            if meta.instance != 0 {
                // A message from no shmq topic (another writer on the
                // stream) is applied, but does not break the origin's
                // chain: a hole behind it is still seen.
                last_origin = Some((meta.instance, meta.position, meta.seq));
            }
            record.store(Applied { seq, published, instance: topic_instance });
            stats.in_flight.store(0, Relaxed);
            hold(&mut held, m, &stats).await;
        }
    }
}

fn open_topic(a: &InArgs, dir: &std::path::Path) -> Result<Topic, Fail> {
    let opts = Options::new().dir(dir);
    if !a.create {
        return Topic::open(&a.topic, &opts).map_err(|e| Fail::open(&a.topic, e));
    }
    let max_message = u32::try_from(a.max_message).map_err(|_| Fail::usage("--max-message is too large"))?;
    let opts = opts.capacity(a.capacity).max_message(max_message);
    Topic::open_or_create(&a.topic, &opts).map_err(|e| match e {
        OpenError::NotFound { .. } => Fail::open(&a.topic, e),
        e => Fail::runtime(format!("topic {:?}: {e}", a.topic)),
    })
}

/// Publishes into the topic, waiting for room without blocking the runtime.
async fn publish(p: &mut Producer, data: &[u8], msg_type: u32) -> Result<(), shmq::PublishError> {
    let mut g = p.reserve_async(data.len()).await?;
    g[..data.len()].copy_from_slice(data);
    g.set_type(msg_type);
    g.commit(data.len())
}

/// Holds `m` (applied) for acknowledgement, acking when [`ACK_EVERY`] are held.
async fn hold(held: &mut Option<(jetstream::Message, u32)>, m: jetstream::Message, stats: &Stats) {
    let n = held.take().map_or(0, |h| h.1) + 1;
    *held = Some((m, n));
    if n >= ACK_EVERY {
        ack(held.take(), stats).await;
    }
}

/// Acknowledges the held message, and with it every one before it.
async fn ack(held: Option<(jetstream::Message, u32)>, stats: &Stats) {
    let Some((m, n)) = held else { return };
    // A lost ack only means redeliveries, which the record recognises.
    match m.ack().await {
        Ok(()) => {
            stats.acknowledged.fetch_add(u64::from(n), Relaxed);
        }
        Err(e) => stats.error(format!("ack: {e}")),
    }
}

/// Deletes the durable consumer and makes it again where the bridge goes on.
async fn make_consumer(
    stream: &Stream,
    a: &InArgs,
    applied: Option<u64>,
) -> Result<jetstream::consumer::Consumer<pull::Config>, String> {
    let name = &a.nats.durable;
    // Only "not found" means there is none: any other error (a cluster
    // electing its leader answers 503) is retried, or the create below
    // would meet the old consumer and be refused.
    let existing = match stream.consumer_info(name).await {
        Ok(info) => Some(info),
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => None,
        Err(e) => return Err(format!("looking up consumer {name:?}: {e}")),
    };
    let deliver_policy = match (applied, &existing) {
        (Some(seq), _) => DeliverPolicy::ByStartSequence { start_sequence: seq + 1 },
        (None, Some(info)) => DeliverPolicy::ByStartSequence { start_sequence: info.ack_floor.stream_sequence + 1 },
        (None, None) => match a.start {
            StartAt::New => DeliverPolicy::New,
            StartAt::All => DeliverPolicy::All,
            StartAt::Seq(s) => DeliverPolicy::ByStartSequence { start_sequence: s },
            StartAt::Ago(d) => DeliverPolicy::ByStartTime { start_time: time::OffsetDateTime::now_utc() - d },
        },
    };
    let policy = format!("{deliver_policy:?}");
    if existing.is_some() {
        stream.delete_consumer(name).await.map_err(|e| format!("deleting consumer {name:?}: {e}"))?;
    }
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: a.nats.subject.clone(),
            ack_policy: AckPolicy::All,
            deliver_policy,
            max_ack_pending: i64::from(a.nats.window),
            ack_wait: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("creating consumer {name:?} ({policy}): {e}"))
}
