//! A purpose-built HTTP/1.1 server on 127.0.0.1 that closes connections the way draining load
//! balancers and servers do, for the retry tests:
//!
//! - a request under `/once/` is read, then its connection is closed without an answer the
//!   first time its path is seen; the same path again is answered `200 ok`;
//! - a request under `/always/` is read, then its connection is closed without an answer;
//! - anything else is answered `200 ok` on a keep-alive connection;
//! - with an idle limit, a connection that carried nothing for that long is closed by the
//!   server (as nginx's `keepalive_timeout` does).
//!
//! The engine's reachability probe (tag header `flashcrowd-probe`) is answered and not counted.
//! Every request is recorded (method, path, connection number). Plain `std::net` with a thread
//! per connection; every thread looks at a stop flag at least every 20 ms, so the server stops
//! (and joins its threads) when dropped.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The connection it came on (numbered from 0 in accept order).
    pub conn: usize,
    /// Answered (true) or closed without an answer.
    pub answered: bool,
    /// When its head was read.
    pub at: Instant,
}

struct Shared {
    stop: AtomicBool,
    idle: Option<Duration>,
    seen: Mutex<Vec<Seen>>,
    once: Mutex<HashSet<String>>,
    conns: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

pub struct ClosingServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl ClosingServer {
    /// Keep-alive connections stay open until the client closes them.
    pub fn start() -> ClosingServer {
        Self::with(None)
    }

    /// Connections idle (no bytes from the client) for `idle` are closed by the server.
    pub fn closing_idle_after(idle: Duration) -> ClosingServer {
        Self::with(Some(idle))
    }

    /// A keep-alive server on `ip:port` (another loopback address, a port taken elsewhere);
    /// an error when it cannot be bound.
    pub fn start_on(ip: std::net::IpAddr, port: u16) -> std::io::Result<ClosingServer> {
        Ok(Self::on(TcpListener::bind((ip, port))?, None))
    }

    fn with(idle: Option<Duration>) -> ClosingServer {
        Self::on(
            TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback"),
            idle,
        )
    }

    fn on(listener: TcpListener, idle: Option<Duration>) -> ClosingServer {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            idle,
            seen: Mutex::new(Vec::new()),
            once: Mutex::new(HashSet::new()),
            conns: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let id = s.conns.fetch_add(1, Ordering::SeqCst);
                        let s2 = s.clone();
                        let h = std::thread::spawn(move || serve(stream, id, s2));
                        s.threads.lock().unwrap().push(h);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ClosingServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request read (the probe's excepted).
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many times each path was read, path → count.
    pub fn per_path(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for s in self.seen() {
            *m.entry(s.path).or_insert(0) += 1;
        }
        m
    }
}

impl Drop for ClosingServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for t in std::mem::take(&mut *self.shared.threads.lock().unwrap()) {
            let _ = t.join();
        }
    }
}

/// Reads one request (head, and a Content-Length body). None when the peer closed, the server
/// stops, or the connection was idle past the limit.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, shared: &Shared) -> Option<String> {
    let mut chunk = [0u8; 4096];
    let mut last = Instant::now();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return Some(head);
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        if buf.is_empty() && shared.idle.is_some_and(|d| last.elapsed() >= d) {
            return None; // idle too long: close
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last = Instant::now();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
}

fn serve(mut stream: TcpStream, id: usize, shared: Arc<Shared>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    while let Some(head) = read_request(&mut stream, &mut buf, &shared) {
        let mut words = head.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        if head.to_ascii_lowercase().contains("flashcrowd-probe") {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            return;
        }
        let close = path.starts_with("/always/")
            || (path.starts_with("/once/") && shared.once.lock().unwrap().insert(path.clone()));
        shared.seen.lock().unwrap().push(Seen {
            method,
            path,
            conn: id,
            answered: !close,
            at: Instant::now(),
        });
        if close {
            return; // dropped: the client sees the connection close before any answer
        }
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}
