//! The lean HTTP/1.1 keep-alive transport for plain-text targets: the session owns the stream,
//! writes a request serialized straight from bound templates in one call, and parses the
//! response head with `head.rs` (httparse's grammar, only the framing headers kept) out of a
//! reused buffer. No connection task, no channel, no per-request
//! allocation. hyper stays in charge of TLS, HTTP/2 and anything unusual (`hyper.rs`).
//!
//! The stream is any `AsyncRead + AsyncWrite` (a plain `TcpStream` by default), so a layer
//! between the socket and the parser (network emulation) costs nothing when it is not used.
//!
//! What it handles: Content-Length and chunked bodies, bodies delimited by close, HEAD/204/304,
//! 1xx interim responses, `Connection: close`, HTTP/1.0. What it refuses: a head over 64 KiB or
//! with more than 64 headers (`protocol`), a body over the limit (`body`).

use super::{head, Failed, Reply};
use crate::metrics::ErrorKind;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const INITIAL_BUF: usize = 16 * 1024;
const MAX_HEAD: usize = 64 * 1024;

pub struct H1Conn<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Responses completed on this connection.
    pub used: u64,
    open: bool,
    /// Reads made on it (to tell whether a body needed one after its head).
    reads: u64,
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl From<head::Framing> for Framing {
    fn from(f: head::Framing) -> Framing {
        match f {
            head::Framing::Length(n) => Framing::Length(n),
            head::Framing::Chunked => Framing::Chunked,
            head::Framing::UntilClose => Framing::UntilClose,
        }
    }
}

/// `not_http` when the answer does not even begin like an HTTP response (`HTTP/`), else
/// `protocol`: HTTP, gone wrong.
pub fn not_http_or(answer: &[u8]) -> ErrorKind {
    let n = answer.len().min(5);
    if answer[..n].eq_ignore_ascii_case(&b"HTTP/"[..n]) {
        ErrorKind::Protocol
    } else {
        ErrorKind::NotHttp
    }
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Reset,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1Conn<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> H1Conn<S> {
        H1Conn {
            stream,
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            used: 0,
            open: true,
            reads: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Reads more bytes into the buffer; Ok(0) at end of stream.
    async fn fill(&mut self, limit: usize) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < limit {
                let n = (self.buf.len() * 2).min(limit);
                self.buf.resize(n, 0);
            } else {
                return Err(std::io::Error::other("buffer limit"));
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.reads += 1;
        self.end += n;
        Ok(n)
    }

    /// Sends one serialized request (less its first `written` bytes, already written by
    /// `write_now`) and reads the whole response. The body is counted, and appended to `keep`
    /// when given. On any failure the connection is closed.
    pub async fn exchange(
        &mut self,
        req: &[u8],
        head_request: bool,
        keep: Option<&mut Vec<u8>>,
        max_body: u64,
        written: usize,
    ) -> Result<Reply, Failed> {
        let r = self
            .exchange_inner(req, head_request, keep, max_body, written)
            .await;
        match &r {
            Ok(_) => self.used += 1,
            Err(_) => self.open = false,
        }
        r
    }

    async fn exchange_inner(
        &mut self,
        req: &[u8],
        head_request: bool,
        mut keep: Option<&mut Vec<u8>>,
        max_body: u64,
        written: usize,
    ) -> Result<Reply, Failed> {
        let fail = |kind, head_at, status, bytes_in| Failed {
            kind,
            head_at,
            status,
            bytes_in,
            unprocessed: false,
        };
        // Bytes left over from a previous response mean the peer sent more than it framed:
        // the stream cannot be trusted for another request.
        if self.start != self.end {
            return Err(fail(ErrorKind::Protocol, None, None, 0));
        }
        if written < req.len() {
            self.stream
                .write_all(&req[written..])
                .await
                .map_err(|e| fail(io_kind(&e), None, None, 0))?;
        }

        // The head (skipping 1xx interim responses). Nothing has arrived yet right after the
        // write: read before parsing, rather than parse an empty buffer first.
        let (status, framing, close, head_at) = loop {
            let parsed = if self.start == self.end {
                None
            } else {
                match head::parse(&self.buf[self.start..self.end]) {
                    head::Parse::Complete(h) => Some(h),
                    head::Parse::Partial => None,
                    head::Parse::BadLength => return Err(fail(ErrorKind::Protocol, None, None, 0)),
                    head::Parse::Invalid => {
                        // Only a connection that never answered in HTTP is "not speaking" it.
                        let kind = if self.used == 0 {
                            not_http_or(&self.buf[self.start..self.end])
                        } else {
                            ErrorKind::Protocol
                        };
                        return Err(fail(kind, None, None, 0));
                    }
                }
            };
            match parsed {
                Some(head::Head {
                    len,
                    status,
                    framing,
                    close,
                }) => {
                    self.start += len;
                    if (100..200).contains(&status) && status != 101 {
                        continue;
                    }
                    let framing = if head_request || status == 204 || status == 304 {
                        Framing::None
                    } else {
                        framing.into()
                    };
                    break (status, framing, close, Instant::now());
                }
                None => match self.fill(MAX_HEAD).await {
                    // Closed: before any byte of an answer, or (bytes_in > 0) mid-head.
                    Ok(0) => {
                        let got = (self.end - self.start) as u64;
                        return Err(fail(ErrorKind::Reset, None, None, got));
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Other => {
                        return Err(fail(ErrorKind::Protocol, None, None, 0))
                    }
                    Err(e) => return Err(fail(io_kind(&e), None, None, 0)),
                },
            }
        };

        // The body.
        let reads_at_head = self.reads;
        let mut bytes_in = 0u64;
        let head = Some(head_at);
        let st = Some(status);
        macro_rules! take {
            ($n:expr) => {{
                let n: usize = $n;
                bytes_in += n as u64;
                if bytes_in > max_body {
                    return Err(fail(ErrorKind::Body, head, st, bytes_in));
                }
                if let Some(k) = keep.as_deref_mut() {
                    k.extend_from_slice(&self.buf[self.start..self.start + n]);
                }
                self.start += n;
            }};
        }
        macro_rules! more {
            () => {
                match self.fill(INITIAL_BUF.max(MAX_HEAD)).await {
                    Ok(0) => return Err(fail(ErrorKind::Body, head, st, bytes_in)),
                    Ok(_) => {}
                    Err(e) => {
                        let k = match io_kind(&e) {
                            ErrorKind::Timeout => ErrorKind::Timeout,
                            _ => ErrorKind::Body,
                        };
                        return Err(fail(k, head, st, bytes_in));
                    }
                }
            };
        }
        // Takes exactly `n` body bytes, reading more as needed.
        macro_rules! take_exactly {
            ($n:expr) => {{
                let mut left: u64 = $n;
                while left > 0 {
                    if self.start == self.end {
                        more!();
                    }
                    let n = ((self.end - self.start) as u64).min(left) as usize;
                    take!(n);
                    left -= n as u64;
                }
            }};
        }
        let mut reusable = !close;
        match framing {
            Framing::None => {}
            Framing::Length(left) => {
                if left > max_body {
                    return Err(fail(ErrorKind::Body, head, st, 0));
                }
                take_exactly!(left);
            }
            Framing::Chunked => loop {
                let size = loop {
                    match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            self.start += used;
                            break size;
                        }
                        Ok(httparse::Status::Partial) => more!(),
                        Err(_) => return Err(fail(ErrorKind::Body, head, st, bytes_in)),
                    }
                };
                if size == 0 {
                    // Trailers: lines until an empty one.
                    loop {
                        match self.buf[self.start..self.end]
                            .windows(2)
                            .position(|w| w == b"\r\n")
                        {
                            Some(0) => {
                                self.start += 2;
                                break;
                            }
                            Some(i) => self.start += i + 2,
                            None => more!(),
                        }
                    }
                    break;
                }
                if size > max_body {
                    return Err(fail(ErrorKind::Body, head, st, bytes_in));
                }
                take_exactly!(size);
                while self.end - self.start < 2 {
                    more!();
                }
                if &self.buf[self.start..self.start + 2] != b"\r\n" {
                    return Err(fail(ErrorKind::Body, head, st, bytes_in));
                }
                self.start += 2;
            },
            Framing::UntilClose => {
                reusable = false;
                loop {
                    if self.start < self.end {
                        let n = self.end - self.start;
                        take!(n);
                    }
                    match self.fill(INITIAL_BUF.max(MAX_HEAD)).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => return Err(fail(io_kind(&e), head, st, bytes_in)),
                    }
                }
            }
        }
        if !reusable || self.start != self.end {
            self.open = false;
        }
        Ok(Reply {
            status,
            head_at,
            bytes_in,
            // The whole response came with the read that completed its head: its last byte
            // arrived then too.
            ended_at: (self.reads == reads_at_head).then_some(head_at),
        })
    }
}

impl H1Conn<TcpStream> {
    /// Open, and (once it has carried a response) not closed by the server while idle: one
    /// read is tried without waiting; an end of stream or bytes nobody asked for mean the
    /// connection cannot carry another request. The try costs nothing when the runtime has seen
    /// no readiness on the socket since the last response was read (no system call, no waker).
    pub fn still_open(&mut self) -> bool {
        if !self.open || self.used == 0 {
            return self.open;
        }
        if self.start != self.end {
            self.open = false;
            return false;
        }
        let mut one = [0u8; 1];
        match self.stream.try_read(&mut one) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // An end of stream, an error, or a byte before any request: not reusable.
            _ => self.open = false,
        }
        self.open
    }

    /// Writes as much of `req` as the socket takes now, without waiting (the start of an
    /// exchange whose rest is `exchange(.., written)`): the bytes written, or None when the
    /// connection cannot carry a request (closed while idle, or the write failed), which the
    /// caller leaves to the usual path (a new connection, nothing sent twice).
    pub fn write_now(&mut self, req: &[u8]) -> Option<usize> {
        if !self.still_open() || self.start != self.end {
            return None;
        }
        match self.stream.try_write(req) {
            Ok(n) => Some(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(0),
            Err(_) => {
                self.open = false;
                None
            }
        }
    }
}

#[cfg(test)]
impl H1Conn {
    async fn connect(addr: std::net::SocketAddr) -> Result<H1Conn, ErrorKind> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|_| ErrorKind::Connect)?;
        Ok(H1Conn::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on 127.0.0.1 that answers the n-th request on its one connection with
    /// `replies[n]`, then closes when the list is exhausted.
    async fn canned(replies: Vec<&'static [u8]>) -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for reply in replies {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(reply).await.unwrap();
            }
        });
        addr
    }

    const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    async fn one(
        replies: Vec<&'static [u8]>,
        head: bool,
        max: u64,
    ) -> (H1Conn, Result<Reply, Failed>, Vec<u8>) {
        let mut c = H1Conn::connect(canned(replies).await).await.unwrap();
        let mut body = Vec::new();
        let r = c.exchange(REQ, head, Some(&mut body), max, 0).await;
        (c, r, body)
    }

    #[tokio::test]
    async fn content_length_bodies_keep_the_connection_alive() {
        let addr = canned(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        ])
        .await;
        let mut c = H1Conn::connect(addr).await.unwrap();
        let mut body = Vec::new();
        let r = c
            .exchange(REQ, false, Some(&mut body), 1 << 20, 0)
            .await
            .ok()
            .unwrap();
        assert_eq!(
            (r.status, r.bytes_in, body.as_slice()),
            (200, 5, &b"hello"[..])
        );
        assert!(c.is_open());
        let r = c.exchange(REQ, false, None, 1 << 20, 0).await.ok().unwrap();
        assert_eq!((r.status, r.bytes_in, c.used), (201, 2, 2));
    }

    #[tokio::test]
    async fn chunked_bodies_with_trailers_are_read_to_the_end() {
        let (c, r, body) = one(
            vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n"],
            false,
            1 << 20,
        )
        .await;
        let r = r.ok().unwrap();
        assert_eq!((r.bytes_in, body.as_slice()), (7, &b"abcdefg"[..]));
        assert!(c.is_open());
    }

    #[tokio::test]
    async fn interim_responses_are_skipped_and_head_has_no_body() {
        let (_, r, _) = one(
            vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"],
            false,
            1 << 20,
        )
        .await;
        assert_eq!(r.ok().unwrap().status, 204);
        let (c, r, _) = one(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"],
            true,
            1 << 20,
        )
        .await;
        assert_eq!(r.ok().unwrap().bytes_in, 0);
        assert!(c.is_open());
    }

    #[tokio::test]
    async fn close_delimited_and_connection_close_are_not_reused() {
        let (c, r, body) = one(vec![b"HTTP/1.1 200 OK\r\n\r\nuntil close"], false, 1 << 20).await;
        assert_eq!(body, b"until close");
        assert_eq!(r.ok().unwrap().bytes_in, 11);
        assert!(!c.is_open());
        let (c, r, _) = one(
            vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"],
            false,
            1 << 20,
        )
        .await;
        assert!(r.is_ok());
        assert!(!c.is_open());
    }

    #[tokio::test]
    async fn misbehaving_responses_are_classified() {
        let kind = |r: Result<Reply, Failed>| r.err().map(|f| f.kind);
        let (_, r, _) = one(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"],
            false,
            10,
        )
        .await;
        assert_eq!(
            kind(r),
            Some(ErrorKind::Body),
            "declared body over the limit"
        );
        let (_, r, _) = one(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"],
            false,
            1 << 20,
        )
        .await;
        assert_eq!(kind(r), Some(ErrorKind::Body), "body cut short");
        let (_, r, _) = one(vec![b"SMTP ready\r\n\r\n"], false, 1 << 20).await;
        assert_eq!(kind(r), Some(ErrorKind::NotHttp), "not HTTP");
        // A TLS alert record: what a TLS server answers a plain-text request with.
        let (_, r, _) = one(vec![b"\x15\x03\x03\x00\x02\x02\x32"], false, 1 << 20).await;
        assert_eq!(kind(r), Some(ErrorKind::NotHttp), "TLS on a plain port");
        let (_, r, _) = one(vec![b"HTTP/1.1 abc OK\r\n\r\n"], false, 1 << 20).await;
        assert_eq!(kind(r), Some(ErrorKind::Protocol), "HTTP gone wrong");
        let (_, r, _) = one(vec![b"HTTP/1.1 200 OK\r\nContent-Le"], false, 1 << 20).await;
        assert_eq!(kind(r), Some(ErrorKind::Reset), "closed mid-headers");
        let (c, r, _) = one(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"],
            false,
            1 << 20,
        )
        .await;
        assert!(r.is_ok());
        assert!(
            !c.is_open(),
            "bytes past the framed body poison the connection"
        );
    }
}
