//! A target that answers, but not in HTTP, is told apart from one that is not there: the probe
//! says "not speaking HTTP" with what it heard (and the fix), a refused port is "unreachable".
//! Each server here is purpose-built on 127.0.0.1 (port 0): one that greets every connection with
//! an SSH banner, a real TLS server (rustls) reached with http://, and a plain HTTP server
//! reached with https://. Every run stops at the probe: exit 3, no load sent.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use support::tls::TestPki;
use support::Scenario;

/// The plan would last 30 s and send 3,000 requests; a probe refusal takes a few seconds.
const SCENARIO: &str = r#"
name: wrong-protocol
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /api/items/1
load:
  stages:
    - { rate: 100/s, for: 30s }
  arrivals: uniform
"#;

const LIMIT: Duration = Duration::from_secs(40);

/// A server that hands each connection to `answer` on a thread of its own, and counts them.
struct Server {
    port: u16,
    conns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(answer: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let conns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let accept = {
            let (conns, stop) = (conns.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match l.accept() {
                        Ok((s, _)) => {
                            conns.fetch_add(1, Ordering::SeqCst);
                            s.set_nonblocking(false).unwrap();
                            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                            let answer = answer.clone();
                            std::thread::spawn(move || answer(s));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Server {
            port,
            conns,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

/// Runs the scenario against `target`; checks exit 3 at the probe, quickly, and returns what
/// it said.
fn refused_at_probe(target: &str) -> String {
    let sc = Scenario::new(SCENARIO);
    let done = sc.run(target, &[], LIMIT);
    assert_eq!(done.code, Some(3), "{}", done.output());
    assert!(
        done.elapsed < Duration::from_secs(20),
        "stopped at the probe, not after the plan\n{}",
        done.output()
    );
    let said = format!("{}{}", done.stdout, done.stderr);
    assert!(said.contains("No load was sent"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    said
}

#[test]
fn a_port_that_answers_another_protocol_is_not_speaking_http() {
    let ssh = Server::start(|mut s| {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6 flashcrowd-test\r\n");
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
    });
    let said = refused_at_probe(&format!("http://127.0.0.1:{}", ssh.port));
    assert!(
        said.contains(&format!(
            "the target http://127.0.0.1:{} is not speaking HTTP: it answered \"SSH-2.0-OpenSSH_9.6 flas\"",
            ssh.port
        )),
        "{said}"
    );
    assert!(
        said.contains("which is not an HTTP response: is this the right port?"),
        "{said}"
    );
    assert!(!said.contains("unreachable"), "{said}");
    assert!(ssh.conns.load(Ordering::SeqCst) >= 1);
}

#[test]
fn tls_on_a_plain_http_port_says_use_https() {
    let pki = TestPki::generate();
    let cfg = pki.server_config(&["http/1.1"]);
    let tls = Server::start(move |mut s| {
        // A real TLS server: rustls reads the plain-text request, refuses it and sends its alert.
        let mut conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
        loop {
            match conn.read_tls(&mut s) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let failed = conn.process_new_packets().is_err();
            while conn.wants_write() {
                if conn.write_tls(&mut s).is_err() {
                    break;
                }
            }
            if failed {
                break;
            }
        }
    });
    let said = refused_at_probe(&format!("http://127.0.0.1:{}", tls.port));
    assert!(
        said.contains(&format!(
            "the target http://127.0.0.1:{} is not speaking HTTP: it answered with a TLS record: it speaks TLS on this port; use https://",
            tls.port
        )),
        "{said}"
    );
    assert!(!said.contains("unreachable"), "{said}");
}

#[test]
fn https_to_a_plain_http_port_says_use_http() {
    let plain = Server::start(|mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let said = refused_at_probe(&format!("https://127.0.0.1:{}", plain.port));
    assert!(
        said.contains(
            "is not speaking HTTP: it answers in plain HTTP on this port, not TLS: use http://"
        ),
        "{said}"
    );
}

#[test]
fn a_refused_port_is_unreachable_not_a_wrong_protocol() {
    let port = {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let said = refused_at_probe(&format!("http://127.0.0.1:{port}"));
    assert!(
        said.contains(&format!(
            "the target http://127.0.0.1:{port} is unreachable"
        )),
        "{said}"
    );
    assert!(!said.contains("not speaking HTTP"), "{said}");
}
