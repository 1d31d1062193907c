//! The lean transport's response-head parser: one left-to-right pass over the bytes that
//! accepts exactly what `httparse::Response::parse` accepts with its default configuration
//! (64 header slots), and keeps only what the lean exchange needs: the status, the version, and
//! the three headers that frame the body (`Content-Length`, `Transfer-Encoding`, `Connection`).
//! No header slots are filled (httparse initialised 64 of them for every response); header
//! values are scanned eight bytes at a time.
//!
//! "Exactly": for every input the outcome is the one httparse gives, so a response is complete,
//! incomplete or malformed at the same byte as before (leading empty lines skipped; `HTTP/1.0`
//! or `HTTP/1.1`, one space, three digits; a reason phrase of HTAB, SP, VCHAR and obs-text;
//! header names of token characters followed directly by `:`; values of HTAB, SP, VCHAR and
//! obs-text, trimmed of SP and HTAB; lines ending in CRLF or a bare LF; no obsolete line
//! folding; a 65th header is an error). The tests below hold it to httparse on exact inputs,
//! every prefix of them, and single-byte mutations of them.

/// How the body of a response is delimited, as its headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` (the first one that parses, unless `chunked` came before it; a later
    /// one replaces it).
    Length(u64),
    /// `Transfer-Encoding` with a `chunked` coding.
    Chunked,
    /// Neither: the body runs until the server closes.
    UntilClose,
}

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, its final empty line included.
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// The connection closes after this response: HTTP/1.0 unless `Connection: keep-alive`,
    /// or `Connection: close`.
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    Complete(Head),
    /// More bytes are needed.
    Partial,
    /// Not a valid response head (httparse would fail it).
    Invalid,
    /// A valid head whose `Content-Length` is not a number.
    BadLength,
}

const MAX_HEADERS: usize = 64;

const TOKEN: u8 = 1;
const VALUE: u8 = 2;

/// Byte classes: TOKEN (a header name's characters: RFC 9110 tchar) and VALUE (a header
/// value's or reason phrase's: HTAB, SP, VCHAR, obs-text), as httparse's maps.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let token = matches!(b,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' |
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' |
            b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        let value = matches!(b, b'\t' | b' '..=0x7e | 0x80..=0xff);
        t[i] = (if token { TOKEN } else { 0 }) | (if value { VALUE } else { 0 });
        i += 1;
    }
    t
};

/// The length of the run of VALUE bytes at the start of `b`: eight at a time while no byte is
/// below 0x20 or DEL (a tab, below 0x20 but allowed, is stepped over one byte at a time).
#[inline(always)]
fn value_run(b: &[u8]) -> usize {
    const LOW: u64 = u64::from_ne_bytes([0x20; 8]);
    const ONE: u64 = u64::from_ne_bytes([0x01; 8]);
    const DEL: u64 = u64::from_ne_bytes([0x7f; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut i = 0;
    loop {
        while i + 8 <= b.len() {
            let x = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
            let lt = x.wrapping_sub(LOW) & !x;
            let d = x ^ DEL;
            let del = d.wrapping_sub(ONE) & !d;
            let m = (lt | del) & HIGH;
            if m != 0 {
                // The lowest flagged byte is exact (borrows only run upwards).
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match b.get(i) {
            Some(&c) if CLASS[c as usize] & VALUE != 0 => i += 1,
            _ => return i,
        }
    }
}

fn eq_name(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.eq_ignore_ascii_case(lower)
}

/// Parses a response head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parse {
    use Parse::{Invalid, Partial};
    let n = buf.len();
    let mut i = 0;
    // Empty lines before the status line.
    loop {
        match buf.get(i) {
            None => return Partial,
            Some(b'\r') => match buf.get(i + 1) {
                None => return Partial,
                Some(b'\n') => i += 2,
                Some(_) => return Invalid,
            },
            Some(b'\n') => i += 1,
            Some(_) => break,
        }
    }
    // The version.
    let http10 = if n - i >= 8 {
        match &buf[i..i + 8] {
            b"HTTP/1.1" => false,
            b"HTTP/1.0" => true,
            _ => return Invalid,
        }
    } else {
        // Fewer than 8 bytes: incomplete if they begin like `HTTP/1.`.
        let have = &buf[i..];
        let k = have.len().min(7);
        return if have[..k] == b"HTTP/1."[..k] {
            Partial
        } else {
            Invalid
        };
    };
    i += 8;
    // One space, three digits.
    match buf.get(i) {
        None => return Partial,
        Some(b' ') => i += 1,
        Some(_) => return Invalid,
    }
    let mut status: u16 = 0;
    for _ in 0..3 {
        match buf.get(i) {
            None => return Partial,
            Some(&d @ b'0'..=b'9') => {
                status = status * 10 + (d - b'0') as u16;
                i += 1;
            }
            Some(_) => return Invalid,
        }
    }
    // The reason phrase, or the end of the line.
    match buf.get(i) {
        None => return Partial,
        Some(b' ') => {
            i += 1;
            i += value_run(&buf[i..]);
        }
        Some(b'\r' | b'\n') => {}
        Some(_) => return Invalid,
    }
    match buf.get(i) {
        None => return Partial,
        Some(b'\r') => match buf.get(i + 1) {
            None => return Partial,
            Some(b'\n') => i += 2,
            Some(_) => return Invalid,
        },
        Some(b'\n') => i += 1,
        Some(_) => return Invalid,
    }

    let mut framing = Framing::UntilClose;
    let mut close = http10;
    let mut bad_length = false;
    let mut headers = 0usize;
    loop {
        // The end of the head, or a header name.
        match buf.get(i) {
            None => return Partial,
            Some(b'\r') => {
                return match buf.get(i + 1) {
                    None => Partial,
                    Some(b'\n') if bad_length => Parse::BadLength,
                    Some(b'\n') => Parse::Complete(Head {
                        len: i + 2,
                        status,
                        framing,
                        close,
                    }),
                    Some(_) => Invalid,
                }
            }
            Some(b'\n') if bad_length => return Parse::BadLength,
            Some(b'\n') => {
                return Parse::Complete(Head {
                    len: i + 1,
                    status,
                    framing,
                    close,
                })
            }
            Some(_) => {}
        }
        let name_at = i;
        while i < n && CLASS[buf[i] as usize] & TOKEN != 0 {
            i += 1;
        }
        if i == name_at {
            return Invalid;
        }
        let name_end = i;
        match buf.get(i) {
            None => return Partial,
            Some(b':') => i += 1,
            Some(_) => return Invalid,
        }
        // Spaces and tabs after the colon.
        while i < n && (buf[i] == b' ' || buf[i] == b'\t') {
            i += 1;
        }
        let value_at = i;
        i += value_run(&buf[i..]);
        let mut value_end = i;
        match buf.get(i) {
            None => return Partial,
            Some(b'\r') => match buf.get(i + 1) {
                None => return Partial,
                Some(b'\n') => i += 2,
                Some(_) => return Invalid,
            },
            Some(b'\n') => i += 1,
            Some(_) => return Invalid,
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Invalid;
        }
        while value_end > value_at && matches!(buf[value_end - 1], b' ' | b'\t') {
            value_end -= 1;
        }
        let name = &buf[name_at..name_end];
        let value = &buf[value_at..value_end];
        // Only three names matter; most headers are passed over on their length alone.
        match name.len() {
            14 if eq_name(name, b"content-length") => {
                let v = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok());
                match v {
                    Some(len) if framing != Framing::Chunked => framing = Framing::Length(len),
                    Some(_) => {}
                    None => bad_length = true,
                }
            }
            17 if eq_name(name, b"transfer-encoding")
                && value
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked")) =>
            {
                framing = Framing::Chunked;
            }
            10 if eq_name(name, b"connection") => {
                for t in value.split(|b| *b == b',') {
                    let t = t.trim_ascii();
                    if t.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the lean exchange computed from httparse before this parser: the same outcome.
    fn reference(buf: &[u8]) -> Parse {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                let mut framing = Framing::UntilClose;
                let mut close = resp.version == Some(0);
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        let v = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|s| s.trim().parse::<u64>().ok());
                        match v {
                            Some(n) if !matches!(framing, Framing::Chunked) => {
                                framing = Framing::Length(n)
                            }
                            Some(_) => {}
                            None => return Parse::BadLength,
                        }
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        if h.value
                            .split(|b| *b == b',')
                            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
                        {
                            framing = Framing::Chunked;
                        }
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        for t in h.value.split(|b| *b == b',') {
                            let t = t.trim_ascii();
                            if t.eq_ignore_ascii_case(b"close") {
                                close = true;
                            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                                close = false;
                            }
                        }
                    }
                }
                Parse::Complete(Head {
                    len,
                    status,
                    framing,
                    close,
                })
            }
            Ok(httparse::Status::Partial) => Parse::Partial,
            Err(_) => Parse::Invalid,
        }
    }

    fn head(len: usize, status: u16, framing: Framing, close: bool) -> Parse {
        Parse::Complete(Head {
            len,
            status,
            framing,
            close,
        })
    }

    const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 16:50:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";

    #[test]
    fn exact_heads() {
        use Framing::*;
        let cases: &[(&[u8], Parse)] = &[
            (NGINX, head(NGINX.len() - 2, 200, Length(2), false)),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                head(27, 204, UntilClose, false),
            ),
            // Odd case, no space after the colon, trailing blanks.
            (
                b"HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh:5 \t\r\n\r\n",
                head(39, 200, Length(5), false),
            ),
            (b"HTTP/1.0 200 OK\r\n\r\n", head(19, 200, UntilClose, true)),
            (
                b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n",
                head(43, 200, UntilClose, false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n\r\n",
                head(50, 200, UntilClose, true),
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\n\r\n",
                head(50, 200, UntilClose, false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
                head(53, 200, Chunked, false),
            ),
            // chunked wins over a length before or after it
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                head(66, 200, Chunked, false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                head(66, 200, Chunked, false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                head(57, 200, Length(4), false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                head(44, 200, UntilClose, false),
            ),
            // Bare LFs, a missing reason, leading empty lines.
            (
                b"\r\n\nHTTP/1.1 301\nLocation: /x\n\n",
                head(30, 301, UntilClose, false),
            ),
            (b"HTTP/1.1 200 \r\n\r\n", head(17, 200, UntilClose, false)),
            (
                b"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Blank: \t \r\n\r\n",
                head(42, 200, UntilClose, false),
            ),
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
                head(25, 100, UntilClose, false),
            ),
            // obs-text in values and reasons
            (
                b"HTTP/1.1 200 \xc3\x96K\r\nX: \xff\xfe\r\n\r\n",
                head(27, 200, UntilClose, false),
            ),
            // Content-Length: a '+', Unicode blanks around it (str::trim), as before
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: +7\r\n\r\n",
                head(39, 200, Length(7), false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xa07\xc2\xa0\r\n\r\n",
                head(42, 200, Length(7), false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n",
                Parse::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
                Parse::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                Parse::BadLength,
            ),
            // Malformed.
            (b"HTTP/1.2 200 OK\r\n\r\n", Parse::Invalid),
            (b"HTTP/1.1  200 OK\r\n\r\n", Parse::Invalid),
            (b"HTTP/1.1 20 OK\r\n\r\n", Parse::Invalid),
            (b"HTTP/1.1 2000 OK\r\n\r\n", Parse::Invalid),
            (b"HTTP/1.1 200 O\x7fK\r\n\r\n", Parse::Invalid),
            (
                b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\r\n",
                Parse::Invalid,
            ),
            (
                b"HTTP/1.1 200 OK\r\n Leading: space\r\n\r\n",
                Parse::Invalid,
            ),
            (b"HTTP/1.1 200 OK\r\nName : value\r\n\r\n", Parse::Invalid),
            (b"HTTP/1.1 200 OK\r\nBad\x01: v\r\n\r\n", Parse::Invalid),
            (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", Parse::Invalid),
            (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", Parse::Invalid),
            (b"HTTP/1.1 200 OK\r\r\n", Parse::Invalid),
            (b"\rHTTP/1.1 200 OK\r\n\r\n", Parse::Invalid),
            (b"SMTP ready\r\n\r\n", Parse::Invalid),
            (b"\x15\x03\x03\x00\x02\x02\x32", Parse::Invalid),
            // Incomplete.
            (b"", Parse::Partial),
            (b"HTTP/1.", Parse::Partial),
            (b"HTTP/1.1 200 OK\r\nContent-Le", Parse::Partial),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r",
                Parse::Partial,
            ),
        ];
        for (i, (input, want)) in cases.iter().enumerate() {
            assert_eq!(
                parse(input),
                *want,
                "case {i}: {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(reference(input), *want, "case {i} (httparse)");
        }
    }

    /// 64 headers are fine, a 65th is an error; a head of 64 KiB is parsed like any other.
    #[test]
    fn header_count_and_huge_heads() {
        let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
        for k in 0..63 {
            h.extend_from_slice(format!("X-H{k}: v\r\n").as_bytes());
        }
        h.extend_from_slice(b"Content-Length: 1\r\n");
        let mut ok = h.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(parse(&ok), head(ok.len(), 200, Framing::Length(1), false));
        let mut over = h.clone();
        over.extend_from_slice(b"X-One-Too-Many: v\r\n\r\n");
        assert_eq!(parse(&over), Parse::Invalid);
        assert_eq!(reference(&over), Parse::Invalid);
        // The 65th header incomplete: still waiting, as httparse.
        let partial = &over[..over.len() - 5];
        assert_eq!(parse(partial), Parse::Partial);
        assert_eq!(reference(partial), Parse::Partial);

        let big = "v".repeat(60_000);
        let huge = format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Length: 0\r\n\r\n");
        let huge = huge.as_bytes();
        assert_eq!(
            parse(huge),
            head(huge.len(), 200, Framing::Length(0), false)
        );
        assert_eq!(parse(&huge[..huge.len() - 1]), Parse::Partial);
    }

    /// Every prefix of every case, and every single-byte substitution with bytes that matter to
    /// the grammar, give what httparse gives: a partial read is never taken for a complete or a
    /// malformed head, and a malformed one fails at the same point.
    #[test]
    fn agrees_with_httparse_on_prefixes_and_mutations() {
        let inputs: &[&[u8]] = &[
            NGINX,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            b"\nHTTP/1.0 404 Not\tFound\nContent-Length:  12 \nX:\n\n",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Long: 0123456789abcdefghijklmnopqrstuvwxyz0123456789\t\xe2\x82\xac tail \r\n\r\n",
        ];
        let specials: &[u8] = &[
            0, b'\t', b'\n', b'\r', b' ', b'!', b'"', b'(', b',', b'/', b'0', b'9', b':', b';',
            b'A', b'H', b'T', b'a', b'z', b'~', 0x7f, 0x80, 0xc2, 0xff, 0x0b, 0x1f,
        ];
        let mut checked = 0;
        for input in inputs {
            for end in 0..=input.len() {
                let p = &input[..end];
                assert_eq!(
                    parse(p),
                    reference(p),
                    "prefix {:?}",
                    String::from_utf8_lossy(p)
                );
                checked += 1;
            }
            for at in 0..input.len() {
                for &b in specials {
                    let mut m = input.to_vec();
                    m[at] = b;
                    assert_eq!(
                        parse(&m),
                        reference(&m),
                        "mutation {:?}",
                        String::from_utf8_lossy(&m)
                    );
                    // and the mutation's prefixes up to a little past it
                    for end in at..m.len().min(at + 3) {
                        assert_eq!(parse(&m[..end]), reference(&m[..end]));
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 5_000, "{checked}");
    }

    /// Heads put together from fragments (valid and not), 20,000 of them from a fixed seed,
    /// and each one's prefixes at a few cuts: the same outcome as httparse.
    #[test]
    fn agrees_with_httparse_on_composed_heads() {
        let starts: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.0 304 \r\n",
            b"\nHTTP/1.1 101\n",
            b"HTTP/1.1 2x0 OK\r\n",
            b"HTTP/1.1 200 OK\n",
            b"HTTP/1.1 999 \xffreason\tok\r\n",
        ];
        let lines: &[&[u8]] = &[
            b"Content-Length: 12\r\n",
            b"content-length:0\n",
            b"Content-Length: 1 2\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"transfer-encoding: x, CHUNKED \r\n",
            b"Connection: close\r\n",
            b"connection: Keep-Alive\r\n",
            b"Connection:\r\n",
            b"X-A: b\tc\r\n",
            b"X-B:   \r\n",
            b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            b" folded\r\n",
            b"Bad Name: v\r\n",
            b"X-Ctl: a\x01b\r\n",
            b"X-Del: \x7f\r\n",
            b"X-Obs: \x80\xfe\r\n",
            b"X-CR: a\rb\r\n",
            b"Content-Length: -1\r\n",
        ];
        let ends: &[&[u8]] = &[b"\r\n", b"\n", b"\r\nbody", b"\r", b""];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for _ in 0..20_000 {
            let mut h = starts[next(starts.len())].to_vec();
            for _ in 0..next(6) {
                h.extend_from_slice(lines[next(lines.len())]);
            }
            h.extend_from_slice(ends[next(ends.len())]);
            assert_eq!(
                parse(&h),
                reference(&h),
                "{:?}",
                String::from_utf8_lossy(&h)
            );
            let cut = next(h.len() + 1);
            assert_eq!(parse(&h[..cut]), reference(&h[..cut]));
        }
    }

    /// The eight-at-a-time value scan stops where a byte-by-byte one does, at any alignment.
    #[test]
    fn value_run_matches_the_byte_map() {
        let base: Vec<u8> = (0..40u8).map(|k| b'a' + k % 26).collect();
        for at in 0..base.len() {
            for &b in &[0u8, b'\t', b'\r', b'\n', 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xff] {
                let mut v = base.clone();
                v[at] = b;
                for start in 0..4 {
                    let s = &v[start..];
                    let want = s
                        .iter()
                        .position(|&c| CLASS[c as usize] & VALUE == 0)
                        .unwrap_or(s.len());
                    assert_eq!(value_run(s), want, "byte {b:#x} at {at}, from {start}");
                }
            }
        }
    }
}
