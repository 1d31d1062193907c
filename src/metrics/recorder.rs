//! The per-shard recorder. Keys are dense indices (request × client × phase) fixed when the
//! scenario is compiled, so recording is an index and a histogram increment.

use hdrhistogram::Histogram;

pub const N_ERROR_KINDS: usize = 20;

/// Error taxonomy (DESIGN.md, "Measurement semantics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorKind {
    Timeout,
    Connect,
    Reset,
    /// TLS could not be set up on the client's side (no configuration, a host name that cannot
    /// be a TLS server name); the server's failures have the kinds below.
    Tls,
    /// The server's certificate has expired (or is not valid yet).
    TlsExpired,
    /// The server's certificate is issued by a CA this client does not trust.
    TlsUnknownCa,
    /// The server's certificate is not for the host name the client asked for.
    TlsHostname,
    /// Anything else wrong with the server's certificate (a bad signature, revoked, ...).
    TlsCert,
    /// The TLS handshake failed: no common version, cipher suite or ALPN protocol, an alert
    /// from the server, or an answer that is not TLS.
    TlsHandshake,
    Http4xx,
    Http5xx,
    ExpectFailed,
    CaptureFailed,
    Body,
    /// The response was not valid HTTP (added to the design's taxonomy: a misbehaving target
    /// that answers garbage is neither a reset nor a body problem).
    Protocol,
    /// A WebSocket upgrade that was not answered with 101 and a valid handshake.
    WsHandshake,
    /// The server closed a WebSocket (or the connection dropped) before the step was done; the
    /// close codes are counted in the step's stream stats.
    WsClosed,
    /// An event stream that ended or broke before the step was done.
    StreamCut,
    /// An HTTP/2 server reset the request's stream (RST_STREAM) while its connection lived on.
    StreamReset,
    /// The target answered, but its first bytes are not an HTTP response at all (another
    /// protocol on the port, or TLS on a plain-HTTP port): not `protocol` (HTTP gone wrong) and
    /// not `connect` (nobody there).
    NotHttp,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; N_ERROR_KINDS] = [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Tls,
        ErrorKind::TlsExpired,
        ErrorKind::TlsUnknownCa,
        ErrorKind::TlsHostname,
        ErrorKind::TlsCert,
        ErrorKind::TlsHandshake,
        ErrorKind::Http4xx,
        ErrorKind::Http5xx,
        ErrorKind::ExpectFailed,
        ErrorKind::CaptureFailed,
        ErrorKind::Body,
        ErrorKind::Protocol,
        ErrorKind::WsHandshake,
        ErrorKind::WsClosed,
        ErrorKind::StreamCut,
        ErrorKind::StreamReset,
        ErrorKind::NotHttp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::TlsExpired => "tls_expired",
            ErrorKind::TlsUnknownCa => "tls_unknown_ca",
            ErrorKind::TlsHostname => "tls_hostname",
            ErrorKind::TlsCert => "tls_cert",
            ErrorKind::TlsHandshake => "tls_handshake",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::ExpectFailed => "expect_failed",
            ErrorKind::CaptureFailed => "capture_failed",
            ErrorKind::Body => "body",
            ErrorKind::Protocol => "protocol",
            ErrorKind::WsHandshake => "ws_handshake",
            ErrorKind::WsClosed => "ws_closed",
            ErrorKind::StreamCut => "stream_cut",
            ErrorKind::StreamReset => "stream_reset",
            ErrorKind::NotHttp => "not_http",
        }
    }
}

/// The range a recording histogram covers from the moment it is created: 1 µs to 2^25 − 1 µs
/// (33.5 s: the default 10 s timeout and the generator's lag behind a stalled machine). That is
/// 15 buckets, 16,384 counts of 8 bytes: 128 KiB a histogram (two of mimalloc's 64 KiB
/// slices; anything above 64 KiB is a large object there, so a smaller range would save no
/// pages).
pub const RECORDING_RANGE_US: u64 = (1 << 25) - 1;

/// A histogram of microseconds, 3 significant digits, growing as needed from a few kilobytes:
/// for histograms read back or merged after a run (latency.hlog, the journal, `merge`,
/// `compare`), where thousands may be held at once and each should be only as large as what it
/// holds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid histogram")
}

/// A histogram a running test records into (or keeps totals in): microseconds, 3 significant
/// digits, like [`new_histogram`], but with its counts allocated for [`RECORDING_RANGE_US`] up
/// front. A histogram that grows reallocates its counts each time the largest value it has held
/// doubles; in a long run each such step (a new largest latency: a stall of the target or of
/// the machine) grew every long-lived copy (the run's totals, the live page's, latency.hlog's
/// per-tag histograms) for the rest of the run (docs/performance.md, "Soak", "What the steps
/// were"). A value above the range is still recorded exactly as before: the histogram
/// grows to hold it (auto-resize stays on), so nothing is clamped or lost; only then does its
/// memory grow, by 8 KiB per doubling.
pub fn new_recording_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, RECORDING_RANGE_US, 3)
        .expect("1 µs to RECORDING_RANGE_US at 3 significant digits is a valid histogram");
    h.auto(true);
    h
}

/// Everything recorded for one (request name, client, phase).
#[derive(Debug, Clone)]
pub struct RequestStats {
    /// From the intended start (coordinated-omission free), µs.
    pub latency: Histogram<u64>,
    /// From sending to the last byte, µs.
    pub service: Histogram<u64>,
    /// From sending to the response head, µs.
    pub ttfb: Histogram<u64>,
    pub count: u64,
    pub errors: [u64; N_ERROR_KINDS],
    /// (status code, count), few distinct codes: a linear scan beats hashing.
    pub status: Vec<(u16, u64)>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Stream steps (WebSocket, SSE) only: what flowed after the open.
    pub stream: Option<Box<StreamStats>>,
}

/// What a stream step adds to its request's stats. The step's `Sample` is its open (the
/// WebSocket handshake, the event stream's response head); these count what came after.
#[derive(Debug, Clone)]
pub struct StreamStats {
    /// From sending the request to the first message or event, µs.
    pub first_event: Histogram<u64>,
    /// Between consecutive messages or events, µs.
    pub gap: Histogram<u64>,
    /// From sending the request to the stream's end, µs.
    pub duration: Histogram<u64>,
    /// Messages (WebSocket) or events (SSE) received.
    pub received: u64,
    /// Messages sent (WebSocket).
    pub sent: u64,
    /// WebSocket close codes received from the server, (code, count).
    pub close_codes: Vec<(u16, u64)>,
}

impl Default for StreamStats {
    fn default() -> Self {
        StreamStats {
            first_event: new_recording_histogram(),
            gap: new_recording_histogram(),
            duration: new_recording_histogram(),
            received: 0,
            sent: 0,
            close_codes: Vec::new(),
        }
    }
}

impl StreamStats {
    pub fn merge(&mut self, o: &StreamStats) {
        let _ = self.first_event.add(&o.first_event);
        let _ = self.gap.add(&o.gap);
        let _ = self.duration.add(&o.duration);
        self.received += o.received;
        self.sent += o.sent;
        for &(code, n) in &o.close_codes {
            add_status(&mut self.close_codes, code, n);
        }
    }

    pub fn close_code(&mut self, code: u16) {
        add_status(&mut self.close_codes, code, 1);
    }
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            latency: new_recording_histogram(),
            service: new_recording_histogram(),
            ttfb: new_recording_histogram(),
            count: 0,
            errors: [0; N_ERROR_KINDS],
            status: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            stream: None,
        }
    }
}

impl RequestStats {
    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn merge(&mut self, o: &RequestStats) {
        let _ = self.latency.add(&o.latency);
        let _ = self.service.add(&o.service);
        let _ = self.ttfb.add(&o.ttfb);
        self.count += o.count;
        for (a, b) in self.errors.iter_mut().zip(o.errors.iter()) {
            *a += *b;
        }
        for &(code, n) in &o.status {
            add_status(&mut self.status, code, n);
        }
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        if let Some(b) = &o.stream {
            self.stream.get_or_insert_with(Default::default).merge(b);
        }
    }
}

fn add_status(v: &mut Vec<(u16, u64)>, code: u16, n: u64) {
    if let Some(e) = v.iter_mut().find(|e| e.0 == code) {
        e.1 += n;
    } else {
        v.push((code, n));
    }
}

#[derive(Debug, Clone, Default)]
pub struct JourneyStats {
    pub sessions: u64,
    pub completed: u64,
    pub errors: u64,
    /// Whole-session duration from the arrival instant, µs (completed sessions only).
    pub latency: Option<Box<Histogram<u64>>>,
    /// For sessions a `wait` or rendezvous held: from the last release to the end, µs
    /// (completed sessions only). What a buyer waits once the sale opens.
    pub from_release: Option<Box<Histogram<u64>>>,
}

#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    pub sessions: u64,
    pub requests: u64,
}

/// One measured request, as the session hands it to the recorder.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub request: usize,
    pub client: usize,
    pub phase: usize,
    pub latency_us: u64,
    pub service_us: u64,
    /// None when no response head arrived.
    pub ttfb_us: Option<u64>,
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A shard's counters for one interval (or, merged, for a whole run).
#[derive(Debug, Clone)]
pub struct Recorder {
    pub n_requests: usize,
    pub n_clients: usize,
    pub n_phases: usize,
    /// Indexed `(request * n_clients + client) * n_phases + phase`; None until first used.
    pub requests: Vec<Option<Box<RequestStats>>>,
    pub journeys: Vec<JourneyStats>,
    pub clients: Vec<ClientStats>,
    /// Scheduler lag (actual send − intended send), µs.
    pub lag: Histogram<u64>,
    /// Burst spread: for the first request after a `wait: sale-start` or a rendezvous, its send
    /// time − the release instant, µs. How tightly this generator fired its flash crowd.
    pub burst: Histogram<u64>,
    pub sessions_started: u64,
    pub sessions_dropped: u64,
    /// Planned arrivals not started because the run was paused (live control), not dropped.
    pub sessions_paused: u64,
    /// Sessions cut short by the end of the run or a stop.
    pub sessions_interrupted: u64,
    /// Planned arrivals that never started: a stop came after they were due, or their second
    /// of the plan was cut before the generator got to them (see `engine::shard::CUT_WAIT`).
    pub sessions_unstarted: u64,
    /// Resends of requests whose attempt certainly got no answer (see `Session::exchange`);
    /// each request is still one in the counts.
    pub retried: u64,
    /// Sessions in flight when the snapshot was taken (a gauge, summed over shards).
    pub in_flight: u64,
    /// Of those, sessions parked at a `wait` or `rendezvous` (a gauge, like `in_flight`).
    pub parked: u64,
    /// Arrivals dropped at the cap while parked sessions held at least half of it: the cap was
    /// full of waiting sessions, not of slow requests.
    pub sessions_dropped_parked: u64,
    /// Sessions still parked at a wait or rendezvous when the run ended (never released).
    pub sessions_left_parked: u64,
}

impl Recorder {
    pub fn new(n_requests: usize, n_clients: usize, n_phases: usize, n_journeys: usize) -> Self {
        Recorder {
            n_requests,
            n_clients,
            n_phases,
            requests: vec![None; n_requests * n_clients * n_phases],
            journeys: vec![JourneyStats::default(); n_journeys],
            clients: vec![ClientStats::default(); n_clients],
            lag: new_recording_histogram(),
            burst: new_histogram(),
            sessions_started: 0,
            sessions_dropped: 0,
            sessions_paused: 0,
            sessions_interrupted: 0,
            sessions_unstarted: 0,
            retried: 0,
            in_flight: 0,
            parked: 0,
            sessions_dropped_parked: 0,
            sessions_left_parked: 0,
        }
    }

    /// An empty recorder of the same shape.
    pub fn empty_like(&self) -> Self {
        Recorder::new(
            self.n_requests,
            self.n_clients,
            self.n_phases,
            self.journeys.len(),
        )
    }

    #[inline]
    pub fn index(&self, request: usize, client: usize, phase: usize) -> usize {
        (request * self.n_clients + client) * self.n_phases + phase
    }

    #[inline]
    pub fn record(&mut self, s: &Sample) {
        let i = self.index(s.request, s.client, s.phase);
        let st = self.requests[i].get_or_insert_with(Default::default);
        st.count += 1;
        let _ = st.latency.record(s.latency_us.max(1));
        let _ = st.service.record(s.service_us.max(1));
        if let Some(t) = s.ttfb_us {
            let _ = st.ttfb.record(t.max(1));
        }
        if let Some(code) = s.status {
            add_status(&mut st.status, code, 1);
        }
        if let Some(k) = s.error {
            st.errors[k as usize] += 1;
        }
        st.bytes_in += s.bytes_in;
        st.bytes_out += s.bytes_out;
        self.clients[s.client].requests += 1;
    }

    /// The stream stats of (request, client, phase), created on first use.
    pub fn stream(&mut self, request: usize, client: usize, phase: usize) -> &mut StreamStats {
        let i = self.index(request, client, phase);
        self.requests[i]
            .get_or_insert_with(Default::default)
            .stream
            .get_or_insert_with(Default::default)
    }

    #[inline]
    pub fn record_lag(&mut self, lag_us: u64) {
        let _ = self.lag.record(lag_us.max(1));
    }

    pub fn session_started(&mut self, journey: usize, client: usize) {
        self.sessions_started += 1;
        self.journeys[journey].sessions += 1;
        self.clients[client].sessions += 1;
    }

    /// A session ended; `from_release_us` is its time since the last wait or rendezvous let it
    /// go, when one did.
    pub fn session_ended(
        &mut self,
        journey: usize,
        ok: bool,
        duration_us: u64,
        from_release_us: Option<u64>,
    ) {
        let j = &mut self.journeys[journey];
        if ok {
            j.completed += 1;
            let h = j
                .latency
                .get_or_insert_with(|| Box::new(new_recording_histogram()));
            let _ = h.record(duration_us.max(1));
            if let Some(us) = from_release_us {
                let h = j
                    .from_release
                    .get_or_insert_with(|| Box::new(new_recording_histogram()));
                let _ = h.record(us.max(1));
            }
        } else {
            j.errors += 1;
        }
    }

    /// Adds `o` into `self`. Both must have the same shape.
    pub fn merge(&mut self, o: &Recorder) {
        for (a, b) in self.requests.iter_mut().zip(o.requests.iter()) {
            if let Some(b) = b {
                a.get_or_insert_with(Default::default).merge(b);
            }
        }
        for (a, b) in self.journeys.iter_mut().zip(o.journeys.iter()) {
            a.sessions += b.sessions;
            a.completed += b.completed;
            a.errors += b.errors;
            if let Some(h) = &b.latency {
                let _ = a
                    .latency
                    .get_or_insert_with(|| Box::new(new_recording_histogram()))
                    .add(&**h);
            }
            if let Some(h) = &b.from_release {
                let _ = a
                    .from_release
                    .get_or_insert_with(|| Box::new(new_recording_histogram()))
                    .add(&**h);
            }
        }
        for (a, b) in self.clients.iter_mut().zip(o.clients.iter()) {
            a.sessions += b.sessions;
            a.requests += b.requests;
        }
        let _ = self.lag.add(&o.lag);
        let _ = self.burst.add(&o.burst);
        self.sessions_started += o.sessions_started;
        self.sessions_dropped += o.sessions_dropped;
        self.sessions_paused += o.sessions_paused;
        self.sessions_interrupted += o.sessions_interrupted;
        self.sessions_unstarted += o.sessions_unstarted;
        self.retried += o.retried;
        self.in_flight += o.in_flight;
        self.parked += o.parked;
        self.sessions_dropped_parked += o.sessions_dropped_parked;
        self.sessions_left_parked += o.sessions_left_parked;
    }

    /// Iterates over used (request, client, phase, stats).
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize, usize, &RequestStats)> {
        let (nc, np) = (self.n_clients, self.n_phases);
        self.requests.iter().enumerate().filter_map(move |(i, s)| {
            s.as_deref()
                .map(|s| (i / (nc * np), (i / np) % nc, i % np, s))
        })
    }

    /// All requests merged, optionally filtered.
    pub fn total_where(&self, mut keep: impl FnMut(usize, usize, usize) -> bool) -> RequestStats {
        let mut t = RequestStats::default();
        for (r, c, p, s) in self.iter() {
            if keep(r, c, p) {
                t.merge(s);
            }
        }
        t
    }
}

/// What a shard sends to the collector once per second (and once more at the end).
#[derive(Debug)]
pub struct Snapshot {
    pub shard: usize,
    /// Interval number: this snapshot covers `[second, second + 1)` seconds from the run start
    /// (the final one may be shorter).
    pub second: u64,
    pub recorder: Recorder,
    /// True for the shard's last snapshot.
    pub last: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(request: usize, client: usize, phase: usize, us: u64) -> Sample {
        Sample {
            request,
            client,
            phase,
            latency_us: us,
            service_us: us / 2,
            ttfb_us: Some(us / 4),
            status: Some(200),
            error: None,
            bytes_in: 10,
            bytes_out: 5,
        }
    }

    #[test]
    fn a_recording_histogram_holds_its_range_without_growing_and_grows_past_it() {
        let mut h = new_recording_histogram();
        let bins = h.distinct_values();
        assert_eq!(
            bins,
            16 * 1024,
            "15 buckets of 1,024 sub-buckets, plus the first half"
        );
        assert_eq!(bins * 8, 128 * 1024);
        for v in [1, 999, 2_000_000, RECORDING_RANGE_US] {
            h.record(v).unwrap();
        }
        assert_eq!(
            h.distinct_values(),
            bins,
            "no value in range resizes the counts"
        );
        assert_eq!(h.len(), 4);
        assert_eq!(h.max(), h.highest_equivalent(RECORDING_RANGE_US));
        // Above the range: recorded, not clamped; the counts grow by one bucket.
        h.record(RECORDING_RANGE_US + 1).unwrap();
        assert_eq!(h.distinct_values(), bins + 1024);
        assert_eq!(h.len(), 5);
        assert_eq!(h.max(), h.highest_equivalent(RECORDING_RANGE_US + 1));
        assert_eq!(h.count_between(RECORDING_RANGE_US + 1, u64::MAX / 4), 1);
        // The run's cells use it: a merge of two cells keeps every count.
        let (mut a, mut b) = (RequestStats::default(), RequestStats::default());
        a.latency.record(5_000).unwrap();
        b.latency.record(40_000_000).unwrap();
        a.merge(&b);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.latency.count_between(40_000_000, 40_000_000), 1);
    }

    #[test]
    fn records_land_in_their_key_and_merge_adds_exactly() {
        let mut a = Recorder::new(2, 2, 3, 1);
        let mut b = a.empty_like();
        a.record(&sample(1, 0, 2, 1000));
        a.record(&sample(1, 0, 2, 3000));
        b.record(&sample(1, 0, 2, 2000));
        b.record(&Sample {
            error: Some(ErrorKind::Http5xx),
            status: Some(503),
            ..sample(0, 1, 0, 500)
        });
        a.merge(&b);
        let keys: Vec<_> = a.iter().map(|(r, c, p, s)| (r, c, p, s.count)).collect();
        assert_eq!(keys, vec![(0, 1, 0, 1), (1, 0, 2, 3)]);
        let mut t = a.total_where(|_, _, _| true);
        t.status.sort();
        assert_eq!(t.count, 4);
        assert_eq!(t.errors[ErrorKind::Http5xx as usize], 1);
        assert_eq!(t.status, vec![(200, 3), (503, 1)]);
        assert_eq!(t.bytes_in, 40);
        assert_eq!(a.clients[0].requests, 3);
        assert_eq!(a.clients[1].requests, 1);
        let s = a.requests[a.index(1, 0, 2)].as_ref().unwrap();
        assert_eq!(s.latency.max(), s.latency.highest_equivalent(3000));
        assert_eq!(s.latency.len(), 3);
    }
}
