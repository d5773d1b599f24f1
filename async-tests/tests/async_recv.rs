//! `recv_async`, `publish_async`, the message stream and the readiness
//! descriptor under real executors (tokio multi-thread and current-thread,
//! smol), with messages from other processes (this binary again, as a
//! child in a role). Every byte is checked; waits end by the ring, never
//! by a sleep.

use shmq::{Policy, RecvError, Topic};
use shmq_async_tests::{check, ident, mix, payload, producer_env, take_all, topics, Child, TestDir};
use std::time::Duration;

#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    shmq_async_tests::child_main();
}

#[test]
fn many_topics_tokio_current_thread() {
    let d = TestDir::new();
    let n = 100;
    let msgs = 40;
    let (_topics, subs) = topics(&d, n, 4096);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut child = Child::spawn("producer", &producer_env(&d, n, msgs, 1000));
    child.expect("READY");
    rt.block_on(async {
        let set: Vec<_> =
            subs.into_iter().enumerate().map(|(t, s)| tokio::spawn(take_all(t as u64, s, msgs))).collect();
        for t in set {
            tokio::time::timeout(Duration::from_secs(120), t).await.expect("timed out").expect("task");
        }
    });
    child.finish();
}

#[test]
fn many_topics_smol() {
    let d = TestDir::new();
    let n = 100;
    let msgs = 40;
    let (_topics, subs) = topics(&d, n, 4096);
    let mut child = Child::spawn("producer", &producer_env(&d, n, msgs, 1000));
    child.expect("READY");
    let tasks: Vec<_> = subs.into_iter().enumerate().map(|(t, s)| smol::spawn(take_all(t as u64, s, msgs))).collect();
    smol::block_on(async {
        for t in tasks {
            t.await;
        }
    });
    child.finish();
}

#[test]
fn cancelled_receives_lose_nothing() {
    let d = TestDir::new();
    let msgs = 3000;
    let (_topics, mut subs) = topics(&d, 1, 4096);
    let mut s = subs.remove(0);
    let mut child = Child::spawn("producer", &producer_env(&d, 1, msgs, 3000));
    child.expect("READY");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let cancelled = rt.block_on(async {
        let (mut k, mut cancelled, mut rng) = (0, 0u64, 7u64);
        while k < msgs {
            rng = mix(rng);
            tokio::select! {
                m = s.recv_async() => {
                    check(0, k, &m.expect("recv_async"));
                    k += 1;
                }
                _ = tokio::time::sleep(Duration::from_micros(rng % 1500)) => cancelled += 1,
            }
        }
        cancelled
    });
    assert!(cancelled > 0, "no receive was cancelled: the test proved nothing");
    child.finish();
}

#[test]
fn a_blocked_async_producer_resumes_when_a_subscriber_releases() {
    let d = TestDir::new();
    let t = Topic::create("t0", &d.opts().capacity(2048).max_message(256)).expect("create");
    let mut child = Child::spawn("subscriber", &[("SHMQ_DIR", d.path().display().to_string())]);
    child.expect("READY");
    let mut p = t.producer().expect("producer");
    let mut k = 0;
    while p.try_publish(&payload(0, k)).is_ok() {
        k += 1;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let msg = payload(0, k);
        let mut fut = std::pin::pin!(p.publish_async(&msg));
        tokio::select! {
            r = &mut fut => panic!("published into a full ring: {r:?}"),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        child.say("recv 3");
        tokio::time::timeout(Duration::from_secs(30), fut).await.expect("never resumed").expect("publish");
    });
    assert_eq!(child.expect("DONE"), "DONE 3");
    child.say(&format!("recv {}", k + 1 - 3));
    assert_eq!(child.expect("DONE"), format!("DONE {}", k + 1));
    child.finish();
}

#[test]
fn group_members_and_a_durable_subscriber_under_async() {
    let d = TestDir::new();
    let msgs = 2000;
    let t = Topic::create("t0", &d.opts().capacity(8192).max_message(256)).expect("create");
    let members: Vec<_> = (0..3).map(|_| t.subscribe_group("g").expect("member")).collect();
    let durable = t.subscribe_durable("d").expect("durable");
    let mut child = Child::spawn("producer", &producer_env(&d, 1, msgs, 1000));
    child.expect("READY");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut got = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for mut m in members {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok(msg) = m.recv_async().await {
                    let (topic, k) = ident(&msg);
                    check(topic, k, &msg);
                    if tx.send(k).is_err() {
                        break;
                    }
                }
            });
        }
        // The durable subscriber leaves after half (it keeps gating: a
        // durable slot outlives its handle), and a new handle resumes there.
        let t2 = t.clone();
        let half = tokio::spawn(async move {
            drop(take_all(0, durable, msgs / 2).await);
            let mut again = t2.subscribe_durable("d").expect("resume");
            for k in msgs / 2..msgs {
                check(0, k, &again.recv_async().await.expect("resumed"));
            }
        });
        let mut got = Vec::new();
        while got.len() < msgs as usize {
            got.push(
                tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("group stalled").expect("k"),
            );
        }
        tokio::time::timeout(Duration::from_secs(60), half).await.expect("durable stalled").expect("durable");
        got
    });
    got.sort_unstable();
    assert_eq!(got, (0..msgs).collect::<Vec<_>>(), "each message to exactly one member");
    child.finish();
}

#[test]
fn overwrite_losses_are_counted_exactly_under_async() {
    let d = TestDir::new();
    let t = Topic::create("t0", &d.opts().capacity(4096).max_message(256).policy(Policy::Overwrite)).expect("create");
    let mut s = t.subscribe().expect("subscribe");
    let mut p = t.producer().expect("producer");
    for k in 0..500 {
        p.publish(&payload(0, k)).expect("publish");
    }
    let (lost, received) = smol::block_on(async {
        let (mut lost, mut received, mut last) = (0, 0, None);
        loop {
            let fut = s.recv_async();
            match futures_lite::future::or(async { Some(fut.await) }, async {
                smol::Timer::after(Duration::from_millis(200)).await;
                None
            })
            .await
            {
                Some(Ok(m)) => {
                    let (_, k) = ident(&m);
                    check(0, k, &m);
                    if let Some(l) = last {
                        assert!(k > l);
                    }
                    last = Some(k);
                    received += 1;
                }
                Some(Err(RecvError::Lagged(n))) => lost += n,
                Some(Err(e)) => panic!("{e}"),
                None => break,
            }
        }
        (lost, received)
    });
    assert!(lost > 0, "the ring was lapped");
    assert_eq!(lost + received, 500, "every message received or counted lost");
}

#[test]
fn the_stream_yields_owned_messages_from_another_process() {
    use futures_lite::StreamExt;
    let d = TestDir::new();
    let msgs = 1000;
    let (_topics, mut subs) = topics(&d, 1, 4096);
    let mut stream = subs.remove(0).into_stream();
    let mut child = Child::spawn("producer", &producer_env(&d, 1, msgs, 500));
    child.expect("READY");
    let kept = smol::block_on(async {
        let mut kept = Vec::new();
        for k in 0..msgs {
            let m = stream.next().await.expect("never ends").expect("message");
            check(0, k, &m);
            assert_eq!(m.seq(), k);
            if k % 100 == 0 {
                kept.push(m); // held: the producer is not held back by it
            }
        }
        kept
    });
    assert_eq!(kept.len(), 10);
    child.finish();
}

#[test]
fn the_readiness_fd_becomes_readable_for_poll() {
    let d = TestDir::new();
    let (_topics, mut subs) = topics(&d, 1, 4096);
    let s = &mut subs[0];
    let fd = s.readiness_fd().expect("eventfd");
    assert!(!s.arm().expect("arm"), "nothing published yet");
    let readable = |ms: i32| {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, ms) == 1 && p.revents & libc::POLLIN != 0 }
    };
    // Well within the 50 ms liveness slice, after which it may become
    // readable with nothing to receive (as the docs say).
    assert!(!readable(10), "readable with nothing published");
    let mut child = Child::spawn("producer", &producer_env(&d, 1, 50, 0));
    child.expect("READY");
    // The loop the docs give: receive until empty, arm, and wait only when
    // arming found nothing (1 means a message came meanwhile and nothing
    // is armed: waiting then would wait for nothing).
    let mut k = 0;
    loop {
        loop {
            match s.try_recv() {
                Ok(m) => {
                    check(0, k, &m);
                    k += 1;
                }
                Err(RecvError::Empty) => break,
                Err(e) => panic!("{e}"),
            }
        }
        if k == 50 {
            break;
        }
        if s.arm().expect("arm") {
            continue;
        }
        assert!(readable(30_000), "never became readable");
    }
    child.finish();
}

/// `arm` with no descriptor left for its eventfd: a typed error (not
/// `Corrupt`), and nothing changed: arming works once descriptors are
/// back (in a child process: the limit is process-wide).
#[test]
fn arming_without_a_descriptor_says_so_and_changes_nothing() {
    let d = TestDir::new();
    let _t = Topic::create("t0", &d.opts().capacity(4096)).unwrap();
    let mut c = Child::spawn("arm-nofile", &[("SHMQ_DIR", d.path().display().to_string())]);
    let got = c.expect("RESULT");
    c.finish();
    assert!(
        got.starts_with("RESULT Err(Resource(\"cannot make an eventfd: ") && got.ends_with("then Ok(false)"),
        "{got}"
    );
}

#[test]
fn reserve_async_lends_room_once_a_subscriber_releases() {
    let d = TestDir::new();
    let t = Topic::create("t0", &d.opts().capacity(2048).max_message(256)).expect("create");
    let mut child = Child::spawn("subscriber", &[("SHMQ_DIR", d.path().display().to_string())]);
    child.expect("READY");
    let mut p = t.producer().expect("producer");
    let mut k = 0;
    while p.try_publish(&payload(0, k)).is_ok() {
        k += 1;
    }
    let want = payload(0, k);
    smol::block_on(async {
        let mut fut = std::pin::pin!(p.reserve_async(want.len()));
        // Poll it well past its spin phase (200 polls), so it parks on a
        // full ring; it must not be ready before the subscriber releases.
        for _ in 0..300 {
            assert!(futures_lite::future::poll_once(&mut fut).await.is_none(), "lent room in a full ring");
        }
        child.say("recv 2");
        let mut grant = fut.await.expect("reserve_async");
        grant.copy_from_slice(&want); // written in place, checked by the child
        grant.commit(want.len()).expect("commit");
    });
    assert_eq!(child.expect("DONE"), "DONE 2");
    child.say(&format!("recv {}", k + 1 - 2));
    assert_eq!(child.expect("DONE"), format!("DONE {}", k + 1));
    child.finish();
}

#[test]
fn recv_async_and_the_stream_end_at_the_end_of_a_closed_stream() {
    use futures_lite::StreamExt;
    let d = TestDir::new();
    // Room for all 200 messages: nobody reads until the producer is done.
    let t = Topic::create("t0", &d.opts().capacity(64 << 10).max_message(256)).expect("create");
    let mut s = t.subscribe().expect("subscribe");
    let mut stream = t.subscribe().expect("subscribe").into_stream();
    let mut child = Child::spawn("producer", &producer_env(&d, 1, 200, 500));
    child.expect("READY");
    child.expect("DONE");
    t.close().expect("close");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        for k in 0..200 {
            check(0, k, &s.recv_async().await.expect("message"));
        }
        assert_eq!(s.recv_async().await.unwrap_err(), RecvError::Closed);
        let mut n = 0;
        while let Some(m) = stream.next().await {
            check(0, n, &m.expect("message"));
            n += 1;
        }
        assert_eq!(n, 200, "the stream ends after every message");
    });
    child.finish();
}

#[test]
fn a_parked_recv_async_is_woken_by_a_close() {
    let d = TestDir::new();
    let t = Topic::create("t0", &d.opts().capacity(4096).max_message(256)).expect("create");
    let mut s = t.subscribe().expect("subscribe");
    // The slice is long by default (50 ms) but the close's wake must end
    // the wait at once: a whole second would be a missed wake.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let closer = {
            let t = t.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                t.close().expect("close");
            })
        };
        let r = tokio::time::timeout(Duration::from_secs(30), s.recv_async()).await.expect("never woken");
        assert_eq!(r.unwrap_err(), RecvError::Closed);
        closer.await.expect("closer");
    });
}
