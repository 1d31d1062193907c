//! Preparing a request step off the clock: the templates rendered into the lean path's wire
//! bytes (or, fully fixed, taken as compiled) or into a request for hyper.

use super::Session;
use crate::engine::compile::{BodyProg, HeaderTpl, RequestProg};
use crate::engine::transport::{Conn, Outgoing, ReqBody};
use crate::metrics::ErrorKind;
use crate::template::Escape;
use ::http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use bytes::Bytes;
use http_body_util::Full;

impl Session {
    /// The request to send and its bytes out (the body, for hyper; the whole request, lean).
    /// `wire` is the buffer a lean request is serialized into when it is not fully fixed.
    pub(super) fn prepare<'a>(
        &mut self,
        r: &'a RequestProg,
        wire: &'a mut Vec<u8>,
    ) -> Result<(Outgoing<'a>, u64), ErrorKind> {
        if !self.prog.clients[self.client].lean {
            let (req, n) = self.build(r)?;
            return Ok((Outgoing::Hyper(Box::new(req)), n));
        }
        if let Some(full) = r.wire.get(self.client).and_then(|w| w.full.as_ref()) {
            return Ok((Outgoing::Wire(full), full.len() as u64));
        }
        self.build_wire(r, wire)?;
        let wire: &'a Vec<u8> = wire;
        Ok((Outgoing::Wire(wire), wire.len() as u64))
    }

    fn build(&mut self, r: &RequestProg) -> Result<(::http::Request<ReqBody>, u64), ErrorKind> {
        let prog = self.prog.clone();
        let client = &prog.clients[self.client];
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if self.conn.as_ref().is_some_and(Conn::is_h2)
            || client.http == crate::scenario::model::HttpVersion::H2
        {
            buf.extend_from_slice(if prog.target.https {
                b"https://"
            } else {
                b"http://"
            });
            buf.extend_from_slice(prog.target.authority.as_bytes());
        }
        self.render_target(r, &mut buf);
        let uri = ::http::Uri::from_maybe_shared(Bytes::copy_from_slice(&buf));
        self.buf = buf;
        let uri = uri.map_err(|_| ErrorKind::Protocol)?;
        let body: Bytes = match &r.body {
            BodyProg::None => Bytes::new(),
            _ => {
                let mut out = Vec::with_capacity(128);
                self.render_body(r, &mut out);
                out.into()
            }
        };
        let mut req = ::http::Request::new(Full::new(body.clone()));
        *req.method_mut() = r.method.clone();
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.reserve(client.headers.len() + r.headers.len() + 3);
        if client.http != crate::scenario::model::HttpVersion::H2 {
            h.insert(HOST, prog.target_host_header.clone());
        }
        let mut tmp = Vec::new();
        for (name, v) in client.headers.iter().chain(r.headers.iter()) {
            let value = match v {
                HeaderTpl::Static(v) => v.clone(),
                HeaderTpl::Dynamic(b) => {
                    tmp.clear();
                    b.render(self, Escape::None, &mut tmp);
                    HeaderValue::from_bytes(&tmp).map_err(|_| ErrorKind::Protocol)?
                }
            };
            h.insert(name.clone(), value);
        }
        if !h.contains_key(USER_AGENT) {
            h.insert(
                USER_AGENT,
                HeaderValue::from_static(concat!("flashcrowd/", env!("CARGO_PKG_VERSION"))),
            );
        }
        if let Some(ct) = &r.content_type {
            if !h.contains_key(CONTENT_TYPE) {
                h.insert(CONTENT_TYPE, ct.clone());
            }
        }
        if !body.is_empty() {
            h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Ok((req, body.len() as u64))
    }

    /// Appends the request target: the path (base path included) and the query, URL-encoded.
    fn render_target(&mut self, r: &RequestProg, out: &mut Vec<u8>) {
        let start = out.len();
        r.path.render(self, Escape::None, out);
        let mut has_q = out[start..].contains(&b'?');
        for (k, v) in &r.query {
            out.push(if has_q { b'&' } else { b'?' });
            has_q = true;
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            v.render(self, Escape::Url, out);
        }
    }

    /// Appends the request body: JSON, a URL-encoded form, or raw text.
    fn render_body(&mut self, r: &RequestProg, out: &mut Vec<u8>) {
        match &r.body {
            BodyProg::None => {}
            BodyProg::Json(j) => j.render(self, out),
            BodyProg::Raw(b) => b.render(self, Escape::None, out),
            BodyProg::Form(fields) => {
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b'&');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    v.render(self, Escape::Url, out);
                }
            }
        }
    }

    /// Serializes a request for the lean path into `out` (unless it is fully pre-serialized).
    fn build_wire(&mut self, r: &RequestProg, out: &mut Vec<u8>) -> Result<(), ErrorKind> {
        let w = &r.wire[self.client];
        out.clear();
        out.extend_from_slice(r.method.as_str().as_bytes());
        out.push(b' ');
        let line_start = out.len();
        self.render_target(r, out);
        // A rendered value must not break the request line (no request smuggling).
        if out[line_start..]
            .iter()
            .any(|b| *b == b' ' || *b == b'\r' || *b == b'\n')
        {
            return Err(ErrorKind::Protocol);
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(&w.head);
        for (name, b) in &w.dynamic {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            let at = out.len();
            b.render(self, Escape::None, out);
            if out[at..].iter().any(|b| *b == b'\r' || *b == b'\n') {
                return Err(ErrorKind::Protocol);
            }
            out.extend_from_slice(b"\r\n");
        }
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        self.render_body(r, &mut body);
        crate::engine::compile::finish_head(out, &r.method, &body);
        self.body = body;
        Ok(())
    }
}
