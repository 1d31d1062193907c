//! JSON lines: one object per line,
//! `{"time": "2026-11-11T00:00:00.120+08:00" | 1794326400.12, "method": "GET",
//!   "path": "/api/items?page=2" (or "url"), "headers": {"User-Agent": "…"}, "body": "…",
//!   "client": "10.0.0.7", "status": 200}`.
//! A numeric time is Unix seconds (or milliseconds when it is above 10^11).

use super::{valid_method, valid_target, Record};
use serde_json::Value;

/// A time value: an RFC 3339 string or Unix seconds/milliseconds → (seconds, has fraction).
pub(crate) fn time_of(v: &Value) -> Option<(f64, bool)> {
    match v {
        Value::Number(n) => {
            let x = n.as_f64()?;
            let s = if x > 1e11 { x / 1000.0 } else { x };
            (s.is_finite() && s >= 0.0).then_some((s, s.fract() != 0.0 || n.is_f64()))
        }
        Value::String(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s.trim()).ok()?;
            let secs = t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9;
            Some((secs, s.contains('.')))
        }
        _ => None,
    }
}

/// `https://host/p?q` → `/p?q`; a path stays as it is.
pub(crate) fn target_of(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        },
        None => url,
    }
}

pub(crate) fn parse(line: &str) -> Result<Record, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| {
        if e.is_eof() {
            "truncated (the JSON object does not end)".to_string()
        } else {
            format!("not a JSON object: {e}")
        }
    })?;
    let o = v
        .as_object()
        .ok_or_else(|| "not a JSON object".to_string())?;
    let time = o
        .get("time")
        .or_else(|| o.get("timestamp"))
        .ok_or_else(|| "no `time`".to_string())?;
    let (time, subsecond) = time_of(time).ok_or_else(|| format!("bad timestamp `{time}`"))?;
    let method = o
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let target = o
        .get("path")
        .or_else(|| o.get("url"))
        .and_then(Value::as_str)
        .map(target_of)
        .ok_or_else(|| "no `path` or `url`".to_string())?;
    if !valid_method(&method) || !valid_target(target) {
        return Err(format!("not a request: `{method} {target}`"));
    }
    let mut headers = Vec::new();
    match o.get("headers") {
        Some(Value::Object(h)) => {
            for (k, v) in h {
                if let Some(s) = v.as_str() {
                    headers.push((k.clone(), s.to_string()));
                }
            }
        }
        Some(Value::Array(list)) => {
            for item in list {
                if let Some([Value::String(k), Value::String(v)]) =
                    item.as_array().map(Vec::as_slice)
                {
                    headers.push((k.clone(), v.clone()));
                }
            }
        }
        _ => {}
    }
    let body = match o.get("body") {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(Record {
        line: 0,
        time,
        subsecond,
        method,
        target: target.to_string(),
        headers,
        body,
        client: o
            .get("client")
            .or_else(|| o.get("ip"))
            .and_then(Value::as_str)
            .map(str::to_string),
        page: None,
        status: o
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_has_time_request_headers_and_body() {
        let r = parse(r#"{"time": "2026-11-11T00:00:00.120+08:00", "method": "post", "url": "http://shop/api/orders?x=1", "headers": {"User-Agent": "okhttp/4"}, "body": {"sku": 1}, "client": "10.0.0.7"}"#).unwrap();
        assert_eq!(r.time, 1_794_326_400.12);
        assert!(r.subsecond);
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/api/orders?x=1");
        assert_eq!(r.user_agent(), "okhttp/4");
        assert_eq!(r.body, br#"{"sku":1}"#);
        let ms = parse(r#"{"time": 1794326400120, "path": "/a"}"#).unwrap();
        assert!((ms.time - 1_794_326_400.12).abs() < 1e-6);
    }

    #[test]
    fn broken_json_lines_say_what_is_wrong() {
        assert!(parse(r#"{"time": 1, "path": "/a""#)
            .unwrap_err()
            .contains("truncated"));
        assert!(parse(r#"{"time": "yesterday", "path": "/a"}"#)
            .unwrap_err()
            .contains("bad timestamp"));
        assert!(parse(r#"{"time": 1}"#).unwrap_err().contains("no `path`"));
    }
}
