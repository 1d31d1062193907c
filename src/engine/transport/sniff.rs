//! What is on the other end when the probe gets no HTTP answer: one plain-text HTTP/1.1 request
//! on a fresh TCP connection and a look at the first bytes that come back. It tells "not
//! speaking HTTP" (another protocol on the port, TLS where plain HTTP was expected, plain HTTP
//! where TLS was) apart from "nobody there", so the message names the right fix. Used once,
//! before any load; blocking, bounded by `timeout`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why the target at `url` is not speaking what the URL's scheme says, from its answer to one
/// plain-text GET; None when it could not be reached or said nothing (then it is unreachable
/// or silent, not a wrong protocol). The request carries `tag_header: flashcrowd-probe`, like
/// the probe it follows up.
pub fn not_speaking_http(url: &str, tag_header: &str, timeout: Duration) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
    let port = u.port_or_known_default()?;
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\n{tag_header}: flashcrowd-probe\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
        if n >= 5 {
            break;
        }
    }
    describe(u.scheme() == "https", &buf[..n])
}

/// The verdict on an answer's first bytes (`tls`: the URL asked for TLS).
pub fn describe(tls: bool, answer: &[u8]) -> Option<String> {
    if answer.is_empty() {
        return None;
    }
    let http = answer.len() >= 5 && answer[..5].eq_ignore_ascii_case(b"HTTP/");
    // A TLS record: content type 21 (alert) or 22 (handshake), then version 3.x.
    let tls_record = answer.len() >= 2 && matches!(answer[0], 0x15 | 0x16) && answer[1] == 3;
    match (tls, http, tls_record) {
        (true, true, _) => Some(
            "it answers in plain HTTP on this port, not TLS: use http:// (or the port that serves https)"
                .into(),
        ),
        (true, false, _) => None,
        (false, true, _) => None,
        (false, false, true) => Some(
            "it answered with a TLS record: it speaks TLS on this port; use https://".into(),
        ),
        (false, false, false) => Some(format!(
            "it answered {:?} ({} bytes), which is not an HTTP response: is this the right port?",
            String::from_utf8_lossy(&answer[..answer.len().min(24)]),
            answer.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn first_bytes_say_what_the_target_speaks() {
        let said = |tls, a: &[u8]| describe(tls, a).unwrap_or_default();
        assert!(said(false, b"\x15\x03\x03\x00\x02\x02\x32")
            .contains("speaks TLS on this port; use https://"));
        assert!(said(false, b"SSH-2.0-OpenSSH_9.6\r\n")
            .contains("\"SSH-2.0-OpenSSH_9.6\\r\\n\" (21 bytes), which is not an HTTP response"));
        assert!(said(true, b"HTTP/1.1 400 Bad Request\r\n").contains("use http://"));
        // HTTP where HTTP was asked for, silence, and a TLS answer to an https URL: no verdict.
        assert_eq!(describe(false, b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(describe(false, b""), None);
        assert_eq!(describe(true, b"\x15\x03\x03\x00\x02\x02\x32"), None);
    }
}
