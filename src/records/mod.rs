//! Recorded requests read from a file: nginx/Apache combined access logs, JSON lines and HAR.
//!
//! This part owns the three formats, guessing the format from the content, reading `.gz` files
//! directly, and folding paths into request names (`/api/items/123` → `GET /api/items/:id`, or a
//! `names:` pattern like `/api/items/{id}`). Logs and JSON lines are streamed line by line in
//! constant memory; a HAR file is one JSON document, parsed entry by entry on a thread of its own.
//! A record that cannot be read is a `Malformed` with its line number and the reason, never a
//! panic. What to do with records (replay them, write a scenario from them) is not this part's
//! business.

mod combined;
mod har;
mod jsonl;
pub mod names;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub use names::Names;

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// nginx/Apache combined (or common) access log.
    Combined,
    /// One JSON object per line: time, method, path, headers, body.
    Jsonl,
    /// An HTTP Archive (browser developer tools "Save all as HAR").
    Har,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "combined" => Ok(Format::Combined),
            "jsonl" => Ok(Format::Jsonl),
            "har" => Ok(Format::Har),
            _ => Err(format!(
                "`{s}` is not a format: expected combined, jsonl or har"
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Combined => "combined",
            Format::Jsonl => "jsonl",
            Format::Har => "har",
        }
    }
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line of the file (for HAR: the entry number).
    pub line: u64,
    /// Seconds since the Unix epoch.
    pub time: f64,
    /// Whether `time` has a fraction (combined logs usually have whole seconds).
    pub subsecond: bool,
    pub method: String,
    /// Path and query, as requested (`/api/items?page=2`).
    pub target: String,
    /// Request headers as recorded (combined logs: Referer and User-Agent).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address (combined: the remote address; jsonl: `client` or `ip`).
    pub client: Option<String>,
    /// The HAR page the request belongs to.
    pub page: Option<String>,
    pub status: Option<u16>,
}

impl Record {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn user_agent(&self) -> &str {
        self.header("user-agent").unwrap_or("")
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }
}

/// A line that is not a record, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub line: u64,
    pub reason: String,
}

/// Opens a file for reading, through gzip when it starts with the gzip magic bytes.
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, String> {
    let mut f = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).unwrap_or(0);
    let f = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(f),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, f)))
    }
}

/// Guesses the format from the first non-empty bytes: `{` then `"log"` is HAR, `{` is JSON
/// lines, anything else a combined log.
pub fn sniff(path: &Path) -> Result<Format, String> {
    let mut r = open(path)?;
    let mut head = Vec::new();
    let _ = r.by_ref().take(4096).read_to_end(&mut head);
    let text = String::from_utf8_lossy(&head);
    let t = text.trim_start();
    if t.starts_with('{') {
        let compact: String = t.chars().filter(|c| !c.is_whitespace()).take(12).collect();
        if compact.starts_with("{\"log\"") {
            return Ok(Format::Har);
        }
        return Ok(Format::Jsonl);
    }
    Ok(Format::Combined)
}

/// The records of a file, in file order, each a record or a malformed line.
pub fn read(path: &Path, format: Format) -> Result<Reader, String> {
    let inner = match format {
        Format::Har => {
            // The entries are parsed on a thread of their own and handed over a few at a time:
            // the document is never held whole.
            let r = open(path)?;
            let (tx, rx) = std::sync::mpsc::sync_channel(256);
            std::thread::Builder::new()
                .name("flashcrowd-har".into())
                .spawn(move || har::stream(r, |rec| tx.send(rec).is_ok()))
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Inner::Har(rx)
        }
        Format::Combined | Format::Jsonl => Inner::Lines {
            r: open(path)?,
            buf: Vec::with_capacity(512),
            line: 0,
            format,
        },
    };
    Ok(Reader { inner })
}

pub struct Reader {
    inner: Inner,
}

enum Inner {
    Lines {
        r: Box<dyn BufRead + Send>,
        buf: Vec<u8>,
        line: u64,
        format: Format,
    },
    Har(std::sync::mpsc::Receiver<Result<Record, Malformed>>),
}

impl Iterator for Reader {
    type Item = Result<Record, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Har(rx) => rx.recv().ok(),
            Inner::Lines {
                r,
                buf,
                line,
                format,
            } => loop {
                buf.clear();
                match r.read_until(b'\n', buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => {
                        *line += 1;
                        let m = Malformed {
                            line: *line,
                            reason: format!("unreadable: {e}"),
                        };
                        // A broken stream (a truncated .gz) ends the file after saying so.
                        *r = Box::new(std::io::empty());
                        return Some(Err(m));
                    }
                }
                *line += 1;
                let mut b: &[u8] = buf;
                while let Some((last, rest)) = b.split_last() {
                    if *last == b'\n' || *last == b'\r' {
                        b = rest;
                    } else {
                        break;
                    }
                }
                if b.iter().all(|c| c.is_ascii_whitespace()) {
                    continue;
                }
                let n = *line;
                let bad = |reason: &str| {
                    Some(Err(Malformed {
                        line: n,
                        reason: reason.to_string(),
                    }))
                };
                let Ok(text) = std::str::from_utf8(b) else {
                    return bad("binary junk (not UTF-8 text)");
                };
                if text.bytes().any(|c| c < 0x20 && c != b'\t' || c == 0x7f) {
                    return bad("binary junk (control characters)");
                }
                let parsed = match format {
                    Format::Combined => combined::parse(text),
                    _ => jsonl::parse(text),
                };
                return Some(match parsed {
                    Ok(mut rec) => {
                        rec.line = n;
                        Ok(rec)
                    }
                    Err(reason) => Err(Malformed { line: n, reason }),
                });
            },
        }
    }
}

/// A method is a token of capital letters (`GET`, `PROPFIND`).
fn valid_method(m: &str) -> bool {
    !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase())
}

/// A request target is an absolute path without spaces or control characters.
fn valid_target(t: &str) -> bool {
    t.starts_with('/') && !t.bytes().any(|b| b <= b' ' || b == 0x7f)
}

/// Headers a replay never copies from a recording: the connection's own business.
pub fn hop_by_hop(name: &str) -> bool {
    const SKIP: &[&str] = &[
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
        "accept-encoding",
    ];
    name.starts_with(':') || SKIP.iter().any(|s| name.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text).unwrap();
        f
    }

    #[test]
    fn malformed_lines_are_named_by_line_and_reason() {
        let f = file(
            b"127.0.0.1 - - [11/Nov/2026:00:00:00 +0800] \"GET /a HTTP/1.1\" 200 5 \"-\" \"ua\"\n\
              127.0.0.1 - - [11/Nov/2026:00:00:00 +0800] \"GET /b HTT\n\
              \n\
              127.0.0.1 - - [31/Foo/2026:00:00:00 +0800] \"GET /c HTTP/1.1\" 200 5 \"-\" \"ua\"\n\
              \x00\x01\x02\xff\xfe junk\n\
              127.0.0.1 - - [11/Nov/2026:00:00:01 +0800] \"GET /d HTTP/1.1\" 200 5 \"-\" \"ua\"\n",
        );
        let all: Vec<_> = read(f.path(), Format::Combined).unwrap().collect();
        assert_eq!(all.len(), 5);
        let bad: Vec<u64> = all
            .iter()
            .filter_map(|r| r.as_ref().err().map(|m| m.line))
            .collect();
        assert_eq!(bad, [2, 4, 5]);
        let good: Vec<&str> = all
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|r| r.target.as_str()))
            .collect();
        assert_eq!(good, ["/a", "/d"]);
        assert!(all[2]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("bad timestamp"));
        assert!(all[3].as_ref().unwrap_err().reason.contains("binary"));
    }

    #[test]
    fn gzip_files_are_read_directly_and_formats_sniffed() {
        let line = "{\"time\": 1.5, \"method\": \"GET\", \"path\": \"/x\"}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(line.as_bytes()).unwrap();
        let f = file(&gz.finish().unwrap());
        assert_eq!(sniff(f.path()).unwrap(), Format::Jsonl);
        let recs: Vec<_> = read(f.path(), Format::Jsonl).unwrap().collect();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].as_ref().unwrap().time, 1.5);
        let har = file(b"  {\n \"log\": {\"entries\": []}}");
        assert_eq!(sniff(har.path()).unwrap(), Format::Har);
        let log = file(b"1.2.3.4 - - [11/Nov/2026:00:00:00 +0800] \"GET / HTTP/1.1\" 200 1\n");
        assert_eq!(sniff(log.path()).unwrap(), Format::Combined);
    }
}
