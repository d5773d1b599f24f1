//! The child side of each measurement (`shmq bench-child`, hidden): the
//! ponger of a latency round trip, or the consumer of a throughput run,
//! pinned to its CPU.

use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use shmq::{Options, RecvError, Topic};

use super::peers::*;
use super::{Kind, Mode};

// ------------------------------------------------------------ the child

/// Runs the child side of one measurement: `args` = kind, mode (lat|tput),
/// size, count, dir, fd-a, fd-b, cpu.
pub fn child(args: &[String]) -> Result<(), String> {
    let kind = args.first().and_then(|a| Kind::parse(a)).ok_or("kind")?;
    let mode = args.get(1).and_then(|a| Mode::parse(a)).ok_or("mode")?;
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok()).ok_or(format!("argument {i}"));
    let size = num(2)? as usize;
    let count = num(3)?;
    let dir = PathBuf::from(args.get(4).ok_or("dir")?);
    let fda = num(5)? as RawFd;
    let fdb = num(6)? as RawFd;
    shmq::__private::sys::pin_to_cpu(num(7)? as usize);
    let e = |x: std::io::Error| x.to_string();
    let mut buf = vec![0u8; size.max(8)];
    match (kind, mode) {
        (Kind::Raw, Mode::Lat) => {
            let shm = Shm::open(&dir.join("shm")).map_err(e)?;
            ready();
            let (a, b) = (shm.u64(0), shm.u64(128));
            for i in 1..=count {
                while a.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                b.store(i, Ordering::Release);
            }
        }
        (Kind::Frames, Mode::Lat) => {
            let shm = Shm::open(&dir.join("shm")).map_err(e)?;
            ready();
            let (ping, pong) = (Frames::new(&shm, 0, size), Frames::new(&shm, 1, size));
            for k in 0..count {
                ping.recv(k, &mut buf[..size]);
                pong.send(k, &buf[..size]);
            }
        }
        (Kind::Futex, Mode::Lat) => {
            let shm = Shm::open(&dir.join("shm")).map_err(e)?;
            ready();
            let (a, b) = (shm.u32(0), shm.u32(128));
            for i in 1..=count as u32 {
                loop {
                    let v = a.load(Ordering::Acquire);
                    if v == i {
                        break;
                    }
                    futex_wait(a, v);
                }
                b.store(i, Ordering::Release);
                shmq::__private::sys::futex_wake(b);
            }
        }
        (Kind::Shmq | Kind::ShmqTs | Kind::ShmqBlock, Mode::Lat) => {
            let opts = Options::new().dir(&dir);
            let ping = Topic::open("ping", &opts).map_err(|x| x.to_string())?;
            let pong = Topic::open("pong", &opts).map_err(|x| x.to_string())?;
            let mut sub = ping.subscribe().map_err(|x| x.to_string())?;
            let mut p = pong.producer().map_err(|x| x.to_string())?;
            ready();
            let block = kind == Kind::ShmqBlock;
            let mut done = 0;
            while done < count {
                let r = if block { sub.recv() } else { sub.try_recv() };
                match r {
                    Ok(m) => {
                        // Reply first, release the ping after: the order a
                        // `p.publish(&sub.recv()?)` echo loop has.
                        let mut g = p.reserve(m.len()).map_err(|x| x.to_string())?;
                        g.copy_from_slice(&m);
                        g.commit(size).map_err(|x| x.to_string())?;
                        drop(m);
                        done += 1;
                    }
                    Err(RecvError::Empty) => std::hint::spin_loop(),
                    Err(x) => return Err(x.to_string()),
                }
            }
        }
        (Kind::Unix | Kind::Pipe, Mode::Lat) => {
            let mut rd = stream(fda);
            // A socket is one descriptor for both directions.
            let mut wr = if fda == fdb { rd.try_clone().map_err(e)? } else { stream(fdb) };
            ready();
            for _ in 0..count {
                rd.read_exact(&mut buf[..size]).map_err(e)?;
                wr.write_all(&buf[..size]).map_err(e)?;
            }
        }
        (Kind::Mq, Mode::Lat) => {
            let a = Mq::open(&format!("/shmq-bench-{fda}-a"), size, false).map_err(e)?;
            let b = Mq::open(&format!("/shmq-bench-{fda}-b"), size, false).map_err(e)?;
            ready();
            for _ in 0..count {
                let n = a.recv(&mut buf).map_err(e)?;
                b.send(&buf[..n]).map_err(e)?;
            }
        }
        (_, Mode::Tput) => return consume(kind, size, count, &dir, fda, &mut buf),
        _ => return Err(format!("no {} child measures {}", kind.name(), mode.name())),
    }
    Ok(())
}

/// Throughput consumer: receives `count` messages of `size` bytes and
/// checks every byte; prints `DONE bad=N`.
fn consume(kind: Kind, size: usize, count: u64, dir: &Path, fd: RawFd, buf: &mut [u8]) -> Result<(), String> {
    let e = |x: std::io::Error| x.to_string();
    let mut bad = 0u64;
    match kind {
        Kind::Bare => {
            let shm = Shm::open(&dir.join("shm")).map_err(e)?;
            ready();
            let slots = bare_slots(size);
            let (head, tail) = (shm.u64(0), shm.u64(128));
            let mut cached_head = 0u64;
            for k in 0..count {
                while cached_head <= k {
                    // Acquire: pairs with the producer's Release head store.
                    cached_head = head.load(Ordering::Acquire);
                    if cached_head <= k {
                        idle_backoff();
                    }
                }
                // SAFETY: slot k is published (head > k) and not reused
                // until our tail passes it.
                let slot = unsafe { shm.bytes(BARE_DATA + (k % slots) as usize * size, size) };
                bad += !verify(k, slot) as u64;
                // Release: our reads happen before the producer reuses the slot.
                tail.store(k + 1, Ordering::Release);
            }
        }
        Kind::Shmq => {
            let topic = Topic::open("tput", &Options::new().dir(dir)).map_err(|x| x.to_string())?;
            let mut sub = topic.subscribe().map_err(|x| x.to_string())?;
            ready();
            let mut k = 0u64;
            while k < count {
                let n = sub
                    .drain(1024, |m| {
                        bad += !(m.len() == size && verify(k, m)) as u64;
                        k += 1;
                    })
                    .map_err(|x| x.to_string())?;
                if n == 0 {
                    idle_backoff();
                }
            }
        }
        Kind::ShmqOver => {
            let topic = Topic::open("tput", &Options::new().dir(dir)).map_err(|x| x.to_string())?;
            let mut sub = topic.subscribe().map_err(|x| x.to_string())?;
            ready();
            // Each message is checked against the pattern of its sequence
            // number (they are dense); a gap is a counted loss.
            let (mut next, mut lost) = (0u64, 0u64);
            while next < count {
                let r = sub.drain(1024, |m| {
                    bad += !(m.len() == size && m.seq() == next && verify(next, m)) as u64;
                    next = m.seq() + 1;
                });
                match r {
                    Ok(0) => idle_backoff(),
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        lost += n;
                        next += n;
                    }
                    Err(x) => return Err(x.to_string()),
                }
            }
            println!("DONE bad={bad} lost={lost}");
            return Ok(());
        }
        Kind::Unix | Kind::Pipe => {
            let mut rd = stream(fd);
            ready();
            for k in 0..count {
                rd.read_exact(&mut buf[..size]).map_err(e)?;
                bad += !verify(k, &buf[..size]) as u64;
            }
        }
        Kind::Mq => {
            let q = Mq::open(&format!("/shmq-bench-{fd}-t"), size, false).map_err(e)?;
            ready();
            for k in 0..count {
                let n = q.recv(buf).map_err(e)?;
                bad += !(n == size && verify(k, &buf[..n])) as u64;
            }
        }
        other => return Err(format!("{} has no throughput measurement", other.name())),
    }
    println!("DONE bad={bad}");
    Ok(())
}
