//! Publishes a numbered message every 100 ms to the topic `demo.ticks`
//! (created if missing). Run `subscriber` in another terminal.
//!
//! ```text
//! cargo run --example publisher
//! cargo run --example subscriber      # in another terminal
//! ```

use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topic = shmq::Topic::open_or_create("demo.ticks", &shmq::Options::new())?;
    let mut producer = topic.producer()?;
    println!("publishing to {} (Ctrl-C to stop)", topic.path().display());
    for i in 0u64.. {
        let msg = format!("tick {i}");
        producer.publish(msg.as_bytes())?;
        println!("sent {msg}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
