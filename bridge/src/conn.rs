//! Connecting to NATS and finding (or making) the stream: the checks that
//! turn bad input into a clear error before any message moves.
//!
//! The client reconnects by itself after the first connection, with the
//! back-off of [`reconnect_delay`], forever: a bridge outlives a server
//! restart. The first connection is not retried: a URL that does not
//! parse or a server that does not answer fails at once (after
//! `--connect-timeout`), with the reason.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{ConnectOptions, Event, ServerAddr};

use crate::status::Stats;
use crate::Fail;

/// Delay before reconnect attempt `n`: 100 ms doubling to 5 s (never a spin).
pub fn reconnect_delay(attempts: usize) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << attempts.min(6));
    Duration::from_millis(ms.min(5_000))
}

/// Parses `nats://h:p[,nats://h:p...]`.
pub fn parse_urls(urls: &str) -> Result<Vec<ServerAddr>, Fail> {
    let list: Vec<&str> = urls.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if list.is_empty() {
        return Err(Fail::usage("no server URL given"));
    }
    list.iter()
        .map(|u| {
            // ServerAddr accepts a bare host; insist on a scheme so that a
            // typo is an error and not a lookup of a strange host name.
            if !u.contains("://") {
                return Err(Fail::usage(format!("server URL {u:?} has no scheme (expected nats://HOST:PORT)")));
            }
            u.parse::<ServerAddr>().map_err(|e| Fail::usage(format!("server URL {u:?} does not parse: {e}")))
        })
        .collect()
}

/// Connects, counting reconnects and keeping the last error in `stats`.
/// `reconnected` is notified each time the connection comes back, so the
/// caller can resync at once instead of waiting for its requests to time out.
pub async fn connect(
    urls: &str,
    timeout: Duration,
    name: &str,
    stats: Arc<Stats>,
    reconnected: Arc<tokio::sync::Notify>,
) -> Result<async_nats::Client, Fail> {
    let addrs = parse_urls(urls)?;
    let ev_stats = stats.clone();
    let seen_first = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opts = ConnectOptions::new()
        .name(name)
        .connection_timeout(timeout)
        .request_timeout(Some(Duration::from_secs(5)))
        .max_reconnects(None)
        .reconnect_delay_callback(reconnect_delay)
        .event_callback(move |ev| {
            let stats = ev_stats.clone();
            let seen_first = seen_first.clone();
            let reconnected = reconnected.clone();
            async move {
                match ev {
                    Event::Connected => {
                        if seen_first.swap(true, Relaxed) {
                            stats.reconnects.fetch_add(1, Relaxed);
                            reconnected.notify_one();
                        }
                    }
                    Event::Disconnected => stats.error("disconnected from the server"),
                    other => stats.error(other),
                }
            }
        });
    match tokio::time::timeout(timeout + Duration::from_secs(1), opts.connect(addrs)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Fail::runtime(format!("cannot connect to {urls}: {e}"))),
        Err(_) => Err(Fail::runtime(format!("cannot connect to {urls}: no answer within {timeout:?}"))),
    }
}

/// The stream name used when `--stream` is not given.
pub fn default_stream(subject: &str) -> String {
    let s: String = subject.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("SHMQ_{s}")
}

/// Whether NATS subject `filter` (with `*` and `>`) takes `subject`.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A subject a bridge may publish on: tokens of visible characters, no wildcards.
pub fn check_subject(subject: &str) -> Result<(), Fail> {
    let bad = subject.is_empty()
        || subject.split('.').any(|t| t.is_empty() || t == "*" || t == ">")
        || subject.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        return Err(Fail::usage(format!(
            "subject {subject:?} is not a plain NATS subject (tokens separated by '.', no wildcards)"
        )));
    }
    Ok(())
}

/// What a created stream looks like (`shmq bridge out --create-stream`).
#[derive(Debug, Clone)]
pub struct NewStream {
    pub replicas: usize,
    pub max_age: Duration,
    pub max_bytes: u64,
    pub duplicate_window: Duration,
    pub memory: bool,
}

/// Finds the stream, or creates it when `create` says how; checks that it
/// takes `subject`. Retries while JetStream is not ready (a cluster
/// electing its leader), up to `patience`.
pub async fn stream(
    js: &jetstream::Context,
    name: &str,
    subject: &str,
    create: Option<&NewStream>,
    patience: Duration,
) -> Result<stream::Stream, Fail> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut attempt = 0;
    let mut s = loop {
        let r = match create {
            Some(n) => js
                .get_or_create_stream(stream::Config {
                    name: name.to_string(),
                    subjects: vec![subject.to_string()],
                    num_replicas: n.replicas,
                    max_age: n.max_age,
                    max_bytes: if n.max_bytes == 0 { -1 } else { n.max_bytes.min(i64::MAX as u64) as i64 },
                    duplicate_window: n.duplicate_window,
                    storage: if n.memory { stream::StorageType::Memory } else { stream::StorageType::File },
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string()),
            None => js.get_stream(name).await.map_err(|e| e.to_string()),
        };
        match r {
            Ok(s) => break s,
            Err(e) if e.contains("not found") && create.is_none() => {
                return Err(Fail::runtime(format!(
                    "stream {name:?} does not exist (create it, or pass --create-stream to `out`)"
                )))
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                attempt += 1;
                tracing_retry(&e, attempt);
                tokio::time::sleep(reconnect_delay(attempt)).await;
            }
            Err(e) => return Err(Fail::runtime(format!("stream {name:?}: {e}"))),
        }
    };
    let info = s.info().await.map_err(|e| Fail::runtime(format!("stream {name:?}: {e}")))?;
    let subjects = &info.config.subjects;
    if !subjects.iter().any(|f| subject_matches(f, subject)) {
        return Err(Fail::runtime(format!(
            "stream {name:?} does not take subject {subject:?} (its subjects: {})",
            if subjects.is_empty() { "none".to_string() } else { subjects.join(", ") }
        )));
    }
    Ok(s)
}

fn tracing_retry(e: &str, attempt: usize) {
    if attempt == 1 {
        eprintln!("shmq-bridge: JetStream not ready ({e}); retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_as_nats_does() {
        assert!(subject_matches("a.b", "a.b"));
        assert!(subject_matches("a.*", "a.b"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.>", "a"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(!subject_matches("a.b", "a.c"));
    }

    #[test]
    fn urls_need_a_scheme_and_must_parse() {
        assert!(parse_urls("nats://127.0.0.1:4222,nats://127.0.0.1:4223").is_ok());
        assert!(parse_urls("127.0.0.1:4222").is_err());
        assert!(parse_urls("nats://[::1").is_err());
        assert!(parse_urls(" , ").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(100));
        assert!(reconnect_delay(3) > reconnect_delay(2));
        assert_eq!(reconnect_delay(100), Duration::from_secs(5));
    }
}
