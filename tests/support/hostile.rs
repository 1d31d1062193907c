//! Purpose-built misbehaving HTTP/1.1 servers on loopback, for the hostile-target tests.
//!
//! Each is a plain `std::net::TcpListener` on 127.0.0.1 port 0 with an accept thread and one
//! thread per connection. Every thread polls a shared stop flag at least every 50 ms, so a
//! server that holds connections open forever still stops (and joins its threads) when dropped.
//!
//! The engine probes the target once with a GET carrying the tag header set to
//! `flashcrowd-probe` before any load. Unless the fault is `Silent`, that probe is answered
//! properly (`200`, `Connection: close`), so the misbehaviour meets the load itself rather than
//! stopping the run at the probe.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the server misbehaves towards every request that is not the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Reads the request, then closes with SO_LINGER 0: the client sees a TCP RST.
    Reset,
    /// Accepts, reads the request, never answers (also the probe).
    Silent,
    /// Accepts and reads the request, never answers; the probe is answered.
    Hang,
    /// A 200 head declaring 1000 body bytes, then one byte every 100 ms.
    Trickle,
    /// A chunked 200 whose body never ends (64 KiB chunks as fast as the client reads).
    EndlessChunked,
    /// A 200 declaring `Content-Length: 1099511627776` (1 TiB), then bytes as fast as read.
    EndlessLength,
    /// A status line that is not HTTP, then close.
    Garbage,
    /// Half a response head, then close.
    CloseMidHeaders,
    /// Declares 100 body bytes, sends 10, then closes.
    ShortBody,
    /// Declares 5 body bytes, sends 5 and then more bytes that are not a response; keeps the
    /// connection open.
    LongBody,
    /// Answers the first connection (the probe) properly, then closes its listener: every later
    /// connection is refused.
    RefuseAfterFirst,
    /// Not a fault: `200 ok` on a keep-alive connection, with a `Set-Cookie` header when the
    /// server was started with one (`HostileServer::set_cookie`).
    Healthy,
}

struct Shared {
    stop: AtomicBool,
    conns: Mutex<Vec<JoinHandle<()>>>,
    requests: AtomicUsize,
    probes: AtomicUsize,
    set_cookie: Option<String>,
    /// Request heads received (Healthy only), for checking what was sent.
    heads: Mutex<Vec<String>>,
}

pub struct HostileServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl HostileServer {
    pub fn start(fault: Fault) -> HostileServer {
        Self::with(fault, None)
    }

    /// A healthy server whose every answer carries `Set-Cookie: VALUE`.
    pub fn set_cookie(value: &str) -> HostileServer {
        Self::with(Fault::Healthy, Some(value.to_string()))
    }

    fn with(fault: Fault, set_cookie: Option<String>) -> HostileServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            probes: AtomicUsize::new(0),
            set_cookie,
            heads: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name(format!("hostile-{fault:?}"))
            .spawn(move || accept_loop(listener, fault, s))
            .expect("spawn the accept thread");
        HostileServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received that were not the probe.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The request heads a `Healthy` server received (the probe's included).
    pub fn heads(&self) -> Vec<String> {
        self.shared.heads.lock().unwrap().clone()
    }

    /// Probe requests received.
    pub fn probes(&self) -> usize {
        self.shared.probes.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *self.shared.conns.lock().unwrap());
        for c in conns {
            let _ = c.join();
        }
    }
}

/// A loopback port with nothing listening (it was free a moment ago).
pub fn refused_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}

fn accept_loop(listener: TcpListener, fault: Fault, shared: Arc<Shared>) {
    let mut listener = Some(listener);
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(l) = listener.as_ref() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        match l.accept() {
            Ok((stream, _)) => {
                if fault == Fault::RefuseAfterFirst {
                    // Stop listening before answering: every later connect is refused.
                    listener = None;
                }
                let s = shared.clone();
                let h = std::thread::spawn(move || serve(stream, fault, s));
                shared.conns.lock().unwrap().push(h);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Reads one request head (up to the blank line). None when the peer closed or the server
/// stops first. Any request body is ignored (the tests send GETs).
fn read_head(stream: &mut TcpStream, shared: &Shared) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return Some(String::from_utf8_lossy(&buf[..end]).into_owned());
                }
                if buf.len() > 1 << 20 {
                    return None;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
}

/// Sleeps `d` in short steps; false when the server is stopping.
fn nap(d: Duration, shared: &Shared) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
    }
    !shared.stop.load(Ordering::SeqCst)
}

/// Writes all of `bytes`, giving up when the server stops or the peer goes away.
fn send(stream: &mut TcpStream, bytes: &[u8], shared: &Shared) -> bool {
    let mut rest = bytes;
    while !rest.is_empty() {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        match stream.write(rest) {
            Ok(0) => return false,
            Ok(n) => rest = &rest[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return false,
        }
    }
    true
}

fn serve(mut stream: TcpStream, fault: Fault, shared: Arc<Shared>) {
    let _ = stream.set_nonblocking(false);
    // Blocking calls wake up regularly to look at the stop flag.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(50)));
    let _ = stream.set_nodelay(true);
    loop {
        let Some(head) = read_head(&mut stream, &shared) else {
            return;
        };
        let probe = head.to_ascii_lowercase().contains("flashcrowd-probe");
        if fault == Fault::Healthy {
            shared.heads.lock().unwrap().push(head);
            let cookie = shared
                .set_cookie
                .as_ref()
                .map(|c| format!("Set-Cookie: {c}\r\n"))
                .unwrap_or_default();
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{cookie}\r\nok");
            if !send(&mut stream, answer.as_bytes(), &shared) {
                return;
            }
            continue;
        }
        if probe && fault != Fault::Silent {
            shared.probes.fetch_add(1, Ordering::SeqCst);
            send(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                &shared,
            );
            return;
        }
        shared.requests.fetch_add(1, Ordering::SeqCst);
        match fault {
            Fault::Reset => {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                return; // dropping the stream with linger 0 sends RST
            }
            Fault::Silent | Fault::Hang => {
                // Keep the connection open and quiet until the server stops.
                while nap(Duration::from_millis(50), &shared) {}
                return;
            }
            Fault::Trickle => {
                if !send(
                    &mut stream,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
                    &shared,
                ) {
                    return;
                }
                for _ in 0..1000 {
                    if !nap(Duration::from_millis(100), &shared)
                        || !send(&mut stream, b"x", &shared)
                    {
                        return;
                    }
                }
            }
            Fault::EndlessChunked | Fault::EndlessLength => {
                let head: &[u8] = if fault == Fault::EndlessChunked {
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n"
                };
                if !send(&mut stream, head, &shared) {
                    return;
                }
                let data = vec![b'z'; 64 * 1024];
                let mut chunk = Vec::with_capacity(data.len() + 16);
                if fault == Fault::EndlessChunked {
                    chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                    chunk.extend_from_slice(&data);
                    chunk.extend_from_slice(b"\r\n");
                } else {
                    chunk = data;
                }
                // Forever, until the client goes away or the server stops.
                while send(&mut stream, &chunk, &shared) {}
                return;
            }
            Fault::Garbage => {
                send(
                    &mut stream,
                    b"SPLAT 42 not-http at all\r\n\xff\xfe\r\n\r\n",
                    &shared,
                );
                return;
            }
            Fault::CloseMidHeaders => {
                send(
                    &mut stream,
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/pl",
                    &shared,
                );
                return;
            }
            Fault::ShortBody => {
                send(
                    &mut stream,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
                    &shared,
                );
                return;
            }
            Fault::LongBody => {
                if !send(
                    &mut stream,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES THAT ARE NOT A RESPONSE\r\n\r\n",
                    &shared,
                ) {
                    return;
                }
                // Keep reading: a client that reuses the connection sends another request.
            }
            Fault::Healthy => unreachable!("answered above"),
            Fault::RefuseAfterFirst => {
                send(
                    &mut stream,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                    &shared,
                );
            }
        }
    }
}

/// The peak resident set size (VmHWM) of process `pid`, in bytes, while it runs.
pub fn peak_rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Waits for `run` like `Spawned::wait`, and meanwhile polls the child's peak RSS (VmHWM) every
/// 20 ms until it exits. Returns the outcome and the largest peak seen, in bytes.
pub fn wait_with_peak_rss(run: super::Spawned, limit: Duration) -> (super::Finished, u64) {
    let pid = run.pid();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let poller = std::thread::spawn(move || {
        let mut peak = 0u64;
        while !d.load(Ordering::SeqCst) {
            match peak_rss(pid) {
                Some(p) => peak = peak.max(p),
                // Exited (a zombie has no VmHWM) or reaped.
                None if peak > 0 => break,
                None => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let finished = run.wait(limit);
    done.store(true, Ordering::SeqCst);
    let peak = poller.join().unwrap_or(0);
    (finished, peak)
}

/// Like `wait_with_peak_rss`, but never fails the test itself: kills the child (SIGKILL) when
/// its peak RSS passes `cap` or it runs past `limit`, and says which.
pub fn wait_with_rss_cap(
    run: super::Spawned,
    limit: Duration,
    cap: u64,
) -> (super::Finished, u64, Option<&'static str>) {
    let pid = run.pid();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let started = Instant::now();
    let poller = std::thread::spawn(move || {
        let mut peak = 0u64;
        let mut killed = None;
        while !d.load(Ordering::SeqCst) {
            match peak_rss(pid) {
                Some(p) => peak = peak.max(p),
                None if peak > 0 => break,
                None => {}
            }
            if killed.is_none() && (peak > cap || started.elapsed() > limit) {
                killed = Some(if peak > cap {
                    "peak RSS over the cap"
                } else {
                    "ran past the time limit"
                });
                // SAFETY: kill(2) on the pid of a child the caller started and has not reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (peak, killed)
    });
    let finished = run.wait(limit + Duration::from_secs(10));
    done.store(true, Ordering::SeqCst);
    let (peak, killed) = poller.join().unwrap_or((0, None));
    (finished, peak, killed)
}

/// Runs `flashcrowd ARGS…` with extra environment variables to the end, killing it past `limit`
/// (which fails the test).
pub fn run_with_env(args: &[&str], envs: &[(&str, &str)], limit: Duration) -> super::Finished {
    use std::process::{Command, Stdio};
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flashcrowd"))
        .args(args)
        // CI=true makes a run strict about its error rate; these runs fail on purpose.
        .env_remove("CI")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flashcrowd");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(s) = child.try_wait().expect("poll flashcrowd") {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let done = super::Finished {
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    };
    assert!(status.is_some(), "ran past {limit:?}\n{}", done.output());
    done
}

/// Files under `dir` (recursively) whose name contains `.tmp`.
pub fn leftover_tmp_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(leftover_tmp_files(&p));
        } else if e.file_name().to_string_lossy().contains(".tmp") {
            out.push(p);
        }
    }
    out
}
