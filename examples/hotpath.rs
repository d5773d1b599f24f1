//! A fixed workload for profiling the hot path with instruction counts
//! (perf counters are often unavailable in VMs; callgrind works anywhere):
//!
//! ```text
//! cargo build --release --example hotpath
//! valgrind --tool=callgrind target/release/examples/hotpath 100000
//! valgrind --tool=callgrind target/release/examples/hotpath 200000
//! ```
//! The difference of the two totals over 100,000 is the cost of one
//! 64-byte publish + receive (Block topic, one subscriber, drained in
//! batches, as a busy consumer does). A second argument `multi` uses a
//! multi-producer topic (CAS claims, claim marks).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("shmq-hotpath-{}", std::process::id()));
    let multi = std::env::args().nth(2).as_deref() == Some("multi");
    let opts = shmq::Options::new().dir(&dir).capacity(1 << 20).max_message(1024).multi_producer(multi);
    let topic = shmq::Topic::create("hot", &opts)?;
    let mut sub = topic.subscribe()?;
    let mut p = topic.producer()?;
    let msg = [5u8; 64];
    let mut sum = 0u64;
    let mut sent = 0;
    while sent < n {
        for _ in 0..256 {
            p.try_publish(&msg)?;
        }
        sent += 256;
        sub.drain(256, |m| sum += m[0] as u64)?;
    }
    assert_eq!(sum, 5 * sent);
    drop((sub, p, topic));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
