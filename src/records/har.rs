//! HAR 1.2: `log.entries[]` with `startedDateTime`, `request {method, url, headers[], postData}`,
//! `response.status` and `pageref`. Entries are numbered from 1 in place of line numbers, and
//! streamed: one entry in memory at a time, whatever the file's size.

use super::jsonl::{target_of, time_of};
use super::{hop_by_hop, valid_method, valid_target, Malformed, Record};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::io::Read;

/// Every entry of a HAR document, in file order (a document that is not HAR ends with one
/// malformed record saying why).
#[cfg(test)]
pub(crate) fn entries(text: &[u8]) -> Vec<Result<Record, Malformed>> {
    let mut out = Vec::new();
    stream(text, |r| {
        out.push(r);
        true
    });
    out
}

/// Reads the entries of a HAR document from `r` one at a time and hands each to `each`, as a
/// record or a malformed entry numbered from 1: an entry is parsed, turned into a record and
/// dropped before the next is read, so a HAR file of any size takes the memory of one entry.
/// Stops when `each` returns false. A document that is not HAR, or breaks off, ends with one
/// malformed record saying why (the entries before it stand).
pub(crate) fn stream(r: impl Read, mut each: impl FnMut(Result<Record, Malformed>) -> bool) {
    let mut seen = Seen::default();
    let mut de = serde_json::Deserializer::from_reader(r);
    let result = serde::de::DeserializeSeed::deserialize(
        Walk {
            path: &["log", "entries"],
            each: &mut each,
            seen: &mut seen,
        },
        &mut de,
    );
    let why = match result {
        Ok(()) if !seen.entries => Some((0, "not a HAR document: no log.entries".to_string())),
        Ok(()) => None,
        Err(_) if seen.stopped => None,
        Err(e) => Some((e.line() as u64, format!("not a HAR document: {e}"))),
    };
    if let Some((line, reason)) = why {
        each(Err(Malformed { line, reason }));
    }
}

#[derive(Default)]
struct Seen {
    entries: bool,
    stopped: bool,
    n: u64,
}

/// Walks `path` (`["log", "entries"]`) down the document's objects, skipping every other key
/// unread, and visits the list at its end entry by entry.
struct Walk<'a, F> {
    path: &'static [&'static str],
    each: &'a mut F,
    seen: &'a mut Seen,
}

impl<'de, F: FnMut(Result<Record, Malformed>) -> bool> DeserializeSeed<'de> for Walk<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.path.is_empty() {
            true => d.deserialize_seq(self),
            false => d.deserialize_map(self),
        }
    }
}

impl<'de, F: FnMut(Result<Record, Malformed>) -> bool> Visitor<'de> for Walk<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.path.first() {
            Some(key) => write!(f, "a HAR object with `{key}`"),
            None => f.write_str("the HAR `log.entries` list"),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Walk { path, each, seen } = self;
        while let Some(key) = map.next_key::<String>()? {
            if key == path[0] {
                seen.entries |= path.len() == 1;
                map.next_value_seed(Walk {
                    path: &path[1..],
                    each: &mut *each,
                    seen: &mut *seen,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Walk { each, seen, .. } = self;
        while let Some(e) = seq.next_element::<Value>()? {
            seen.n += 1;
            let n = seen.n;
            let r = entry(&e)
                .map(|mut r| {
                    r.line = n;
                    r
                })
                .map_err(|reason| Malformed { line: n, reason });
            if !each(r) {
                seen.stopped = true;
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

fn entry(e: &Value) -> Result<Record, String> {
    let started = e
        .get("startedDateTime")
        .ok_or_else(|| "no startedDateTime".to_string())?;
    let (time, _) = time_of(started).ok_or_else(|| format!("bad timestamp `{started}`"))?;
    let req = e.get("request").ok_or_else(|| "no request".to_string())?;
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let url = req.get("url").and_then(Value::as_str).unwrap_or("");
    let target = target_of(url);
    if !valid_method(&method) || !valid_target(target) {
        return Err(format!("not a request: `{method} {url}`"));
    }
    let mut headers = Vec::new();
    if let Some(list) = req.get("headers").and_then(Value::as_array) {
        for h in list {
            let (Some(k), Some(v)) = (
                h.get("name").and_then(Value::as_str),
                h.get("value").and_then(Value::as_str),
            ) else {
                continue;
            };
            if !hop_by_hop(k) {
                headers.push((k.to_string(), v.to_string()));
            }
        }
    }
    let body = req
        .get("postData")
        .and_then(|p| p.get("text"))
        .and_then(Value::as_str)
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default();
    Ok(Record {
        line: 0,
        time,
        subsecond: true,
        method,
        target: target.to_string(),
        headers,
        body,
        client: None,
        page: e.get("pageref").and_then(Value::as_str).map(str::to_string),
        status: e
            .get("response")
            .and_then(|r| r.get("status"))
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn har_entries_become_records_without_hop_by_hop_headers() {
        let text = br#"{"log": {"version": "1.2", "pages": [{"id": "page_1"}], "entries": [
          {"pageref": "page_1", "startedDateTime": "2026-11-11T00:00:00.500+08:00",
           "request": {"method": "POST", "url": "http://127.0.0.1:8080/api/cart?x=1",
             "headers": [{"name": "Host", "value": "x"}, {"name": "User-Agent", "value": "Mozilla/5.0"},
                         {"name": ":authority", "value": "x"}],
             "postData": {"mimeType": "application/json", "text": "{\"sku\":1}"}},
           "response": {"status": 200}},
          {"startedDateTime": "nope", "request": {"method": "GET", "url": "/"}}]}}"#;
        let all = entries(text);
        let r = all[0].as_ref().unwrap();
        assert_eq!(r.line, 1);
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/api/cart?x=1");
        assert_eq!(
            r.headers,
            [("User-Agent".to_string(), "Mozilla/5.0".to_string())]
        );
        assert_eq!(r.body, br#"{"sku":1}"#);
        assert_eq!(r.page.as_deref(), Some("page_1"));
        assert_eq!(r.status, Some(200));
        assert_eq!(r.time, 1_794_326_400.5);
        let bad = all[1].as_ref().unwrap_err();
        assert_eq!(bad.line, 2);
        assert!(bad.reason.contains("bad timestamp"));
    }

    #[test]
    fn a_har_cut_short_keeps_the_entries_before_the_cut() {
        let one = r#"{"startedDateTime": "2026-11-11T00:00:00Z", "request": {"method": "GET", "url": "/a"}}"#;
        let text = format!(r#"{{"log": {{"entries": [{one}, {one}, {{"startedDate"#);
        let all = entries(text.as_bytes());
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0].as_ref().unwrap().line, 1);
        assert_eq!(all[1].as_ref().unwrap().line, 2);
        let cut = all[2].as_ref().unwrap_err();
        assert!(cut.reason.starts_with("not a HAR document: EOF"), "{cut:?}");
        // Not HAR at all, and HAR without entries: one malformed record each.
        assert_eq!(entries(b"[1, 2]").len(), 1);
        let none = entries(br#"{"log": {"pages": []}}"#);
        assert_eq!(
            none[0].as_ref().unwrap_err().reason,
            "not a HAR document: no log.entries"
        );
    }

    #[test]
    fn streaming_stops_when_asked() {
        let one = r#"{"startedDateTime": "2026-11-11T00:00:00Z", "request": {"method": "GET", "url": "/a"}}"#;
        let text = format!(r#"{{"log": {{"entries": [{one}, {one}, {one}]}}}}"#);
        let mut n = 0;
        stream(text.as_bytes(), |_| {
            n += 1;
            n < 2
        });
        assert_eq!(n, 2, "nothing after the stop, and no error record for it");
    }
}
