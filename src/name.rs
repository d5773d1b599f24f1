//! Topic names: a short allowlist of characters, so that no name can escape
//! the topic directory or collide with shmq's own temporary files.

use crate::error::OpenError;

/// Longest topic name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Checks a topic name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters,
/// digits, `.`, `_` and `-`, not starting with `.` (so `.` and `..` and
/// hidden files, where shmq keeps files under construction, are out).
///
/// # Examples
/// ```
/// assert!(shmq::validate_name("md.quotes-v2_eu").is_ok());
/// assert!(shmq::validate_name("../etc/passwd").is_err());
/// assert!(shmq::validate_name("a/b").is_err());
/// assert!(shmq::validate_name("").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), OpenError> {
    let bad = |reason| Err(OpenError::InvalidName { name: name.to_string(), reason });
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 200 bytes");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escapes_and_junk() {
        for n in ["", ".", "..", "../x", "a/b", "/abs", "a\0b", ".hidden", "sp ace", "é", &"x".repeat(201)] {
            assert!(validate_name(n).is_err(), "{n:?} accepted");
        }
        for n in ["a", "A9", "md.quotes", "x_y-z", &"x".repeat(200)] {
            assert!(validate_name(n).is_ok(), "{n:?} rejected");
        }
    }
}
