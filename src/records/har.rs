//! HAR 1.2: `log.entries[]` with `startedDateTime`, `request {method, url, headers[], postData}`,
//! `response.status` and `pageref`. Entries are numbered from 1 in place of line numbers.

use super::jsonl::{target_of, time_of};
use super::{hop_by_hop, valid_method, valid_target, Malformed, Record};
use serde_json::Value;

/// Every entry of a HAR document, in file order (a document that is not HAR is one malformed
/// "entry 0" saying why).
pub(crate) fn entries(text: &[u8]) -> Vec<Result<Record, Malformed>> {
    let doc: Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            return vec![Err(Malformed {
                line: e.line() as u64,
                reason: format!("not a HAR document: {e}"),
            })]
        }
    };
    let Some(list) = doc
        .get("log")
        .and_then(|l| l.get("entries"))
        .and_then(Value::as_array)
    else {
        return vec![Err(Malformed {
            line: 0,
            reason: "not a HAR document: no log.entries".into(),
        })];
    };
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            entry(e)
                .map_err(|reason| Malformed {
                    line: i as u64 + 1,
                    reason,
                })
                .map(|mut r| {
                    r.line = i as u64 + 1;
                    r
                })
        })
        .collect()
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
}
