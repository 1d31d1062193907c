//! Server-Sent Events: an HTTP response read as a stream of events, parsed by the WHATWG
//! event-stream rules (HTML Living Standard, "Parsing an event stream"): lines end in CRLF, LF or
//! CR; a leading BOM is dropped; `:` starts a comment; `field: value` loses one space after the
//! colon; `data` lines join with LF; `event` names the event (default `message`); `id` without a
//! NUL sets the last event id; `retry` of digits sets the reconnection time; a blank line
//! dispatches the event unless its data is empty; an event not ended by a blank line when the
//! stream ends is discarded.
//!
//! The request goes out on a hyper connection (HTTP/1.1 or HTTP/2, TLS or not, an emulated
//! network or not) opened by `transport::connect`; this file reads the body frame by frame into
//! the parser and hands each event, with its arrival instant, to the caller.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::{Duration, Instant};

/// What ended a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The caller said so (its condition held), or the deadline came.
    Done,
    /// The server ended the response cleanly.
    Ended,
    /// The stream broke: a reset, a cut chunked body.
    Broken,
    /// No byte came for the idle limit.
    Idle,
}

/// Reads `body` as an event stream into `parser`, handing each event and its arrival instant to
/// `on` until it returns true, `deadline` passes, the body ends, breaks, or stays silent for
/// `idle`. Events after the one that satisfied `on` in the same chunk are not handed over.
pub async fn read(
    body: &mut Incoming,
    idle: Duration,
    deadline: Option<Instant>,
    parser: &mut Parser,
    bytes_in: &mut u64,
    on: &mut impl FnMut(Event, Instant) -> bool,
) -> End {
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let deadline_at = deadline.unwrap_or(far);
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = tokio::time::sleep(idle) => return End::Idle,
            _ = tokio::time::sleep_until(deadline_at.into()) => return End::Done,
        };
        match frame {
            None => return End::Ended,
            Some(Err(_)) => return End::Broken,
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    *bytes_in += d.len() as u64;
                    let at = Instant::now();
                    let mut done = false;
                    parser.feed(d, &mut |e| {
                        if !done {
                            done = on(e, at);
                        }
                    });
                    if done {
                        return End::Done;
                    }
                }
            }
        }
    }
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event` field, or `message`.
    pub name: String,
    pub data: String,
    /// The last event id in force when it was dispatched.
    pub id: String,
}

/// The event-stream parser: bytes in, events out.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of an incomplete line.
    line: Vec<u8>,
    /// The previous chunk ended in CR: a LF starting the next one belongs to it.
    after_cr: bool,
    /// Still at the very start of the stream (a BOM may follow).
    at_start: bool,
    event: String,
    data: String,
    last_id: String,
    /// The `retry` value last set, ms.
    pub retry_ms: Option<u64>,
}

impl Parser {
    pub fn new() -> Parser {
        Parser {
            at_start: true,
            ..Parser::default()
        }
    }

    /// Feeds bytes; calls `out` for every event they complete.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut impl FnMut(Event)) {
        if self.at_start {
            // The BOM may arrive split over chunks: wait for three bytes or a mismatch.
            self.line.extend_from_slice(bytes);
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let n = self.line.len().min(3);
            if self.line[..n] != BOM[..n] {
                self.at_start = false;
            } else if self.line.len() >= 3 {
                self.line.drain(..3);
                self.at_start = false;
            } else {
                return;
            }
            let pending = std::mem::take(&mut self.line);
            self.feed_lines(&pending, out);
            return;
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        self.feed_lines(bytes, out);
    }

    fn feed_lines(&mut self, bytes: &[u8], out: &mut impl FnMut(Event)) {
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i..].iter().position(|b| *b == b'\n' || *b == b'\r') {
                None => {
                    self.line.extend_from_slice(&bytes[i..]);
                    return;
                }
                Some(k) => {
                    self.line.extend_from_slice(&bytes[i..i + k]);
                    let end = i + k;
                    i = end + 1;
                    if bytes[end] == b'\r' {
                        if i < bytes.len() {
                            if bytes[i] == b'\n' {
                                i += 1;
                            }
                        } else {
                            self.after_cr = true;
                        }
                    }
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, out);
                    self.line = line;
                    self.line.clear();
                }
            }
        }
    }

    fn line_done(&mut self, line: &[u8], out: &mut impl FnMut(Event)) {
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.find(':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut impl FnMut(Event)) {
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        let name = std::mem::take(&mut self.event);
        out(Event {
            name: if name.is_empty() {
                "message".into()
            } else {
                name
            },
            data,
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut got = Vec::new();
        for c in chunks {
            p.feed(c, &mut |e| got.push(e));
        }
        got
    }

    fn ev(name: &str, data: &str, id: &str) -> Event {
        Event {
            name: name.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    #[test]
    fn events_follow_the_whatwg_rules() {
        let got = parse(&[
            b"\xEF\xBB\xBFdata: one\n\n",
            b": a comment\nevent: token\ndata:two\ndata:  three\nid: 7\n\n",
            b"data\n\nevent: empty\n\nretry: 1500\ndata: last\n\n",
        ]);
        assert_eq!(
            got,
            vec![
                ev("message", "one", ""),
                ev("token", "two\n three", "7"),
                ev("message", "", "7"),
                ev("message", "last", "7"),
            ]
        );
    }

    #[test]
    fn line_ends_may_be_cr_lf_or_crlf_split_anywhere() {
        let text: &[u8] = b"data: a\r\n\r\ndata: b\r\rdata: c\n\n";
        let whole = parse(&[text]);
        assert_eq!(
            whole,
            vec![
                ev("message", "a", ""),
                ev("message", "b", ""),
                ev("message", "c", "")
            ]
        );
        for cut in 1..text.len() {
            assert_eq!(
                parse(&[&text[..cut], &text[cut..]]),
                whole,
                "split at {cut}"
            );
        }
        let bom: &[u8] = b"\xEF\xBB\xBFdata: x\n\n";
        for cut in 1..4 {
            assert_eq!(
                parse(&[&bom[..cut], &bom[cut..]]),
                vec![ev("message", "x", "")]
            );
        }
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_dispatched() {
        assert_eq!(
            parse(&[b"data: done\n\ndata: cut"]),
            vec![ev("message", "done", "")]
        );
        let mut p = Parser::new();
        p.feed(b"retry: x1\nretry: 250\n", &mut |_| {});
        assert_eq!(p.retry_ms, Some(250));
    }
}
