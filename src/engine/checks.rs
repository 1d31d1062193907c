//! What a response must satisfy, and what is taken from it: the status rule, `expect`
//! (`status`, `contains`, `json`) and `capture`. Runs after the exchange, off the clock; knows
//! nothing about connections or transports.

use super::compile::RequestProg;
use crate::metrics::ErrorKind;

/// Status, expectations and captures (into `vars`); the error kind if any fails.
pub fn check(
    r: &RequestProg,
    status: u16,
    body: Option<&[u8]>,
    vars: &mut [String],
) -> Option<ErrorKind> {
    let status_kind = || {
        if status >= 500 {
            ErrorKind::Http5xx
        } else if status >= 400 {
            ErrorKind::Http4xx
        } else {
            ErrorKind::ExpectFailed
        }
    };
    match &r.expect.status {
        Some(codes) => {
            if !codes.contains(&status) {
                return Some(status_kind());
            }
        }
        None => {
            if status >= 400 {
                return Some(status_kind());
            }
        }
    }
    if !r.needs_body {
        return None;
    }
    let body = body.unwrap_or(&[]);
    if let Some(c) = &r.expect.contains {
        let needle = c.as_bytes();
        if !needle.is_empty() && !body.windows(needle.len()).any(|w| w == needle) {
            return Some(ErrorKind::ExpectFailed);
        }
    }
    if r.expect.json.is_empty() && r.captures.is_empty() {
        return None;
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Some(if r.expect.json.is_empty() {
            ErrorKind::CaptureFailed
        } else {
            ErrorKind::ExpectFailed
        });
    };
    json_checks(r, &doc, vars)
}

/// `expect.json` and `capture` on a parsed document.
pub fn json_checks(
    r: &RequestProg,
    doc: &serde_json::Value,
    vars: &mut [String],
) -> Option<ErrorKind> {
    for (path, want) in &r.expect.json {
        let got = path.query(doc);
        let matches = match got.first() {
            Some(v) => v == want || json_loose_eq(v, want),
            None => false,
        };
        if !matches {
            return Some(ErrorKind::ExpectFailed);
        }
    }
    for (idx, path) in &r.captures {
        match path.query(doc).first() {
            Some(serde_json::Value::String(s)) => vars[*idx] = s.clone(),
            Some(v) => vars[*idx] = v.to_string(),
            None => return Some(ErrorKind::CaptureFailed),
        }
    }
    None
}

/// `expect: { json: { $.id: "42" } }` matches 42 too: YAML authors rarely mean the type.
fn json_loose_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(n), String(s)) | (String(s), Number(n)) => n.to_string() == *s,
        (Bool(x), String(s)) | (String(s), Bool(x)) => x.to_string() == *s,
        _ => false,
    }
}
