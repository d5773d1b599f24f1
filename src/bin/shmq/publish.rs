//! `shmq pub`: publish arguments, lines of standard input, or a file.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use shmq::{Options, PublishError, Topic};

use crate::{fail, Fail, EXIT_USAGE, R};

/// Reads `path` as one message of at most `max` bytes, checking the size
/// before reading: a larger regular file is refused from its length, and
/// anything else (a pipe, `/dev/zero`) is read only up to `max + 1` bytes.
fn read_limited(path: &std::path::Path, max: usize) -> Result<Vec<u8>, Fail> {
    use std::io::Read;
    let too_big = |what: String| {
        Fail(EXIT_USAGE, format!("{} is {what}; the topic's largest message is {max} bytes", path.display()))
    };
    let f = std::fs::File::open(path).map_err(|e| fail(format!("opening {}: {e}", path.display())))?;
    let meta = f.metadata().map_err(|e| fail(format!("reading {}: {e}", path.display())))?;
    if meta.is_file() && meta.len() > max as u64 {
        return Err(too_big(format!("{} bytes", meta.len())));
    }
    let mut data = Vec::new();
    f.take(max as u64 + 1).read_to_end(&mut data).map_err(|e| fail(format!("reading {}: {e}", path.display())))?;
    if data.len() > max {
        return Err(too_big("longer than that".into()));
    }
    Ok(data)
}

pub fn run(
    topic: &str,
    opts: &Options,
    messages: Vec<String>,
    stdin: bool,
    file: Option<PathBuf>,
    timeout: Duration,
    ty: u32,
) -> R {
    let t = Topic::open(topic, opts)?;
    let mut p = t.producer().map_err(|e| fail(e.to_string()))?;
    let mut send = |data: &[u8]| -> R {
        let r = match p.reserve_timeout(data.len(), timeout) {
            Ok(mut g) => {
                g[..data.len()].copy_from_slice(data);
                g.set_type(ty);
                g.commit(data.len())
            }
            Err(e) => Err(e),
        };
        r.map_err(|e| match e {
            PublishError::Full => fail(format!(
                "topic {topic} stayed full for {timeout:?}: its slowest subscriber is not reading \
                 (see `shmq info {topic}`; `shmq repair {topic}` reclaims dead ones)"
            )),
            e => fail(e.to_string()),
        })
    };
    let mut n = 0u64;
    if let Some(f) = file {
        let data = read_limited(&f, t.max_message())?;
        send(&data)?;
        n += 1;
    } else if stdin {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| fail(format!("reading standard input: {e}")))?;
            send(line.as_bytes())?;
            n += 1;
        }
    } else {
        if messages.is_empty() {
            return Err(Fail(EXIT_USAGE, "nothing to publish: give MESSAGE arguments, --stdin or --file".into()));
        }
        for m in &messages {
            send(m.as_bytes())?;
            n += 1;
        }
    }
    eprintln!("published {n} message(s) to {topic}");
    Ok(())
}
