//! The hand-written `include/shmq.h` (which keeps the documentation) must
//! declare exactly what the Rust side exports. cbindgen generates a header
//! from this crate's source; every prototype (name, return type, parameter
//! types), every `#[repr(C)]` struct (field types and names, in order),
//! every opaque handle and every `SHMQ_*` constant of the two must agree.
//! Parameter names and comments may differ. A drift in either direction
//! fails, naming what differs.

use std::collections::BTreeMap;

/// One header's declarations, normalised.
#[derive(Debug, Default, PartialEq)]
struct Decls {
    /// name -> "ret(param types)".
    functions: BTreeMap<String, String>,
    /// name -> "type field; type field; ...".
    structs: BTreeMap<String, String>,
    /// Opaque `typedef struct X X;` names.
    opaque: Vec<String>,
    /// `SHMQ_*` name -> value.
    constants: BTreeMap<String, String>,
}

/// Removes `/* */` and `//` comments.
fn strip_comments(src: &str) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

/// A C type written one way: single spaces, `*` attached to the type, no
/// `struct` keyword (every struct is typedef'd to its own name).
fn norm_type(t: &str) -> String {
    let t = t.split_whitespace().filter(|w| *w != "struct").collect::<Vec<_>>().join(" ");
    t.replace(" *", "*").replace("* ", "*").trim().to_string()
}

/// A parameter's type: the declaration without its name.
fn param_type(p: &str) -> String {
    let p = p.trim();
    if p == "void" || p.is_empty() {
        return String::new();
    }
    let cut = p.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    norm_type(&p[..cut])
}

fn parse(header: &str) -> Decls {
    // Continued lines (a macro over several lines) joined into one.
    let src = strip_comments(header).replace("\\\n", " ");
    let mut d = Decls::default();
    for line in src.lines() {
        let l = line.trim();
        if let Some(def) = l.strip_prefix("#define SHMQ_") {
            let mut it = def.splitn(2, char::is_whitespace);
            let head = it.next().unwrap_or_default();
            if head.contains('(') {
                continue; // a function-like macro (SHMQ_MSG_VALUE): header-only, nothing exported
            }
            let name = format!("SHMQ_{head}");
            let value: String = it.next().unwrap_or_default().chars().filter(|c| !"() ".contains(*c)).collect();
            let value = value.trim_end_matches(['u', 'U']).to_string();
            if name != "SHMQ_H" {
                d.constants.insert(name, value);
            }
        }
    }
    // Declarations end with ';' (structs with '}' NAME ';').
    let flat = src.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join(" ");
    let mut rest = flat.as_str();
    while let Some(end) = rest.find(';') {
        let mut decl = rest[..end].trim().to_string();
        rest = &rest[end + 1..];
        for prefix in ["extern \"C\" {", "}"] {
            if let Some(s) = decl.strip_prefix(prefix) {
                decl = s.trim().to_string();
            }
        }
        if let Some(body_start) = decl.find('{') {
            // `typedef struct NAME { fields` up to the first field; the
            // fields follow as further ';'-terminated pieces.
            let name =
                decl[..body_start].trim().trim_start_matches("typedef").trim().trim_start_matches("struct").trim();
            let mut fields = vec![decl[body_start + 1..].trim().to_string()];
            while let Some(e) = rest.find(';') {
                let piece = rest[..e].trim().to_string();
                rest = &rest[e + 1..];
                if piece.starts_with('}') {
                    break;
                }
                fields.push(piece);
            }
            let fields: Vec<String> = fields
                .iter()
                .filter(|f| !f.is_empty())
                .map(|f| {
                    let cut = f.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
                    format!("{} {}", norm_type(&f[..cut]), &f[cut..])
                })
                .collect();
            d.structs.insert(name.to_string(), fields.join("; "));
        } else if let Some(open) = decl.find('(') {
            let head = &decl[..open];
            let cut = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
            let name = head[cut..].to_string();
            let params = decl[open + 1..].trim_end().trim_end_matches(')');
            let types: Vec<String> = params.split(',').map(param_type).filter(|t| !t.is_empty()).collect();
            d.functions.insert(name, format!("{}({})", norm_type(&head[..cut]), types.join(", ")));
        } else if let Some(t) = decl.strip_prefix("typedef struct ") {
            let parts: Vec<&str> = t.split_whitespace().collect();
            if parts.len() == 2 && parts[0] == parts[1] {
                d.opaque.push(parts[0].to_string());
            }
        }
    }
    d.opaque.sort();
    d
}

fn generated() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config {
        language: cbindgen::Language::C,
        style: cbindgen::Style::Both,
        usize_is_size_t: true,
        ..Default::default()
    };
    let bindings = cbindgen::Builder::new().with_crate(dir).with_config(config).generate().expect("cbindgen");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("utf-8")
}

/// What differs between two maps, as readable lines.
fn diff(what: &str, rust: &BTreeMap<String, String>, c: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in rust {
        match c.get(k) {
            None => out.push(format!("{what} {k} is exported by Rust but missing from shmq.h: {v}")),
            Some(w) if w != v => out.push(format!("{what} {k} differs:\n    Rust:   {v}\n    shmq.h: {w}")),
            _ => {}
        }
    }
    for (k, w) in c {
        if !rust.contains_key(k) {
            out.push(format!("{what} {k} is in shmq.h but not exported by Rust: {w}"));
        }
    }
    out
}

#[test]
fn shmq_h_declares_exactly_what_the_rust_side_exports() {
    let hand = parse(include_str!("../include/shmq.h"));
    let gen = parse(&generated());
    assert!(
        gen.functions.len() > 30 && gen.structs.len() == 4 && gen.opaque.len() == 3 && gen.constants.len() >= 9,
        "cbindgen saw the whole crate: {gen:#?}"
    );
    let mut problems = diff("function", &gen.functions, &hand.functions);
    problems.extend(diff("struct", &gen.structs, &hand.structs));
    problems.extend(diff("constant", &gen.constants, &hand.constants));
    if gen.opaque != hand.opaque {
        problems.push(format!("opaque handles: Rust {:?}, shmq.h {:?}", gen.opaque, hand.opaque));
    }
    assert!(problems.is_empty(), "shmq.h has drifted from ffi/src/lib.rs:\n{}", problems.join("\n"));
}

#[test]
fn the_comparison_notices_drift() {
    // The parser must see a changed parameter type, a missing function and
    // a changed constant, or the test above could pass on anything.
    let hand = include_str!("../include/shmq.h");
    let base = parse(hand);
    let changed = parse(&hand.replace(
        "int shmq_try_publish(shmq_producer *producer, const void *data, size_t len);",
        "int shmq_try_publish(shmq_producer *producer, void *data, uint32_t len);",
    ));
    assert_ne!(base.functions.get("shmq_try_publish"), changed.functions.get("shmq_try_publish"));
    let dropped = parse(&hand.replace("int shmq_abort(shmq_producer *producer);", ""));
    assert!(base.functions.contains_key("shmq_abort") && !dropped.functions.contains_key("shmq_abort"));
    let renumbered = parse(&hand.replace("#define SHMQ_FROM_TIME 3", "#define SHMQ_FROM_TIME 4"));
    assert_ne!(base.constants, renumbered.constants);
    let field = parse(&hand.replace("uint64_t seq;          /* sequence", "uint32_t seq;          /* sequence"));
    assert_ne!(base.structs, field.structs);
}
