//! The nginx/Apache combined log format (and common, its prefix):
//! `HOST IDENT USER [DD/Mon/YYYY:HH:MM:SS[.fff] ±HHMM] "METHOD TARGET PROTO" STATUS BYTES
//! ["REFERER" "USER-AGENT"]`.

use super::{valid_method, valid_target, Record};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `11/Nov/2026:00:00:00 +0800` (seconds may carry a fraction) → (Unix seconds, has fraction).
pub(crate) fn parse_time(t: &str) -> Option<(f64, bool)> {
    let (stamp, zone) = t.split_once(' ')?;
    let mut it = stamp.splitn(3, '/');
    let day = num(it.next()?)?;
    let mon_s = it.next()?;
    let mon = MONTHS.iter().position(|m| *m == mon_s)? as i64 + 1;
    let rest = it.next()?;
    let mut hms = rest.split(':');
    let year = num(hms.next()?)?;
    let h = num(hms.next()?)?;
    let mi = num(hms.next()?)?;
    let sec_s = hms.next()?;
    if hms.next().is_some() {
        return None;
    }
    let (sec, frac, subsecond) = match sec_s.split_once('.') {
        Some((s, f)) => {
            num(f)?;
            (num(s)?, format!("0.{f}").parse::<f64>().ok()?, true)
        }
        None => (num(sec_s)?, 0.0, false),
    };
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let zb = zone.as_bytes();
    if zb.len() != 5 || !(zb[0] == b'+' || zb[0] == b'-') {
        return None;
    }
    let zh = num(&zone[1..3])?;
    let zm = num(&zone[3..5])?;
    let off = (zh * 3600 + zm * 60) * if zb[0] == b'-' { -1 } else { 1 };
    let days = days_from_civil(year, mon, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - off;
    Some((secs as f64 + frac, subsecond))
}

/// A quoted field starting at `s[0] == '"'`, with `\"` escapes: (content, rest after the quote).
fn quoted(s: &str) -> Option<(String, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut out = String::new();
    let mut i = 1;
    let mut start = 1;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => {
                out.push_str(&s[start..i]);
                out.push(b[i + 1] as char);
                i += 2;
                start = i;
            }
            b'"' => {
                out.push_str(&s[start..i]);
                return Some((out, &s[i + 1..]));
            }
            _ => i += 1,
        }
    }
    None
}

pub(crate) fn parse(line: &str) -> Result<Record, String> {
    let truncated = || "truncated (the line ends inside a field)".to_string();
    let mut rest = line;
    let mut word = || -> Option<&str> {
        let (w, r) = rest.split_once(' ')?;
        rest = r;
        Some(w)
    };
    let host = word().ok_or_else(truncated)?.to_string();
    let _ident = word().ok_or_else(truncated)?;
    let _user = word().ok_or_else(truncated)?;
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix('[')
        .ok_or_else(|| "no [timestamp] after the client address".to_string())?;
    let (stamp, rest) = rest.split_once(']').ok_or_else(truncated)?;
    let (time, subsecond) =
        parse_time(stamp).ok_or_else(|| format!("bad timestamp `[{stamp}]`"))?;
    let (request, rest) = quoted(rest.trim_start()).ok_or_else(truncated)?;
    let mut parts = request.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    if !valid_method(method) || !valid_target(target) {
        return Err(format!("not a request line: `{}`", shorten(&request)));
    }
    let mut fields = rest.trim_start().splitn(3, ' ');
    let status = fields.next().and_then(|s| s.parse::<u16>().ok());
    let _bytes = fields.next();
    let mut headers = Vec::new();
    if let Some(tail) = fields.next() {
        let (referer, tail) = quoted(tail.trim_start()).ok_or_else(truncated)?;
        let (ua, _) = quoted(tail.trim_start()).ok_or_else(truncated)?;
        if referer != "-" && !referer.is_empty() {
            headers.push(("Referer".to_string(), referer));
        }
        if ua != "-" && !ua.is_empty() {
            headers.push(("User-Agent".to_string(), ua));
        }
    } else if status.is_none() {
        return Err(truncated());
    }
    Ok(Record {
        line: 0,
        time,
        subsecond,
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
        client: Some(host),
        page: None,
        status,
    })
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_combined_line_has_its_request_time_and_user_agent() {
        let r = parse(
            "10.1.2.3 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif?x=1 HTTP/1.0\" 200 2326 \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"",
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/apache_pb.gif?x=1");
        assert_eq!(r.path(), "/apache_pb.gif");
        assert_eq!(r.time, 971_211_336.0);
        assert!(!r.subsecond);
        assert_eq!(r.user_agent(), "Mozilla/4.08 [en] (Win98; I ;Nav)");
        assert_eq!(r.client.as_deref(), Some("10.1.2.3"));
        assert_eq!(r.status, Some(200));
    }

    #[test]
    fn common_format_and_fractional_seconds_are_read() {
        let r =
            parse("::1 - - [11/Nov/2026:00:00:00.250 +0800] \"POST /api/orders HTTP/1.1\" 201 17")
                .unwrap();
        assert_eq!(r.method, "POST");
        assert!(r.subsecond);
        // 2026-11-10T16:00:00Z
        assert_eq!(r.time, 1_794_326_400.25);
        assert!(r.headers.is_empty());
    }

    #[test]
    fn broken_lines_say_what_is_wrong() {
        assert!(
            parse("1.2.3.4 - - [11/Nov/2026:00:00:00 +0800] \"GET /a HTT")
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            parse("1.2.3.4 - - [11/Nov/2026:25:00:00 +0800] \"GET /a HTTP/1.1\" 200 1")
                .unwrap_err()
                .contains("bad timestamp")
        );
        assert!(
            parse("1.2.3.4 - - [11/Nov/2026:00:00:00 +0800] \"\\x16\\x03\\x01\" 400 0")
                .unwrap_err()
                .contains("not a request line")
        );
    }
}
