//! TLS failures get kinds of their own, against TLS servers on 127.0.0.1 with certificates the
//! test generates (rcgen): an expired certificate (`tls_expired`), one from a CA the client does
//! not trust (`tls_unknown_ca`), one for another host name (`tls_hostname`), and a server whose
//! answer to the ClientHello is not TLS at all (`tls_handshake`). Each run fails every request
//! with exactly its kind (the engine's probe accepts any certificate, so the load is sent), and
//! the server sees no request from the load.
//!
//! Open model, uniform 10/s for 1 s: exactly 10 sessions of one GET each.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::counting::CountingServer;
use support::tls::TestPki;
use support::{count, Scenario, ServerThread};

const SESSIONS: u64 = 10;
const LIMIT: Duration = Duration::from_secs(60);

fn scenario(tls: &str, http: &str) -> String {
    format!(
        r#"
name: tls-errors
target: https://localhost:9
defaults:
  timeout: 5s
{tls}clients:
  only:
    share: 100%
    http: {http}
    connection: per-user
journeys:
  walk:
    share: 100%
    steps:
      - get: /t/one
load:
  stages:
    - {{ rate: {SESSIONS}/s, for: 1s }}
  arrivals: uniform
"#
    )
}

/// Runs against `url` with the CA of `pki` trusted (or none: only the public roots) and returns
/// the error kinds of the run, after checking every request failed.
fn kinds_of(url: &str, pki: Option<&TestPki>, http: &str) -> BTreeMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let tls = match pki {
        Some(p) => {
            let ca = p.write_ca(dir.path(), "ca.pem");
            format!("  tls: {{ ca: {} }}\n", ca.display())
        }
        None => String::new(),
    };
    let sc = Scenario::new(&scenario(&tls, http));
    let done = sc.run(url, &["--threads", "1"], LIMIT);
    assert!(!done.stderr.contains("panicked"), "{}", done.output());
    let report = sc.report(&done);
    assert_eq!(count(&report, "/totals/requests"), SESSIONS, "{report:#}");
    assert_eq!(count(&report, "/totals/errors"), SESSIONS, "{report:#}");
    let mut m = BTreeMap::new();
    for (k, n) in report["totals"]["errors_by_kind"].as_object().unwrap() {
        m.insert(k.clone(), n.as_u64().unwrap());
    }
    m
}

fn only(kind: &str) -> BTreeMap<String, u64> {
    BTreeMap::from([(kind.to_string(), SESSIONS)])
}

#[test]
fn an_expired_certificate_is_tls_expired() {
    let pki = TestPki::generate_for(&["localhost"], true);
    for http in ["h1", "h2"] {
        let server = CountingServer::tls(pki.server_config(&["h2", "http/1.1"]));
        assert_eq!(
            kinds_of(&server.url(), Some(&pki), http),
            only("tls_expired")
        );
        assert!(
            server.connections_under("/t/").is_empty(),
            "{}",
            server.describe()
        );
    }
}

#[test]
fn a_certificate_from_an_unknown_ca_is_tls_unknown_ca() {
    let pki = TestPki::generate();
    let server = CountingServer::tls(pki.server_config(&["http/1.1"]));
    assert_eq!(kinds_of(&server.url(), None, "h1"), only("tls_unknown_ca"));
    assert!(
        server.connections_under("/t/").is_empty(),
        "{}",
        server.describe()
    );
}

#[test]
fn a_certificate_for_another_name_is_tls_hostname() {
    let pki = TestPki::generate_for(&["shop.example"], false);
    let server = CountingServer::tls(pki.server_config(&["http/1.1"]));
    assert_eq!(
        kinds_of(&server.url(), Some(&pki), "h1"),
        only("tls_hostname")
    );
    assert!(
        server.connections_under("/t/").is_empty(),
        "{}",
        server.describe()
    );
}

/// A server that answers its first connection (the engine's probe) over TLS, and every later
/// ClientHello with an HTTP/1.1 error in plain text, as a port with the wrong service behind it.
#[test]
fn an_answer_that_is_not_tls_is_tls_handshake() {
    let pki = TestPki::generate();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config(&["http/1.1"]));
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let later = Arc::new(AtomicUsize::new(0));
    let seen = later.clone();
    let _server = ServerThread::start("not-tls", move |mut stop| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        let mut first = true;
        loop {
            let (mut s, _) = tokio::select! {
                _ = &mut stop => return,
                r = l.accept() => match r { Ok(x) => x, Err(_) => continue },
            };
            if std::mem::take(&mut first) {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        let svc = hyper::service::service_fn(|_req| async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                            .await;
                    }
                });
                continue;
            }
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
                let _ = s.shutdown().await;
            });
        }
    });
    let url = format!("https://localhost:{port}");
    assert_eq!(kinds_of(&url, Some(&pki), "h1"), only("tls_handshake"));
    assert_eq!(later.load(Ordering::SeqCst) as u64, SESSIONS);
}
