//! latency.hlog: the HdrHistogram interval log of a run — one histogram per request name ×
//! client per second, written *while the run goes* from each interval the collector completes,
//! and read back by `flashcrowd report` (and merge and compare).
//!
//! Format: the standard interval log of the HdrHistogram tools (the hdrhistogram crate's
//! `interval_log` writer, V2 deflate-compressed histograms, base64), with `#[StartTime]` and
//! `#[BaseTime]` headers set to the run's start and interval timestamps relative to it. Values
//! and the max column are microseconds of latency from the intended start. Tags are `NAME|CLIENT`, each part percent-escaped (see [`tag`]).
//! Stream steps add three histograms of their own per second, tagged `NAME|CLIENT|first_event`,
//! `NAME|CLIENT|gap` and `NAME|CLIENT|duration` (see [`STREAM_METRICS`]); readers of request
//! latency skip them ([`stream_metric`]).
//!
//! Each interval's lines are appended and flushed at once, so an interrupted run leaves a valid
//! log of every second completed so far. Memory does not grow with the run's length: one
//! scratch histogram per tag, reset every second.

use crate::metrics::{Catalog, Recorder};
use anyhow::{anyhow, Context};
use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const FILE: &str = "latency.hlog";

/// Characters escaped in a tag part: those the interval-log format forbids in tags (`,`, space,
/// CR, LF), the separator `|`, the escape `%`, `=`, and every non-ASCII or control byte (so
/// any HdrHistogram tool, whatever encoding it assumes, reads the tag unchanged).
fn escaped(b: u8) -> bool {
    !b.is_ascii_graphic() || matches!(b, b',' | b'|' | b'%' | b'=')
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if escaped(b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The tag of a request name × client: `create-order|mobile-app`, `GET%20/api/items|pc-web`,
/// `%E4%B8%8B%E5%8D%95|mobile-app` (下单).
pub fn tag(name: &str, client: &str) -> String {
    format!("{}|{}", escape(name), escape(client))
}

/// The stream histograms' tag suffixes, in the order of `stream_histograms`.
pub const STREAM_METRICS: [&str; 3] = ["first_event", "gap", "duration"];

/// A stream step's histograms, in the order of [`STREAM_METRICS`].
fn stream_histograms(s: &crate::metrics::recorder::StreamStats) -> [&Histogram<u64>; 3] {
    [&s.first_event, &s.gap, &s.duration]
}

/// The stream metric of a 3-part tag (`NAME|CLIENT|gap` → `gap`); None for a latency tag.
pub fn stream_metric(tag: &str) -> Option<&str> {
    let mut parts = tag.splitn(3, '|');
    let (_, _, m) = (parts.next()?, parts.next()?, parts.next()?);
    STREAM_METRICS.contains(&m).then_some(m)
}

/// The (request name, client) of a tag written by [`tag`].
pub fn parse_tag(tag: &str) -> Option<(String, String)> {
    let (n, c) = tag.split_once('|')?;
    let c = c.split('|').next().unwrap_or(c);
    Some((unescape(n)?, unescape(c)?))
}

/// Appends each completed interval to the log as the run goes.
pub struct HlogWriter {
    path: PathBuf,
    file: std::fs::File,
    serializer: V2DeflateSerializer,
    /// Endpoint index → index of its request name in `tags` rows.
    name_of_endpoint: Vec<usize>,
    n_clients: usize,
    /// Per (name, client): the tag text.
    tags: Vec<String>,
    /// Per (name, client): this interval's merged latencies.
    scratch: Vec<Histogram<u64>>,
    /// Per (name, client) × stream metric: this interval's stream histograms.
    stream_scratch: Vec<Histogram<u64>>,
    buf: Vec<u8>,
}

impl HlogWriter {
    /// Creates `dir/latency.hlog` and writes its headers.
    pub fn create(dir: &Path, catalog: &Catalog, start: SystemTime) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
        let path = dir.join(FILE);
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut names: Vec<&str> = Vec::new();
        let name_of_endpoint = catalog
            .endpoints
            .iter()
            .map(|e| match names.iter().position(|n| *n == e.name) {
                Some(i) => i,
                None => {
                    names.push(&e.name);
                    names.len() - 1
                }
            })
            .collect();
        let n_clients = catalog.clients.len();
        let tags: Vec<String> = names
            .iter()
            .flat_map(|n| catalog.clients.iter().map(move |c| tag(n, c)))
            .collect();
        // Kept for the whole run and reset each second: sized for the recording range from the
        // start, so a new largest latency does not grow them (`new_recording_histogram`). The
        // stream histograms stay small until a stream step records into them.
        let scratch = tags
            .iter()
            .map(|_| crate::metrics::recorder::new_recording_histogram())
            .collect();
        let stream_scratch = (0..tags.len() * STREAM_METRICS.len())
            .map(|_| crate::metrics::recorder::new_histogram())
            .collect();
        let mut serializer = V2DeflateSerializer::new();
        let mut head = Vec::new();
        IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "flashcrowd {} latency log: latency from the intended start in microseconds; one histogram per request name × client per second; \
                 Tag=NAME|CLIENT, each part percent-escaped (UTF-8)",
                env!("CARGO_PKG_VERSION")
            ))
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut head, &mut serializer)?;
        file.write_all(&head)?;
        file.flush()?;
        Ok(HlogWriter {
            path,
            file,
            serializer,
            name_of_endpoint,
            n_clients,
            tags,
            scratch,
            stream_scratch,
            buf: Vec::new(),
        })
    }

    /// Appends interval `second` (all shards merged): one line per tag that saw a request.
    pub fn interval(&mut self, second: u64, rec: &Recorder) -> anyhow::Result<()> {
        for (e, c, _phase, s) in rec.iter() {
            let i = self.name_of_endpoint[e] * self.n_clients + c;
            let _ = self.scratch[i].add(&s.latency);
            if let Some(st) = &s.stream {
                for (m, h) in stream_histograms(st).into_iter().enumerate() {
                    let _ = self.stream_scratch[i * STREAM_METRICS.len() + m].add(h);
                }
            }
        }
        self.buf.clear();
        {
            // A writer without headers: it only formats the interval lines into `buf`.
            let mut w = IntervalLogWriterBuilder::new()
                .begin_log_with(&mut self.buf, &mut self.serializer)?;
            for (h, t) in self.scratch.iter().zip(&self.tags) {
                if h.is_empty() {
                    continue;
                }
                let tag = Tag::new(t).expect("escaped tags hold no forbidden character");
                w.write_histogram(
                    h,
                    Duration::from_secs(second),
                    Duration::from_secs(1),
                    Some(tag),
                )
                .map_err(|e| anyhow!("cannot encode an interval histogram: {e}"))?;
            }
            for (k, h) in self.stream_scratch.iter().enumerate() {
                if h.is_empty() {
                    continue;
                }
                let (t, m) = (
                    &self.tags[k / STREAM_METRICS.len()],
                    k % STREAM_METRICS.len(),
                );
                let t = format!("{t}|{}", STREAM_METRICS[m]);
                let tag = Tag::new(&t).expect("escaped tags hold no forbidden character");
                w.write_histogram(
                    h,
                    Duration::from_secs(second),
                    Duration::from_secs(1),
                    Some(tag),
                )
                .map_err(|e| anyhow!("cannot encode an interval histogram: {e}"))?;
            }
        }
        for h in self
            .scratch
            .iter_mut()
            .chain(self.stream_scratch.iter_mut())
        {
            h.reset();
        }
        self.file
            .write_all(&self.buf)
            .and_then(|_| self.file.flush())
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }

    /// Flushes the log to disk; the path written.
    pub fn close(mut self) -> anyhow::Result<PathBuf> {
        self.file.flush()?;
        self.file.sync_all()?;
        Ok(self.path)
    }
}

/// One tag's histograms, as read back.
#[derive(Debug, Clone)]
pub struct TagHistogram {
    pub name: String,
    pub client: String,
    /// Every interval merged.
    pub total: Histogram<u64>,
}

/// What the exporters use from latency.hlog.
#[derive(Debug, Clone, Default)]
pub struct HlogData {
    /// Seconds since the epoch, from `#[StartTime]`.
    pub start_time: Option<f64>,
    /// In order of first appearance.
    pub tags: Vec<TagHistogram>,
    /// Per second (interval start, relative), all tags merged.
    pub seconds: BTreeMap<u64, Histogram<u64>>,
    /// Set when the log ends in a partial line (a run killed mid-write): everything before it
    /// was read.
    pub truncated: bool,
    /// Stream steps' histograms (`NAME|CLIENT|first_event` …), every interval merged, by tag.
    pub streams: BTreeMap<String, Histogram<u64>>,
}

impl HlogData {
    /// Every tag merged: the whole run's latency.
    pub fn all(&self) -> Histogram<u64> {
        let mut h = crate::metrics::recorder::new_histogram();
        for t in &self.tags {
            let _ = h.add(&t.total);
        }
        h
    }
}

/// Reads `dir/latency.hlog`.
pub fn read(dir: &Path) -> anyhow::Result<HlogData> {
    let path = dir.join(FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a valid interval log", path.display()))
}

pub fn parse(bytes: &[u8]) -> anyhow::Result<HlogData> {
    parse_before(bytes, u64::MAX)
}

/// Reads `dir/latency.hlog`, keeping only the intervals of seconds before `end` (a run rebuilt
/// from its journal shows the seconds the journal holds, and the log may be a second ahead).
pub fn read_before(dir: &Path, end: u64) -> anyhow::Result<HlogData> {
    let path = dir.join(FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_before(&bytes, end)
        .with_context(|| format!("{} is not a valid interval log", path.display()))
}

fn parse_before(bytes: &[u8], end: u64) -> anyhow::Result<HlogData> {
    let mut out = HlogData::default();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut de = Deserializer::new();
    let mut raw = Vec::new();
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(bytes) {
        let entry = match entry {
            Ok(e) => e,
            Err(_) => {
                out.truncated = true;
                break;
            }
        };
        let LogEntry::Interval(ih) = entry else {
            if let LogEntry::StartTime(t) = entry {
                out.start_time = Some(t.as_secs_f64());
            }
            continue;
        };
        let sec = ih.start_timestamp().as_secs_f64().round() as u64;
        if sec >= end {
            continue;
        }
        raw.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(ih.encoded_histogram(), &mut raw)
            .map_err(|e| anyhow!("bad base64 in an interval: {e}"))?;
        let h: Histogram<u64> = de
            .deserialize(&mut raw.as_slice())
            .map_err(|e| anyhow!("bad histogram in an interval: {e:?}"))?;
        let tag = ih.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
        if stream_metric(&tag).is_some() {
            let _ = out
                .streams
                .entry(tag)
                .or_insert_with(crate::metrics::recorder::new_histogram)
                .add(&h);
            continue;
        }
        let i = match index.get(&tag) {
            Some(i) => *i,
            None => {
                let (name, client) = parse_tag(&tag).unwrap_or((tag.clone(), String::new()));
                out.tags.push(TagHistogram {
                    name,
                    client,
                    total: crate::metrics::recorder::new_histogram(),
                });
                index.insert(tag, out.tags.len() - 1);
                out.tags.len() - 1
            }
        };
        let _ = out.tags[i].total.add(&h);
        let _ = out
            .seconds
            .entry(sec)
            .or_insert_with(crate::metrics::recorder::new_histogram)
            .add(&h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog::EndpointName;
    use crate::metrics::recorder::Sample;

    #[test]
    fn tags_escape_separators_spaces_and_non_ascii_and_round_trip() {
        let t = tag("GET /api/items?a=1,b", "pc|web");
        assert_eq!(t, "GET%20/api/items?a%3D1%2Cb|pc%7Cweb");
        assert!(Tag::new(&t).is_some());
        assert_eq!(tag("下单", "mobile-app"), "%E4%B8%8B%E5%8D%95|mobile-app");
        for (n, c) in [("下单", "移动"), ("a%b", "c d"), ("x|y", "")] {
            assert_eq!(parse_tag(&tag(n, c)), Some((n.to_string(), c.to_string())));
        }
    }

    #[test]
    fn an_interrupted_log_reads_back_every_completed_interval() {
        let cat = Catalog {
            networks: vec![],
            endpoints: vec![
                EndpointName {
                    name: "下单".into(),
                    journey: 0,
                },
                EndpointName {
                    name: "下单".into(),
                    journey: 1,
                },
            ],
            journeys: vec!["a".into(), "b".into()],
            clients: vec!["mobile app".into()],
            phases: vec![],
        };
        let dir = tempfile::tempdir().unwrap();
        let mut w = HlogWriter::create(dir.path(), &cat, SystemTime::now()).unwrap();
        for sec in 0..3u64 {
            let mut r = Recorder::new(2, 1, 1, 2);
            for i in 0..10 {
                r.record(&Sample {
                    request: (i % 2) as usize,
                    client: 0,
                    phase: 0,
                    latency_us: 1000 * (sec + 1),
                    service_us: 1,
                    ttfb_us: None,
                    status: Some(200),
                    error: None,
                    bytes_in: 0,
                    bytes_out: 0,
                });
            }
            w.interval(sec, &r).unwrap();
        }
        drop(w); // no close: as if the process stopped here
        let mut bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        bytes.extend_from_slice(b"Tag=x|y,3.000,1.0"); // a half-written line
        let d = parse(&bytes).unwrap();
        assert!(d.truncated);
        assert_eq!(d.tags.len(), 1);
        assert_eq!(d.tags[0].name, "下单");
        assert_eq!(d.tags[0].client, "mobile app");
        assert_eq!(d.tags[0].total.len(), 30);
        assert_eq!(d.seconds.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(d.start_time.is_some());
    }
}
