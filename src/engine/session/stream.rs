//! Stream steps: `sse:` (an event stream read by the WHATWG rules) and `ws:` (a WebSocket that
//! sends on open and every `every`, receiving, for `hold`). Each opens a connection of its own
//! for the stream, records its open as the step's `Sample` (latency to the response head or the
//! completed handshake) and what flowed after it in the request's `StreamStats`: time to the
//! first event, the gaps between events, the stream's duration, messages sent and received,
//! close codes.

use super::{Session, StepEnd, Times};
use crate::engine::checks;
use crate::engine::compile::{StreamProg, UntilProg};
use crate::engine::transport::{self, sse, Failed};
use crate::metrics::recorder::Sample;
use crate::metrics::ErrorKind;
use std::time::Instant;

/// How a stream went: the open (status, head instant) and what ended it.
struct Opened {
    status: Option<u16>,
    head_at: Option<Instant>,
    bytes_in: u64,
    error: Option<ErrorKind>,
}

impl Session {
    /// An `sse:` step. Returns how it ended and when.
    pub(super) async fn sse(
        &mut self,
        sp: &StreamProg,
        intended: Instant,
        released: Option<Instant>,
    ) -> (StepEnd, Instant) {
        let r = &sp.req;
        let phase = self.phase_at(intended);
        let built = self.build(r);
        let t_send = Instant::now();
        let intended = intended.min(t_send);
        let stop = self.ctx.clone();
        let opened = match built {
            Err(kind) => Opened::failed(kind),
            Ok((mut req, _)) => {
                req.headers_mut().insert(
                    ::http::header::ACCEPT,
                    ::http::HeaderValue::from_static("text/event-stream"),
                );
                tokio::select! {
                    o = self.read_events(sp, req, t_send, phase) => o,
                    _ = stop.hard_stopped() => return (StepEnd::Stopped, Instant::now()),
                }
            }
        };
        self.record_stream(sp, phase, intended, t_send, released, opened)
    }

    /// Opens the stream, checks its head, reads events until the step is done.
    async fn read_events(
        &mut self,
        sp: &StreamProg,
        req: ::http::Request<transport::ReqBody>,
        t_send: Instant,
        phase: usize,
    ) -> Opened {
        let r = &sp.req;
        let client = &self.prog.clients[self.client];
        let dial = self.ctx.dial(self.client);
        let open = async {
            let mut conn = transport::connect(&self.prog, client.http, false, dial)
                .await
                .map_err(Failed::early)?;
            transport::hyper_conn::send(&mut conn, req).await
        };
        let resp = match tokio::time::timeout(r.timeout, open).await {
            Err(_) => return Opened::failed(ErrorKind::Timeout),
            Ok(Err(f)) => return Opened::from_failed(f),
            Ok(Ok(resp)) => resp,
        };
        let head_at = Instant::now();
        let status = resp.status().as_u16();
        let mut o = Opened {
            status: Some(status),
            head_at: Some(head_at),
            bytes_in: 0,
            error: checks::status_error(r, status),
        };
        if o.error.is_some() {
            return o;
        }
        let mut body = resp.into_body();
        let mut parser = sse::Parser::new();
        let deadline = match sp.until {
            UntilProg::For(d) => Some(head_at + d),
            _ => None,
        };
        let ctx = self.ctx.clone();
        let (endpoint, client) = (r.endpoint, self.client);
        let mut count = 0u64;
        let mut last: Option<Instant> = None;
        let mut first_error: Option<ErrorKind> = None;
        let mut first_doc: Option<String> = None;
        let until = &sp.until;
        let end = sse::read(
            &mut body,
            r.timeout,
            deadline,
            &mut parser,
            &mut o.bytes_in,
            &mut |ev, at| {
                count += 1;
                let mut rec = ctx.rec.borrow_mut();
                let st = rec.stream(endpoint, client, phase);
                st.received += 1;
                match last {
                    None => {
                        let _ = st.first_event.record(
                            (at.saturating_duration_since(t_send).as_micros() as u64).max(1),
                        );
                        first_doc = Some(ev.data.clone());
                    }
                    Some(prev) => {
                        let _ = st
                            .gap
                            .record((at.saturating_duration_since(prev).as_micros() as u64).max(1));
                    }
                }
                last = Some(at);
                match until {
                    UntilProg::Event(name) => ev.name == *name,
                    UntilProg::Events(n) => count >= *n,
                    UntilProg::For(_) | UntilProg::End => false,
                }
            },
        )
        .await;
        let ended = Instant::now();
        let _ = self
            .ctx
            .rec
            .borrow_mut()
            .stream(endpoint, client, phase)
            .duration
            .record((ended.saturating_duration_since(t_send).as_micros() as u64).max(1));
        o.error = match end {
            sse::End::Done => None,
            sse::End::Ended if matches!(sp.until, UntilProg::End) => None,
            sse::End::Ended | sse::End::Broken => Some(ErrorKind::StreamCut),
            sse::End::Idle => Some(ErrorKind::Timeout),
        };
        if o.error.is_none() && sp.checks_first {
            first_error = match &first_doc {
                None => Some(ErrorKind::ExpectFailed),
                Some(d) => self.check_first(r, d.as_bytes()),
            };
        }
        o.error = o.error.or(first_error);
        o
    }

    /// `expect.first` and captures on the first message or event, as JSON.
    pub(super) fn check_first(
        &mut self,
        r: &crate::engine::compile::RequestProg,
        text: &[u8],
    ) -> Option<ErrorKind> {
        match serde_json::from_slice::<serde_json::Value>(text) {
            Ok(doc) => checks::json_checks(r, &doc, &mut self.vars),
            Err(_) if r.expect.json.is_empty() => Some(ErrorKind::CaptureFailed),
            Err(_) => Some(ErrorKind::ExpectFailed),
        }
    }

    /// Records a stream step's open as one `Sample`.
    fn record_stream(
        &mut self,
        sp: &StreamProg,
        phase: usize,
        intended: Instant,
        t_send: Instant,
        released: Option<Instant>,
        o: Opened,
    ) -> (StepEnd, Instant) {
        let t_end = Instant::now();
        let open_end = o.head_at.unwrap_or(t_end);
        let t = Times {
            intended,
            sent: t_send,
            ended: open_end,
            released,
        };
        let since = |at: Instant| at.saturating_duration_since(t.sent).as_micros() as u64;
        let sample = Sample {
            request: sp.req.endpoint,
            client: self.client,
            phase,
            latency_us: open_end.saturating_duration_since(t.intended).as_micros() as u64,
            service_us: since(open_end),
            ttfb_us: o.head_at.map(since),
            status: o.status,
            error: o.error,
            bytes_in: o.bytes_in,
            bytes_out: 0,
        };
        let lag = t.sent.saturating_duration_since(t.intended).as_micros() as u64;
        let mut rec = self.ctx.rec.borrow_mut();
        rec.record(&sample);
        rec.record_lag(lag);
        if let Some(at) = t.released {
            // Sent after the release: send − release (never `since`, which counts from the send).
            let _ = rec
                .burst
                .record((t.sent.saturating_duration_since(at).as_micros() as u64).max(1));
        }
        let end = if o.error.is_none() {
            StepEnd::Ok
        } else {
            StepEnd::Failed
        };
        (end, t_end)
    }
}

impl Opened {
    fn failed(kind: ErrorKind) -> Opened {
        Opened {
            status: None,
            head_at: None,
            bytes_in: 0,
            error: Some(kind),
        }
    }

    fn from_failed(f: Failed) -> Opened {
        Opened {
            status: f.status,
            head_at: f.head_at,
            bytes_in: f.bytes_in,
            error: Some(f.kind),
        }
    }
}

impl Session {
    /// A `ws:` step: the handshake (the step's `Sample`), then `send` on open and every `every`,
    /// receiving, until `hold` ends (a normal close from this side) or the server closes.
    pub(super) async fn ws(
        &mut self,
        sp: &StreamProg,
        intended: Instant,
        released: Option<Instant>,
    ) -> (StepEnd, Instant) {
        let r = &sp.req;
        let phase = self.phase_at(intended);
        let built = self.build(r);
        let t_send = Instant::now();
        let intended = intended.min(t_send);
        let stop = self.ctx.clone();
        let opened = match built {
            Err(kind) => Opened::failed(kind),
            Ok((req, _)) => {
                let target = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into());
                let headers: Vec<_> = req
                    .headers()
                    .iter()
                    .filter(|(n, _)| *n != ::http::header::HOST)
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect();
                tokio::select! {
                    o = self.run_ws(sp, &target, &headers, t_send, phase) => o,
                    _ = stop.hard_stopped() => return (StepEnd::Stopped, Instant::now()),
                }
            }
        };
        self.record_stream(sp, phase, intended, t_send, released, opened)
    }

    async fn run_ws(
        &mut self,
        sp: &StreamProg,
        target: &str,
        headers: &[(::http::HeaderName, ::http::HeaderValue)],
        t_send: Instant,
        phase: usize,
    ) -> Opened {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let r = &sp.req;
        let dial = self.ctx.dial(self.client);
        let opened = tokio::time::timeout(
            r.timeout,
            transport::ws::open(&self.prog, dial, target, headers),
        )
        .await;
        let mut ws = match opened {
            Err(_) => return Opened::failed(ErrorKind::Timeout),
            Ok(Err(f)) => return Opened::from_failed(f),
            Ok(Ok(ws)) => ws,
        };
        let open_at = Instant::now();
        let mut o = Opened {
            status: Some(101),
            head_at: Some(open_at),
            bytes_in: 0,
            error: None,
        };
        let (endpoint, client) = (r.endpoint, self.client);
        let far = open_at + std::time::Duration::from_secs(86_400 * 365);
        let hold_end = sp.hold.map_or(far, |h| open_at + h);
        let mut ticker = sp.every.map(|e| {
            let mut t = tokio::time::interval_at(open_at.into(), e);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            t
        });
        let mut send_once = sp.send.is_some() && ticker.is_none();
        let mut last: Option<Instant> = None;
        let mut first_checked = !sp.checks_first;
        let mut msg_buf = Vec::new();
        // What ended the stream: None while it runs.
        let end: Option<ErrorKind> = loop {
            if send_once {
                send_once = false;
                if let Some(e) = self
                    .ws_send(sp, &mut ws, &mut msg_buf, endpoint, phase)
                    .await
                {
                    break Some(e);
                }
            }
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(hold_end.into()) => {
                    // The hold is over: close normally, and read what the server had already sent
                    // until its close reply (bounded).
                    let _ = ws.close(None).await;
                    let drain = async {
                        while let Some(Ok(m)) = ws.next().await {
                            if matches!(m, Message::Text(_) | Message::Binary(_)) {
                                o.bytes_in += m.len() as u64;
                                self.ws_received(&m, t_send, &mut last, endpoint, client, phase);
                            }
                        }
                    };
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
                    break None;
                }
                at = async { ticker.as_mut().expect("guarded").tick().await }, if ticker.is_some() => {
                    if at.into_std() < hold_end {
                        if let Some(e) = self.ws_send(sp, &mut ws, &mut msg_buf, endpoint, phase).await {
                            break Some(e);
                        }
                    }
                }
                m = ws.next() => match m {
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(1005, |f| u16::from(f.code));
                        self.ctx.rec.borrow_mut().stream(endpoint, client, phase).close_code(code);
                        let normal = code == 1000 && sp.hold.is_none();
                        // Answer the close and let the connection end.
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ws.close(None)).await;
                        break (!normal).then_some(ErrorKind::WsClosed);
                    }
                    Some(Ok(m)) => {
                        if matches!(m, Message::Text(_) | Message::Binary(_)) {
                            o.bytes_in += m.len() as u64;
                            self.ws_received(&m, t_send, &mut last, endpoint, client, phase);
                            if !first_checked {
                                first_checked = true;
                                if let Some(e) = self.check_first(r, &m.into_data()) {
                                    break Some(e);
                                }
                            }
                        }
                    }
                    // The connection dropped without a close frame.
                    Some(Err(_)) | None => {
                        self.ctx.rec.borrow_mut().stream(endpoint, client, phase).close_code(1006);
                        break Some(ErrorKind::WsClosed);
                    }
                },
            }
        };
        let _ = self
            .ctx
            .rec
            .borrow_mut()
            .stream(endpoint, client, phase)
            .duration
            .record((Instant::now().saturating_duration_since(t_send).as_micros() as u64).max(1));
        o.error = end.or(if first_checked {
            None
        } else {
            Some(ErrorKind::ExpectFailed)
        });
        o
    }

    /// Renders and sends the step's message; the error kind when the socket is gone.
    async fn ws_send(
        &mut self,
        sp: &StreamProg,
        ws: &mut transport::ws::Ws,
        buf: &mut Vec<u8>,
        endpoint: usize,
        phase: usize,
    ) -> Option<ErrorKind> {
        use futures_util::SinkExt;
        let tpl = sp.send.as_ref()?;
        buf.clear();
        tpl.render(self, crate::template::Escape::None, buf);
        let text = String::from_utf8_lossy(buf).into_owned();
        match ws
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
        {
            Ok(()) => {
                self.ctx
                    .rec
                    .borrow_mut()
                    .stream(endpoint, self.client, phase)
                    .sent += 1;
                None
            }
            Err(_) => Some(ErrorKind::WsClosed),
        }
    }

    /// Counts one received message: first-message time or the gap since the previous one.
    fn ws_received(
        &self,
        _m: &tokio_tungstenite::tungstenite::Message,
        t_send: Instant,
        last: &mut Option<Instant>,
        endpoint: usize,
        client: usize,
        phase: usize,
    ) {
        let at = Instant::now();
        let mut rec = self.ctx.rec.borrow_mut();
        let st = rec.stream(endpoint, client, phase);
        st.received += 1;
        let (h, from) = match *last {
            None => (&mut st.first_event, t_send),
            Some(prev) => (&mut st.gap, prev),
        };
        let _ = h.record((at.saturating_duration_since(from).as_micros() as u64).max(1));
        *last = Some(at);
    }
}
