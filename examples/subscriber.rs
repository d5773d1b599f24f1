//! Prints every message published to `demo.ticks`, blocking (on a futex,
//! no busy loop) until each arrives.
//!
//! ```text
//! cargo run --example subscriber
//! ```

use shmq::RecvError;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topic = shmq::Topic::open_or_create("demo.ticks", &shmq::Options::new())?;
    let mut sub = topic.subscribe()?;
    println!("subscribed to {} (slot {})", topic.path().display(), sub.slot());
    loop {
        match sub.recv() {
            Ok(msg) => println!("seq {:>6}  {}", msg.seq(), String::from_utf8_lossy(&msg)),
            Err(RecvError::Lagged(n)) => println!("lost {n} messages"),
            Err(e) => return Err(e.into()),
        }
    }
}
