//! `shmq tail`: print messages, passively (no slot: never slows a
//! producer) or as a subscriber, durable subscriber or group member.

use std::io::Write;
use std::time::Duration;

use shmq::{Options, RecvError, Start, TailEvent, Topic};

use crate::{fail, sub_fail, Fail, Format, FromArg, EXIT_USAGE, R};

struct Printer {
    format: Format,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    /// A dead-letter topic: decode and show each message's envelope.
    dead_letters: bool,
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

impl Printer {
    fn message(&mut self, data: &[u8], seq: u64, pos: u64, ts: u64, ty: u32) -> std::io::Result<()> {
        let letter = if self.dead_letters { shmq::DeadLetter::decode(data) } else { None };
        let data = match &letter {
            Some((d, payload)) => {
                self.dead_letter(d)?;
                *payload
            }
            None => data,
        };
        let o = &mut self.out;
        match self.format {
            Format::Text => {
                let text: String = String::from_utf8_lossy(data)
                    .chars()
                    .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
                    .collect();
                writeln!(
                    o,
                    "{:>12}.{:06} #{seq} @{pos} type {ty} {}B  {text}",
                    ts / 1_000_000_000,
                    ts % 1_000_000_000 / 1000,
                    data.len()
                )?;
            }
            Format::Hex => {
                writeln!(o, "#{seq} @{pos} type {ty} {} bytes, t={ts}", data.len())?;
                for (i, chunk) in data.chunks(16).enumerate() {
                    let ascii: String = chunk
                        .iter()
                        .map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' })
                        .collect();
                    let hx: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                    writeln!(o, "  {:08x}  {:<48} {ascii}", i * 16, hx.join(" "))?;
                }
            }
            Format::Json => {
                let v = serde_json::json!({
                    "seq": seq,
                    "position": pos,
                    "timestamp_ns": ts,
                    "type": ty,
                    "len": data.len(),
                    "text": std::str::from_utf8(data).ok(),
                    "hex": hex(data),
                });
                writeln!(o, "{v}")?;
            }
            Format::Raw => o.write_all(data)?,
        }
        Ok(())
    }

    /// The envelope of a dead letter, before its payload is printed.
    fn dead_letter(&mut self, d: &shmq::DeadLetter) -> std::io::Result<()> {
        let reason = match d.reason {
            shmq::DeadLetterReason::MaxDeliveries => "max-deliveries",
            shmq::DeadLetterReason::Rejected => "rejected",
        };
        match self.format {
            Format::Json => writeln!(
                self.out,
                "{}",
                serde_json::json!({ "dead_letter": { "group": d.group, "reason": reason, "seq": d.seq,
                    "position": d.position, "timestamp_ns": d.timestamp_ns, "type": d.msg_type,
                    "deliveries": d.deliveries } })
            ),
            Format::Raw => Ok(()),
            _ => writeln!(
                self.out,
                "-- dead letter from group {:?}: {reason} after {} deliveries; original #{} @{} type {} t={} --",
                d.group, d.deliveries, d.seq, d.position, d.msg_type, d.timestamp_ns
            ),
        }
    }

    fn gap(&mut self, messages: Option<u64>, bytes: u64) -> std::io::Result<()> {
        let what = messages.map_or_else(|| format!("{bytes} bytes"), |m| format!("{m} messages ({bytes} bytes)"));
        match self.format {
            Format::Json => {
                writeln!(self.out, "{}", serde_json::json!({ "gap_messages": messages, "gap_bytes": bytes }))
            }
            Format::Raw => {
                eprintln!("shmq: gap: {what} overwritten before tail read them");
                Ok(())
            }
            _ => writeln!(self.out, "-- gap: {what} overwritten before tail read them --"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    topic: &str,
    opts: &Options,
    follow: bool,
    lines: usize,
    from: Option<FromArg>,
    format: Format,
    count: Option<u64>,
    subscribe: bool,
    durable: Option<String>,
    group: Option<String>,
) -> R {
    let mut p = Printer { format, out: std::io::BufWriter::new(std::io::stdout().lock()), dead_letters: false };
    let io = |e: std::io::Error| fail(format!("writing output: {e}"));
    let limit = count.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    if subscribe || durable.is_some() || group.is_some() {
        let t = Topic::open(topic, opts)?;
        p.dead_letters = t.info().dead_letters;
        if (durable.is_some() || group.is_some()) && from.is_some() {
            return Err(Fail(
                EXIT_USAGE,
                "--durable and --group resume where they stopped; they take no --from".into(),
            ));
        }
        let mut sub = match (&durable, &group) {
            (Some(name), _) => t.subscribe_durable(name),
            (_, Some(g)) => t.subscribe_group(g),
            _ => t.subscribe_with(from.map_or(Start::Newest, FromArg::start), "shmq tail"),
        }
        .map_err(sub_fail)?;
        while printed < limit {
            match sub.recv_timeout(Duration::from_millis(200)) {
                Ok(m) => {
                    p.message(&m, m.seq(), m.position(), m.timestamp_ns(), m.msg_type()).map_err(io)?;
                    printed += 1;
                }
                Err(RecvError::Lagged(n)) => p.gap(Some(n), 0).map_err(io)?,
                Err(RecvError::Timeout) => {
                    p.out.flush().map_err(io)?;
                    if !follow {
                        break;
                    }
                }
                // End of stream: everything before the close was printed.
                Err(RecvError::Closed) => break,
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        p.out.flush().map_err(io)?;
        return Ok(());
    }
    let t = Topic::open_read_only(topic, opts)?;
    p.dead_letters = t.info().dead_letters;
    let mut tail = t.tail(from.map_or(Start::Oldest, FromArg::start)).map_err(sub_fail)?;
    if from.is_none() {
        // The last `lines` messages the ring holds.
        let mut last: std::collections::VecDeque<(Vec<u8>, u64, u64, u64, u32)> = std::collections::VecDeque::new();
        loop {
            match tail.next_event() {
                Ok(Some(TailEvent::Message(m))) => {
                    last.push_back((m.data.to_vec(), m.seq, m.position, m.timestamp_ns, m.msg_type));
                    if last.len() > lines {
                        last.pop_front();
                    }
                }
                Ok(Some(TailEvent::Gap { .. })) => {}
                Ok(None) | Err(RecvError::Closed) => break,
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        for (d, seq, pos, ts, ty) in last {
            if printed >= limit {
                break;
            }
            p.message(&d, seq, pos, ts, ty).map_err(io)?;
            printed += 1;
        }
    }
    let mut idle = 0u32;
    while printed < limit {
        match tail.next_event() {
            Ok(Some(TailEvent::Message(m))) => {
                p.message(m.data, m.seq, m.position, m.timestamp_ns, m.msg_type).map_err(io)?;
                printed += 1;
                idle = 0;
            }
            Ok(Some(TailEvent::Gap { messages, bytes })) => p.gap(messages, bytes).map_err(io)?,
            Ok(None) => {
                p.out.flush().map_err(io)?;
                if !follow {
                    break;
                }
                // Passive readers cannot register for wake-ups (that would
                // write to the ring): poll, backing off to 10 ms.
                idle = (idle + 1).min(10);
                std::thread::sleep(Duration::from_millis(idle as u64));
            }
            Err(RecvError::Closed) => break,
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    p.out.flush().map_err(io)
}
