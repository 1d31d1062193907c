//! latency.hlog read second by second and tag by tag: what `compare` resamples and what the
//! capacity drill evaluates per step. (`report::hlog::read` keeps only totals per tag and per
//! second; this keeps each tag's seconds apart, sparse.)

use anyhow::{anyhow, Context};
use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::Path;

/// One second of one tag: (latency µs as the highest equivalent value of its bucket, count).
#[derive(Debug, Clone, Default)]
pub struct Interval {
    pub values: Vec<(u64, u64)>,
    pub total: u64,
    pub max_us: u64,
}

impl Interval {
    fn add(&mut self, h: &Histogram<u64>) {
        let mut m: BTreeMap<u64, u64> = self.values.iter().copied().collect();
        for v in h.iter_recorded() {
            *m.entry(h.highest_equivalent(v.value_iterated_to()))
                .or_insert(0) += v.count_at_value();
        }
        self.values = m.into_iter().collect();
        self.total += h.len();
        self.max_us = self.max_us.max(h.max());
    }
}

/// One request name × client, second by second.
#[derive(Debug, Clone)]
pub struct TagSeconds {
    pub name: String,
    pub client: String,
    pub seconds: BTreeMap<u64, Interval>,
}

/// Reads `dir/latency.hlog`.
pub fn read(dir: &Path) -> anyhow::Result<Vec<TagSeconds>> {
    let path = dir.join(crate::report::hlog::FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a valid interval log", path.display()))
}

pub fn parse(bytes: &[u8]) -> anyhow::Result<Vec<TagSeconds>> {
    let mut out: Vec<TagSeconds> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut de = Deserializer::new();
    let mut raw = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        // A partial last line (a killed run): everything before it counts.
        let Ok(LogEntry::Interval(ih)) = entry else {
            if entry.is_err() {
                break;
            }
            continue;
        };
        raw.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(ih.encoded_histogram(), &mut raw)
            .map_err(|e| anyhow!("bad base64 in an interval: {e}"))?;
        let h: Histogram<u64> = de
            .deserialize(&mut raw.as_slice())
            .map_err(|e| anyhow!("bad histogram in an interval: {e:?}"))?;
        let tag = ih.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
        if crate::report::hlog::stream_metric(&tag).is_some() {
            continue; // a stream step's own histogram, not request latency
        }
        let i = *index.entry(tag.clone()).or_insert_with(|| {
            let (name, client) =
                crate::report::hlog::parse_tag(&tag).unwrap_or((tag.clone(), String::new()));
            out.push(TagSeconds {
                name,
                client,
                seconds: BTreeMap::new(),
            });
            out.len() - 1
        });
        let sec = ih.start_timestamp().as_secs_f64().round() as u64;
        out[i].seconds.entry(sec).or_default().add(&h);
    }
    Ok(out)
}
