//! The parent side of each measurement: the pinger of a latency round
//! trip, or the producer of a throughput or fan-out run.

use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use shmq::{Options, Policy, RecvError, Topic};

use super::peers::*;
use super::{Kind, Mode, Plan, BATCH};

/// One latency measurement: one-way p50, p90, p99, p99.9, max in ns.
pub(super) fn latency(plan: &Plan, kind: Kind, size: usize, dir: &Path) -> Result<Option<[u64; 5]>, String> {
    let rounds = plan.rounds(size);
    let e = |x: std::io::Error| x.to_string();
    let mut rtt = Vec::with_capacity(rounds as usize);
    let mut buf = vec![0u8; size.max(8)];
    match kind {
        Kind::Frames => {
            let shm = Shm::create(&dir.join("shm"), Frames::shm_len(size)).map_err(e)?;
            let peer = Peer::start(plan.cpus.1, kind, Mode::Lat, size, rounds, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let (ping, pong) = (Frames::new(&shm, 0, size), Frames::new(&shm, 1, size));
            let mut back = vec![0u8; size];
            for k in 0..rounds {
                fill(k, &mut buf[..size]);
                let t = Instant::now();
                ping.send(k, &buf[..size]);
                pong.recv(k, &mut back);
                rtt.push(t.elapsed().as_nanos() as u64);
                if !verify(k, &back) {
                    return Err(format!("frames: corrupt pong {k}"));
                }
            }
            peer.finish()?;
        }
        Kind::Raw | Kind::Futex => {
            let shm = Shm::create(&dir.join("shm"), 4096).map_err(e)?;
            let peer = Peer::start(plan.cpus.1, kind, Mode::Lat, size, rounds, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            if kind == Kind::Raw {
                let (a, b) = (shm.u64(0), shm.u64(128));
                for i in 1..=rounds {
                    let t = Instant::now();
                    a.store(i, Ordering::Release);
                    while b.load(Ordering::Acquire) != i {
                        std::hint::spin_loop();
                    }
                    rtt.push(t.elapsed().as_nanos() as u64);
                }
            } else {
                let (a, b) = (shm.u32(0), shm.u32(128));
                for i in 1..=rounds as u32 {
                    let t = Instant::now();
                    a.store(i, Ordering::Release);
                    shmq::__private::sys::futex_wake(a);
                    loop {
                        let v = b.load(Ordering::Acquire);
                        if v == i {
                            break;
                        }
                        futex_wait(b, v);
                    }
                    rtt.push(t.elapsed().as_nanos() as u64);
                }
            }
            peer.finish()?;
        }
        Kind::Shmq | Kind::ShmqTs | Kind::ShmqBlock => {
            let opts = Options::new()
                .dir(dir)
                .capacity((1u64 << 20).max(4 * size as u64).next_power_of_two())
                .max_message((64 << 10).max(size as u32))
                .timestamps(kind == Kind::ShmqTs);
            let ping = Topic::create("ping", &opts).map_err(|x| x.to_string())?;
            let pong = Topic::create("pong", &opts).map_err(|x| x.to_string())?;
            let mut sub = pong.subscribe().map_err(|x| x.to_string())?;
            let peer = Peer::start(plan.cpus.1, kind, Mode::Lat, size, rounds, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let mut p = ping.producer().map_err(|x| x.to_string())?;
            let block = kind == Kind::ShmqBlock;
            for i in 0..rounds {
                fill(i, &mut buf[..size]);
                let t = Instant::now();
                p.publish(&buf[..size]).map_err(|x| x.to_string())?;
                loop {
                    let r = if block { sub.recv() } else { sub.try_recv() };
                    match r {
                        Ok(m) => {
                            if !verify(i, &m) {
                                return Err(format!("{}: corrupt pong {i}", kind.name()));
                            }
                            break;
                        }
                        Err(RecvError::Empty) => std::hint::spin_loop(),
                        Err(x) => return Err(x.to_string()),
                    }
                }
                rtt.push(t.elapsed().as_nanos() as u64);
            }
            peer.finish()?;
            drop((sub, p, ping, pong));
            let _ = std::fs::remove_file(dir.join("ping"));
            let _ = std::fs::remove_file(dir.join("pong"));
        }
        Kind::Unix | Kind::Pipe => {
            let ((my_rd, their_wr), (their_rd, my_wr)) = if kind == Kind::Unix {
                let (a, b) = socketpair().map_err(e)?;
                ((a, b), (b, a))
            } else {
                (pipe().map_err(e)?, pipe().map_err(e)?)
            };
            let peer = Peer::start(plan.cpus.1, kind, Mode::Lat, size, rounds, dir, (their_rd, their_wr))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            if kind == Kind::Pipe {
                close(their_rd);
                close(their_wr);
            } else {
                close(their_wr); // == my_wr's peer end; the pair is (my_rd=a, b) with the child on b
            }
            let (mut rd, mut wr) = if kind == Kind::Unix {
                let f = stream(my_rd);
                let g = f.try_clone().map_err(e)?;
                (f, g)
            } else {
                (stream(my_rd), stream(my_wr))
            };
            for i in 0..rounds {
                fill(i, &mut buf[..size]);
                let t = Instant::now();
                wr.write_all(&buf[..size]).map_err(e)?;
                rd.read_exact(&mut buf[..size]).map_err(e)?;
                rtt.push(t.elapsed().as_nanos() as u64);
                if !verify(i, &buf[..size]) {
                    return Err(format!("{}: corrupt pong {i}", kind.name()));
                }
            }
            drop((rd, wr));
            peer.finish()?;
        }
        Kind::Mq => {
            if !mq_usable(size) {
                return Ok(None);
            }
            let tag = std::process::id() as RawFd;
            let a = Mq::open(&format!("/shmq-bench-{tag}-a"), size, true).map_err(e)?;
            let b = Mq::open(&format!("/shmq-bench-{tag}-b"), size, true).map_err(e)?;
            let peer = Peer::start(plan.cpus.1, kind, Mode::Lat, size, rounds, dir, (tag, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            for i in 0..rounds {
                fill(i, &mut buf[..size]);
                let t = Instant::now();
                a.send(&buf[..size]).map_err(e)?;
                let n = b.recv(&mut buf).map_err(e)?;
                rtt.push(t.elapsed().as_nanos() as u64);
                if n != size || !verify(i, &buf[..size]) {
                    return Err("mq: corrupt pong".into());
                }
            }
            peer.finish()?;
            a.unlink();
            b.unlink();
        }
        other => return Err(format!("{} has no latency measurement", other.name())),
    }
    Ok(Some(percentiles(rtt)))
}

/// One throughput measurement: messages per second, with every byte checked.
pub(super) fn throughput(plan: &Plan, kind: Kind, size: usize, dir: &Path) -> Result<Option<f64>, String> {
    let count = plan.messages(size);
    let e = |x: std::io::Error| x.to_string();
    let mut buf = vec![0u8; size];
    let t;
    let peer;
    match kind {
        Kind::Bare => {
            let slots = bare_slots(size);
            let shm = Shm::create(&dir.join("shm"), BARE_DATA + slots as usize * size).map_err(e)?;
            peer = Peer::start(plan.cpus.1, kind, Mode::Tput, size, count, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let (head, tail) = (shm.u64(0), shm.u64(128));
            let mut cached_tail = 0u64;
            t = Instant::now();
            for k in 0..count {
                while k - cached_tail >= slots {
                    // Acquire: pairs with the consumer's Release tail store.
                    cached_tail = tail.load(Ordering::Acquire);
                    if k - cached_tail >= slots {
                        std::hint::spin_loop();
                    }
                }
                // SAFETY: slot k is free (the consumer's tail passed k - slots).
                fill(k, unsafe { shm.bytes(BARE_DATA + (k % slots) as usize * size, size) });
                // Release: publishes the slot's bytes to the consumer.
                head.store(k + 1, Ordering::Release);
            }
        }
        Kind::Shmq | Kind::ShmqTs | Kind::ShmqBatch | Kind::ShmqBatchWith | Kind::ShmqMulti | Kind::ShmqOver => {
            let opts = Options::new()
                .dir(dir)
                .capacity(RING_BYTES as u64)
                .max_message((1 << 20) + 64)
                .timestamps(kind == Kind::ShmqTs)
                .multi_producer(kind == Kind::ShmqMulti)
                .policy(if kind == Kind::ShmqOver { Policy::Overwrite } else { Policy::Block });
            let topic = Topic::create("tput", &opts).map_err(|x| x.to_string())?;
            let consumer = if kind == Kind::ShmqOver { Kind::ShmqOver } else { Kind::Shmq };
            peer = Peer::start(plan.cpus.1, consumer, Mode::Tput, size, count, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let mut p = topic.producer().map_err(|x| x.to_string())?;
            if kind == Kind::ShmqBatch {
                // Filled in a batch of buffers, then copied in: the copy
                // is part of what a batch costs.
                let mut batch = vec![vec![0u8; size]; BATCH];
                t = Instant::now();
                let mut k = 0;
                while k < count {
                    let n = BATCH.min((count - k) as usize);
                    for (i, b) in batch[..n].iter_mut().enumerate() {
                        fill(k + i as u64, b);
                    }
                    p.publish_batch(&batch[..n]).map_err(|x| x.to_string())?;
                    k += n as u64;
                }
            } else if kind == Kind::ShmqBatchWith {
                t = Instant::now();
                let mut k = 0;
                while k < count {
                    let n = BATCH.min((count - k) as usize);
                    p.publish_batch_with(n, size, |i, buf| fill(k + i as u64, buf)).map_err(|x| x.to_string())?;
                    k += n as u64;
                }
            } else {
                t = Instant::now();
                for k in 0..count {
                    let mut g = p.reserve(size).map_err(|x| x.to_string())?;
                    fill(k, &mut g);
                    g.commit(size).map_err(|x| x.to_string())?;
                }
            }
            drop(p);
            drop(topic);
            if kind == Kind::ShmqOver {
                // What the subscriber received (every byte checked), not
                // what was published: the rest was overwritten, and counted.
                let done = peer.finish()?;
                let secs = t.elapsed().as_secs_f64();
                let _ = std::fs::remove_file(dir.join("tput"));
                let lost = done.strip_prefix("DONE bad=0 lost=").and_then(|l| l.parse::<u64>().ok());
                let lost = lost.ok_or_else(|| format!("{}: consumer reported {done:?}", kind.name()))?;
                return Ok(Some(count.saturating_sub(lost) as f64 / secs));
            }
        }
        Kind::Unix | Kind::Pipe => {
            let (rd, wr) = if kind == Kind::Unix { socketpair().map_err(e)? } else { pipe().map_err(e)? };
            // The child reads one end; we write the other.
            let (theirs, mine) = (rd, wr);
            peer = Peer::start(plan.cpus.1, kind, Mode::Tput, size, count, dir, (theirs, 0))?;
            close(theirs);
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let mut w = stream(mine);
            t = Instant::now();
            for k in 0..count {
                fill(k, &mut buf);
                w.write_all(&buf).map_err(e)?;
            }
        }
        Kind::Mq => {
            if !mq_usable(size) {
                return Ok(None);
            }
            let tag = std::process::id() as RawFd;
            let q = Mq::open(&format!("/shmq-bench-{tag}-t"), size, true).map_err(e)?;
            peer = Peer::start(plan.cpus.1, kind, Mode::Tput, size, count, dir, (tag, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            t = Instant::now();
            for k in 0..count {
                fill(k, &mut buf);
                q.send(&buf).map_err(e)?;
            }
            let done = peer.finish()?;
            let secs = t.elapsed().as_secs_f64();
            q.unlink();
            return check_done(kind.name(), &done).map(|()| Some(count as f64 / secs));
        }
        other => return Err(format!("{} has no throughput measurement", other.name())),
    }
    let done = peer.finish()?;
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(dir.join("tput"));
    let _ = std::fs::remove_file(dir.join("shm"));
    check_done(kind.name(), &done)?;
    Ok(Some(count as f64 / secs))
}

pub(super) fn check_done(what: &str, done: &str) -> Result<(), String> {
    if done != "DONE bad=0" {
        return Err(format!("{what}: consumer reported {done:?}"));
    }
    Ok(())
}

/// Fan-out: one producer, `k` subscriber processes (not pinned: with more
/// processes than CPUs the scheduler shares them), 64-byte messages,
/// every byte checked. Returns delivered messages per second (all
/// subscribers together).
pub(super) fn fanout(plan: &Plan, k: usize, dir: &Path) -> Result<f64, String> {
    let size = 64;
    let count = plan.messages(size) / 4;
    let opts = Options::new().dir(dir).capacity(RING_BYTES as u64).max_message(1024);
    let topic = Topic::create("tput", &opts).map_err(|x| x.to_string())?;
    let mut peers = Vec::new();
    for i in 0..k {
        let cpu = if i % 2 == 0 { plan.cpus.1 } else { plan.cpus.0 };
        peers.push(Peer::start(cpu, Kind::Shmq, Mode::Tput, size, count, dir, (0, 0))?);
    }
    shmq::__private::sys::pin_to_cpu(plan.cpus.0);
    let mut p = topic.producer().map_err(|x| x.to_string())?;
    let t = Instant::now();
    for m in 0..count {
        let mut g = p.reserve(size).map_err(|x| x.to_string())?;
        fill(m, &mut g);
        g.commit(size).map_err(|x| x.to_string())?;
    }
    for peer in peers {
        check_done("fanout", &peer.finish()?)?;
    }
    let secs = t.elapsed().as_secs_f64();
    drop((p, topic));
    let _ = std::fs::remove_file(dir.join("tput"));
    Ok((count * k as u64) as f64 / secs)
}
