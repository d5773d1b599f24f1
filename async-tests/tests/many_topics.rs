//! Hundreds of topics, one async subscriber task each, under tokio's
//! multi-thread runtime, fed by another process: one waker thread per 127
//! topics with a parked task, and none once the last task is done. Alone
//! in its binary, so no other test's waits count.

use shmq_async_tests::{producer_env, take_all, topics, Child, TestDir};
use std::time::Duration;

#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    shmq_async_tests::child_main();
}

/// Waits (bounded) until no waker thread runs: the last waiter is gone.
fn waker_threads_exit() {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while shmq::park::waker_threads() > 0 {
        assert!(std::time::Instant::now() < end, "waker threads still running: {}", shmq::park::waker_threads());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn hundreds_of_topics_one_task_each_tokio_multi_thread() {
    let d = TestDir::new();
    let n = 300;
    let msgs = 30;
    let (_topics, subs) = topics(&d, n, 4096);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut child = Child::spawn("producer", &producer_env(&d, n, msgs, 2000));
    child.expect("READY");
    rt.block_on(async {
        let tasks: Vec<_> =
            subs.into_iter().enumerate().map(|(t, s)| tokio::spawn(take_all(t as u64, s, msgs))).collect();
        let watcher = tokio::spawn(async {
            let mut most = 0;
            for _ in 0..100 {
                most = most.max(shmq::park::waker_threads());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            most
        });
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .expect("a task never got its messages")
                .expect("task");
        }
        // One thread per 127 topics with a parked task, at most.
        let most = watcher.await.expect("watcher");
        assert!((1..=n.div_ceil(127)).contains(&most), "{most} waker threads for {n} topics");
    });
    child.expect("DONE");
    child.finish();
    waker_threads_exit();
}
