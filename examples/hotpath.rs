//! A fixed workload for profiling the hot path with instruction counts
//! (hardware counters are often unavailable in VMs; callgrind works
//! anywhere, and its counts repeat exactly):
//!
//! ```text
//! cargo build --release --example hotpath
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/hotpath 200000 [multi] [overwrite] [subs=K]
//! callgrind_annotate --threshold=100 --inclusive=yes cg.out | grep -E 'hotpath::(publish_one|receive_all) \['
//! ```
//! N 64-byte messages are published to a topic (Block, one producer by
//! default; `multi`: a multi-producer topic; `overwrite`: an Overwrite
//! topic) with K subscribers (default 1), which drain them in batches of
//! 256, as a busy consumer does; N is rounded up to whole batches (200000:
//! 200192 messages). `publish_one`'s inclusive count over that is the cost
//! of one publish, `receive_all`'s over K times that the cost of one
//! receive. (The difference of the program totals for N = 200000 and
//! 100000, over 100000, is one publish and K receives.)

/// One publish, kept out of line so callgrind reports it on its own.
#[inline(never)]
fn publish_one(p: &mut shmq::Producer, msg: &[u8]) -> Result<(), shmq::PublishError> {
    p.try_publish(msg)
}

/// Every subscriber receives everything waiting; returns the sum of the
/// first bytes (so the reads are not optimised away).
#[inline(never)]
fn receive_all(subs: &mut [shmq::Subscriber]) -> Result<u64, shmq::RecvError> {
    let mut sum = 0u64;
    for s in subs {
        while s.drain(256, |m| sum += m[0] as u64)? > 0 {}
    }
    Ok(sum)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let k: usize = args.iter().find_map(|a| a.strip_prefix("subs=")?.parse().ok()).unwrap_or(1);
    let dir = shmq::default_dir().join(format!(".hotpath-{}", std::process::id()));
    let policy = if has("overwrite") { shmq::Policy::Overwrite } else { shmq::Policy::Block };
    let opts = shmq::Options::new()
        .dir(&dir)
        .capacity(1 << 20)
        .max_message(1024)
        .max_subscribers(k.max(1) as u32)
        .multi_producer(has("multi"))
        .policy(policy);
    let topic = shmq::Topic::create("hot", &opts)?;
    let mut subs = (0..k).map(|_| topic.subscribe()).collect::<Result<Vec<_>, _>>()?;
    let mut p = topic.producer()?;
    let msg = [5u8; 64];
    let (mut sum, mut sent) = (0u64, 0u64);
    while sent < n {
        for _ in 0..256 {
            publish_one(&mut p, &msg)?;
        }
        sent += 256;
        sum += receive_all(&mut subs)?;
    }
    assert_eq!(sum, 5 * sent * k as u64, "every subscriber read every message");
    drop((subs, p, topic));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
