//! `load.replay`: recorded requests (an access log, JSON lines, a HAR file) as the load.
//!
//! Each record is one arrival that carries its own request (a `FixedRequest`: method, path and
//! query, headers, body, request name, client). Two ways to time them:
//! - `speed` (default 100%): the log's own timing, compressed or stretched; arrival k is sent at
//!   its offset from the first record divided by the speed (records of a whole-second log that
//!   share a second are spread evenly over it); `loop: N` plays the file N times back to back.
//!   One phase, `replay`; the planned rate is the log's own, second by second.
//! - `shape: { countdown: … }` (any open-model source): the shape places the arrivals and they
//!   take the log's records in order, wrapping around as often as the shape needs, so the log's
//!   mix arrives on the shape's curve. The phases are the shape's.
//!
//! `filter` keeps some records, `clients_by` maps User-Agents to declared clients (a record no
//! pattern matches takes a client by share), `names:` names requests (see `records::names`).
//! Compiling reads the file once (constant memory): it counts the records, the names and the
//! per-second rate, and collects malformed lines (all counted, the first few named); under
//! `--strict` one malformed line is an error, before any load. During the run each shard streams
//! the file again and keeps the records it owns: record k belongs to segment k mod n, exactly as
//! other arrivals do. This is the one load source that reads a file.

use super::curve::{Piece, Shape};
use super::source::{Feed, FixedRequest, LoadSource};
use super::{phase, Arrival, Model, PlanOptions, Segment, Shaped};
use crate::records::{self, Format, Malformed, Names, Record};
use crate::scenario::model::{Load, Scenario};
use crate::scenario::spans::KeyPath;
use crate::scenario::Issue;
use indexmap::IndexMap;
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// More distinct request names than this go to `METHOD (other)`: a histogram each is the cost.
pub const MAX_NAMES: usize = 500;
/// Malformed lines named in messages (all are counted).
pub const SHOWN_MALFORMED: usize = 5;

/// The `load.replay` block.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// The file, relative to the scenario's directory; `.gz` is read directly.
    pub from: String,
    /// combined | jsonl | har; guessed from the content when left out.
    #[serde(default)]
    pub format: Option<Format>,
    /// The log's own timing at this speed (`200%` = twice as fast).
    #[serde(default)]
    pub speed: Option<Speed>,
    /// Or: an open-model load source that places the arrivals.
    #[serde(default)]
    pub shape: Option<Box<Load>>,
    #[serde(default)]
    pub filter: Filter,
    #[serde(default)]
    pub clients_by: Option<ClientsBy>,
    /// Play the file this many times (speed only).
    #[serde(default, rename = "loop")]
    pub loop_: Option<u32>,
    /// Path patterns that name requests (`/api/items/{id}`).
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Keep only these methods.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Keep only paths matching this regular expression.
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsBy {
    /// Regular expression on the User-Agent → declared client; the first match wins.
    pub user_agent: IndexMap<String, String>,
}

/// A playback speed: `200%`, `0.5`, `2x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed(pub f64);

impl Speed {
    pub fn parse(s: &str) -> Result<f64, String> {
        let t = s.trim();
        let (num, div) = if let Some(p) = t.strip_suffix('%') {
            (p, 100.0)
        } else if let Some(x) = t.strip_suffix('x') {
            (x, 1.0)
        } else {
            (t, 1.0)
        };
        match num.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v / div),
            _ => Err(format!(
                "`{s}` is not a speed: expected a percentage like 200% (twice as fast) or 50%"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let s = match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            _ => return Err(serde::de::Error::custom("expected a speed like 200%")),
        };
        Speed::parse(&s)
            .map(Speed)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Speed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}%", self.0 * 100.0))
    }
}

/// The rules, compiled: which records a replay keeps, and how it names and assigns them.
#[derive(Debug)]
struct Rules {
    file: PathBuf,
    format: Format,
    methods: Vec<String>,
    path: Option<Regex>,
    clients_by: Vec<(Regex, u32)>,
    names: Names,
    /// Keep a fraction of the records (`--scale` below 1).
    keep: f64,
}

impl Rules {
    fn new(r: &Replay, opts: &PlanOptions) -> Result<Rules, String> {
        let file = opts.base_dir.join(&r.from);
        if !file.is_file() {
            return Err(format!(
                "replay.from: the file `{}` does not exist (paths are relative to the scenario's directory)",
                file.display()
            ));
        }
        let format = match r.format {
            Some(f) => f,
            None => records::sniff(&file)?,
        };
        let path = match &r.filter.path {
            Some(p) => Some(Regex::new(p).map_err(|e| format!("replay.filter.path: {e}"))?),
            None => None,
        };
        let mut clients_by = Vec::new();
        if let Some(cb) = &r.clients_by {
            for (pat, client) in &cb.user_agent {
                let re = Regex::new(pat)
                    .map_err(|e| format!("replay.clients_by.user_agent `{pat}`: {e}"))?;
                let i = opts
                    .clients
                    .iter()
                    .position(|c| c == client)
                    .ok_or_else(|| {
                        format!("replay.clients_by: `{client}` is not a declared client")
                    })?;
                clients_by.push((re, i as u32));
            }
        }
        if opts.scale > 1.0 && r.shape.is_none() {
            return Err(format!(
                "--scale {} would multiply the log's records: a replay at its own timing can only be thinned (a scale up to 1); use `shape` for more load",
                opts.scale
            ));
        }
        Ok(Rules {
            file,
            format,
            methods: r
                .filter
                .methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            path,
            clients_by,
            names: Names::new(&r.names).map_err(|e| format!("replay.names: {e}"))?,
            keep: opts.scale.min(1.0),
        })
    }

    /// Does the filter keep this record?
    fn passes(&self, r: &Record) -> bool {
        (self.methods.is_empty() || self.methods.contains(&r.method))
            && self.path.as_ref().is_none_or(|re| re.is_match(r.path()))
    }

    fn client(&self, r: &Record) -> Option<u32> {
        let ua = r.user_agent();
        self.clients_by
            .iter()
            .find(|(re, _)| re.is_match(ua))
            .map(|(_, c)| *c)
    }
}

/// The kept records of the file, numbered 0, 1, 2, … in file order (the filter and `--scale`
/// applied), with malformed lines passed through for counting.
struct Kept {
    reader: records::Reader,
    /// Records that passed the filter so far (before thinning).
    passed: u64,
    next: u64,
    keep: f64,
}

enum Item {
    Rec(u64, Record),
    Bad(Malformed),
}

impl Kept {
    fn open(rules: &Rules) -> Result<Kept, String> {
        Ok(Kept {
            reader: records::read(&rules.file, rules.format)?,
            passed: 0,
            next: 0,
            keep: rules.keep,
        })
    }

    fn next_item(&mut self, rules: &Rules) -> Option<Item> {
        loop {
            match self.reader.next()? {
                Err(m) => return Some(Item::Bad(m)),
                Ok(r) => {
                    if !rules.passes(&r) {
                        continue;
                    }
                    let j = self.passed as f64;
                    self.passed += 1;
                    if self.keep < 1.0 && ((j + 1.0) * self.keep).floor() <= (j * self.keep).floor()
                    {
                        continue;
                    }
                    let k = self.next;
                    self.next += 1;
                    return Some(Item::Rec(k, r));
                }
            }
        }
    }
}

/// What compiling learned from one pass over the file.
#[derive(Debug)]
struct Scan {
    records: u64,
    malformed: u64,
    shown: Vec<Malformed>,
    /// Offsets count from here: the start of the first record's second.
    base: f64,
    /// The log has sub-second timestamps.
    subsecond: bool,
    /// Records per second of log time, from `base`.
    per_second: Vec<u32>,
    /// Request names in the order first seen.
    names: Vec<String>,
}

fn scan(rules: &Rules) -> Result<Scan, String> {
    let mut kept = Kept::open(rules)?;
    let (mut records, mut malformed) = (0u64, 0u64);
    let mut shown = Vec::new();
    let mut seconds: BTreeMap<i64, u32> = BTreeMap::new();
    let mut min_t = f64::INFINITY;
    let mut subsecond = false;
    let mut names: Vec<String> = Vec::new();
    let mut seen: HashMap<String, ()> = HashMap::new();
    while let Some(item) = kept.next_item(rules) {
        match item {
            Item::Bad(m) => {
                malformed += 1;
                if shown.len() < SHOWN_MALFORMED {
                    shown.push(m);
                }
            }
            Item::Rec(_, r) => {
                records += 1;
                subsecond |= r.subsecond;
                min_t = min_t.min(r.time);
                *seconds.entry(r.time.floor() as i64).or_insert(0) += 1;
                let mut name = rules.names.name(&r.method, r.path());
                if !seen.contains_key(&name) {
                    if names.len() >= MAX_NAMES {
                        name = other_name(&r.method);
                    }
                    if seen.insert(name.clone(), ()).is_none() {
                        names.push(name);
                    }
                }
            }
        }
    }
    let base = min_t.floor();
    let mut per_second: Vec<u32> = Vec::new();
    if let (Some(first), Some(last)) = (seconds.keys().next(), seconds.keys().next_back()) {
        per_second = vec![0; (last - first + 1) as usize];
        for (s, n) in &seconds {
            per_second[(s - first) as usize] = *n;
        }
    }
    Ok(Scan {
        records,
        malformed,
        shown,
        base,
        subsecond,
        per_second,
        names,
    })
}

/// "line 2 (truncated …), line 4 (bad timestamp …)".
fn describe(shown: &[Malformed], total: u64) -> String {
    let mut s = shown
        .iter()
        .map(|m| format!("line {} ({})", m.line, m.reason))
        .collect::<Vec<_>>()
        .join(", ");
    if total > shown.len() as u64 {
        s.push_str(&format!(", and {} more", total - shown.len() as u64));
    }
    s
}

impl LoadSource for Replay {
    fn key(&self) -> &'static str {
        "replay"
    }

    fn check(&self, at: &KeyPath, issues: &mut Vec<Issue>) {
        if self.speed.is_some() && self.shape.is_some() {
            issues.push(
                Issue::at(at.key("shape"), "give `speed` or `shape`, not both")
                    .on_key()
                    .help("`speed` keeps the log's own timing; `shape` imposes a curve on its requests"),
            );
        }
        if let Some(shape) = &self.shape {
            let sp = at.key("shape");
            let given = super::source::given(shape);
            match given.as_slice() {
                [one] if matches!(one.key(), "users" | "replay") => issues.push(
                    Issue::at(
                        sp.key(one.key()),
                        format!(
                            "a replay's shape must place arrivals: `{}` cannot",
                            one.key()
                        ),
                    )
                    .on_key()
                    .help("use an open-model source: stages, countdown or steps"),
                ),
                [one] => one.check(&sp.key(one.key()), issues),
                [] => issues.push(
                    Issue::at(sp.clone(), "the shape has no load source")
                        .help("for example `shape: { stages: [ { rate: 50/s, for: 30s } ] }`"),
                ),
                [_, b, ..] => issues.push(
                    Issue::at(sp.key(b.key()), "the shape has more than one load source").on_key(),
                ),
            }
            for (key, set) in [
                ("max_users", shape.max_users.is_some()),
                ("seed", shape.seed.is_some()),
            ] {
                if set {
                    issues.push(
                        Issue::at(
                            sp.key(key),
                            format!("`{key}` belongs under `load`, not in the shape"),
                        )
                        .on_key(),
                    );
                }
            }
            if self.loop_.is_some() {
                issues.push(
                    Issue::at(at.key("loop"), "`loop` goes with `speed`: a shape wraps around the log as often as it needs")
                        .on_key(),
                );
            }
        }
        if self.loop_ == Some(0) {
            issues.push(Issue::at(at.key("loop"), "`loop` must be at least 1"));
        }
        if let Some(p) = &self.filter.path {
            if let Err(e) = Regex::new(p) {
                issues.push(Issue::at(
                    at.key("filter").key("path"),
                    format!("not a regular expression: {e}"),
                ));
            }
        }
        if let Some(cb) = &self.clients_by {
            for pat in cb.user_agent.keys() {
                if let Err(e) = Regex::new(pat) {
                    issues.push(Issue::at(
                        at.key("clients_by").key("user_agent").key(pat),
                        format!("not a regular expression: {e}"),
                    ));
                }
            }
        }
        if let Err(e) = Names::new(&self.names) {
            issues.push(Issue::at(at.key("names"), e));
        }
    }

    fn check_in(&self, at: &KeyPath, s: &Scenario, base_dir: &Path, issues: &mut Vec<Issue>) {
        let file = base_dir.join(&self.from);
        if !file.is_file() {
            issues.push(
                Issue::at(
                    at.key("from"),
                    format!("the file `{}` does not exist", file.display()),
                )
                .help("paths are relative to the scenario file's directory"),
            );
        }
        if let Some(cb) = &self.clients_by {
            for (pat, client) in &cb.user_agent {
                if !s.clients.contains_key(client) {
                    let known: Vec<&str> = s.clients.keys().map(String::as_str).collect();
                    issues.push(
                        Issue::at(
                            at.key("clients_by").key("user_agent").key(pat),
                            format!("there is no client `{client}` in `clients`"),
                        )
                        .help_opt(crate::scenario::did_you_mean(client, known)),
                    );
                }
            }
        }
    }

    fn brings_requests(&self) -> bool {
        true
    }

    fn phase_names(&self) -> Vec<String> {
        match &self.shape {
            Some(s) => super::source::phase_names(s),
            None => vec!["replay".into()],
        }
    }

    fn instants(&self) -> Vec<String> {
        self.shape
            .as_deref()
            .map(super::source::instants)
            .unwrap_or_default()
    }

    fn compile(&self, opts: &PlanOptions) -> Result<Shaped, String> {
        let rules = Rules::new(self, opts)?;
        let scan = scan(&rules)?;
        let file = rules.file.display().to_string();
        if scan.malformed > 0 && opts.strict {
            return Err(format!(
                "replay.from: {file} has {} malformed {}: {}. Fix or remove {}, or run without --strict to skip {}",
                scan.malformed,
                plural(scan.malformed, "line"),
                describe(&scan.shown, scan.malformed),
                if scan.malformed == 1 { "it" } else { "them" },
                if scan.malformed == 1 { "it" } else { "them" },
            ));
        }
        if scan.records == 0 {
            return Err(format!(
                "replay.from: {file} has no records to replay{}",
                if self.filter.methods.is_empty() && self.filter.path.is_none() {
                    String::new()
                } else {
                    " that pass the filter".into()
                }
            ));
        }
        let mut notes = vec![format!(
            "replay: {} {} from {file} ({}), {} request {}",
            scan.records,
            plural(scan.records, "record"),
            rules.format.as_str(),
            scan.names.len(),
            plural(scan.names.len() as u64, "name")
        )];
        if scan.malformed > 0 {
            notes.push(format!(
                "replay: skipped {} malformed {} of {file}: {}",
                scan.malformed,
                plural(scan.malformed, "line"),
                describe(&scan.shown, scan.malformed)
            ));
        }
        let names = scan.names.clone();
        let mut shaped = match &self.shape {
            Some(inner) => {
                let given = super::source::given(inner);
                let [one] = given.as_slice() else {
                    return Err("replay.shape: give exactly one load source".into());
                };
                one.compile(opts)?
            }
            None => {
                let speed = self.speed.map_or(1.0, |s| s.0) / opts.time_scale;
                let passes = self.loop_.unwrap_or(1).max(1);
                let len = 1.0 / speed;
                let mut pieces = Vec::new();
                let span = scan.per_second.len() as f64 * len;
                for p in 0..passes {
                    for (i, n) in scan.per_second.iter().enumerate() {
                        let t0 = p as f64 * span + i as f64 * len;
                        pieces.push(Piece {
                            t0,
                            t1: t0 + len,
                            shape: Shape::Const {
                                v: *n as f64 * opts.scale.min(1.0) * speed,
                            },
                        });
                    }
                }
                Shaped {
                    pieces,
                    phases: vec![phase("replay", 0.0, span * passes as f64)],
                    ..Shaped::default()
                }
            }
        };
        if shaped.model != Model::Open {
            return Err("replay.shape: the shape must be an open model".into());
        }
        let mode = match &self.shape {
            Some(_) => Mode::Shape {
                records: scan.records,
            },
            None => Mode::Speed {
                speed: self.speed.map_or(1.0, |s| s.0) / opts.time_scale,
                passes: self.loop_.unwrap_or(1).max(1) as u64,
                records: scan.records,
                span: scan.per_second.len() as f64,
                per_second: Arc::new(scan.per_second.clone()),
            },
        };
        let index: HashMap<String, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        shaped.feed = Some(Arc::new(ReplayFeed {
            shared: Arc::new(Shared {
                rules,
                base: scan.base,
                subsecond: scan.subsecond,
                index,
            }),
            mode,
        }));
        shaped.names = names;
        shaped.notes.extend(notes);
        Ok(shaped)
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

#[derive(Debug, Clone)]
enum Mode {
    Speed {
        speed: f64,
        passes: u64,
        records: u64,
        /// Log seconds in one pass.
        span: f64,
        per_second: Arc<Vec<u32>>,
    },
    Shape {
        records: u64,
    },
}

/// The replay's arrivals, streamed from the file by each shard.
#[derive(Debug)]
struct ReplayFeed {
    shared: Arc<Shared>,
    mode: Mode,
}

/// What every shard's stream reads (shared, read-only).
#[derive(Debug)]
struct Shared {
    rules: Rules,
    base: f64,
    subsecond: bool,
    /// Request name → its number in `Plan::fixed_names`.
    index: HashMap<String, u32>,
}

impl Shared {
    fn fixed(&self, r: Record) -> FixedRequest {
        let name = self.rules.names.name(&r.method, r.path());
        let name = self
            .index
            .get(&name)
            .or_else(|| self.index.get(&other_name(&r.method)))
            .copied()
            .unwrap_or(0);
        let client = self.rules.client(&r);
        FixedRequest {
            headers: r
                .headers
                .into_iter()
                .filter(|(k, _)| !records::hop_by_hop(k))
                .collect(),
            method: r.method,
            target: r.target,
            body: r.body,
            name,
            client,
        }
    }
}

impl Feed for ReplayFeed {
    fn arrivals(
        &self,
        segment: Segment,
        placed: Box<dyn Iterator<Item = Arrival> + Send>,
    ) -> Box<dyn Iterator<Item = Arrival> + Send> {
        let Ok(kept) = Kept::open(&self.shared.rules) else {
            return Box::new(std::iter::empty());
        };
        let s = Stream {
            shared: self.shared.clone(),
            kept,
            segment,
            pass: 0,
            second: i64::MIN,
            in_second: 0,
        };
        match &self.mode {
            Mode::Speed {
                speed,
                passes,
                records,
                span,
                per_second,
            } => Box::new(SpeedArrivals {
                s,
                speed: *speed,
                passes: *passes,
                records: *records,
                span: *span,
                per_second: per_second.clone(),
            }),
            Mode::Shape { records } => Box::new(ShapeArrivals {
                s,
                placed,
                records: *records,
                at: None,
            }),
        }
    }
}

struct Stream {
    shared: Arc<Shared>,
    kept: Kept,
    segment: Segment,
    pass: u64,
    /// Whole-second logs: the second being read and how many of its records came so far.
    second: i64,
    in_second: u32,
}

impl Stream {
    /// The next kept record and its number within the pass.
    fn next_record(&mut self) -> Option<(u64, Record)> {
        loop {
            match self.kept.next_item(&self.shared.rules)? {
                Item::Bad(_) => continue,
                Item::Rec(k, r) => return Some((k, r)),
            }
        }
    }

    /// Opens the file again for the next pass.
    fn rewind(&mut self) -> bool {
        match Kept::open(&self.shared.rules) {
            Ok(k) => {
                self.kept = k;
                self.pass += 1;
                self.second = i64::MIN;
                true
            }
            Err(_) => false,
        }
    }
}

/// Records at their own offsets divided by the speed.
struct SpeedArrivals {
    s: Stream,
    speed: f64,
    passes: u64,
    records: u64,
    span: f64,
    per_second: Arc<Vec<u32>>,
}

impl Iterator for SpeedArrivals {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        loop {
            let Some((k, r)) = self.s.next_record() else {
                if self.s.pass + 1 >= self.passes || !self.s.rewind() {
                    return None;
                }
                continue;
            };
            // Offsets are counted for every record (owned or not), so that a whole-second log's
            // spread is the same in every segment.
            let offset = if self.s.shared.subsecond {
                (r.time - self.s.shared.base).max(0.0)
            } else {
                let sec = r.time.floor() as i64;
                if sec != self.s.second {
                    self.s.second = sec;
                    self.s.in_second = 0;
                }
                let j = self.s.in_second;
                self.s.in_second += 1;
                let b = (sec as f64 - self.s.shared.base).max(0.0);
                let n = self
                    .per_second
                    .get(b as usize)
                    .copied()
                    .unwrap_or(1)
                    .max(j + 1);
                b + (j as f64 + 0.5) / n as f64
            };
            let index = self.s.pass * self.records + k;
            if !self.s.segment.owns(index) {
                continue;
            }
            let t = (self.s.pass as f64 * self.span + offset) / self.speed;
            return Some(Arrival {
                index,
                t,
                fixed: Some(Arc::new(self.s.shared.fixed(r))),
            });
        }
    }
}

/// The shape's arrivals, each taking record (index mod records) of the log.
struct ShapeArrivals {
    s: Stream,
    placed: Box<dyn Iterator<Item = Arrival> + Send>,
    records: u64,
    /// The number of the record read last in this pass.
    at: Option<u64>,
}

impl Iterator for ShapeArrivals {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        let mut a = self.placed.next()?;
        let want = a.index % self.records;
        if self.at.is_some_and(|at| at >= want) {
            if !self.s.rewind() {
                return None;
            }
            self.at = None;
        }
        loop {
            let (k, r) = self.s.next_record()?;
            self.at = Some(k);
            if k == want {
                a.fixed = Some(Arc::new(self.s.shared.fixed(r)));
                return Some(a);
            }
        }
    }
}

/// The name of requests past `MAX_NAMES`.
pub fn other_name(method: &str) -> String {
    format!("{method} (other)")
}

#[cfg(test)]
mod tests {
    use crate::plan::{Arrival, Plan, PlanOptions, Segment};
    use crate::scenario::model::Load;

    fn plan(dir: &std::path::Path, log: &str, block: &str, strict: bool) -> Result<Plan, String> {
        std::fs::write(dir.join("a.log"), log).unwrap();
        let load: Load = serde_yaml::from_str(&format!("replay:\n  from: a.log\n{block}")).unwrap();
        let opts = PlanOptions {
            base_dir: dir.to_path_buf(),
            strict,
            ..PlanOptions::default()
        };
        Plan::compile(&load, &opts)
    }

    const LOG: &str = "{\"time\": 100.25, \"method\": \"GET\", \"path\": \"/a/1\"}\n\
        {\"time\": 100.5, \"method\": \"GET\", \"path\": \"/a/2\"}\n\
        not json\n\
        {\"time\": 102.125, \"method\": \"POST\", \"path\": \"/b\"}\n\
        {\"time\": 103.0, \"method\": \"GET\", \"path\": \"/a/3?x=1\"}\n";

    #[test]
    fn planned_instants_are_the_logs_offsets_divided_by_the_speed() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(dir.path(), LOG, "  speed: 200%\n", false).unwrap();
        let ts: Vec<f64> = p.arrivals(Segment::WHOLE).map(|a| a.t).collect();
        assert_eq!(ts, [0.125, 0.25, 1.0625, 1.5]);
        assert_eq!(p.duration, 2.0);
        assert_eq!(p.fixed_names, ["GET /a/:id", "POST /b"]);
        assert_eq!(p.phases[0].name, "replay");
        assert_eq!(p.expected_arrivals(0.0, 2.0), 4.0);
        assert!(p
            .notes
            .iter()
            .any(|n| n.contains("skipped 1 malformed line") && n.contains("line 3")));
        let first = p.arrivals(Segment::WHOLE).next().unwrap();
        let f = first.fixed.unwrap();
        assert_eq!(
            (f.method.as_str(), f.target.as_str(), f.name),
            ("GET", "/a/1", 0)
        );
    }

    #[test]
    fn segments_take_records_k_mod_n_and_add_up_to_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(dir.path(), LOG, "  loop: 2\n", false).unwrap();
        let whole: Vec<Arrival> = p.arrivals(Segment::WHOLE).collect();
        assert_eq!(whole.len(), 8);
        assert_eq!(whole[4].t, 4.25, "the second pass follows the first");
        for n in 1..=4 {
            let mut all: Vec<Arrival> = (0..n)
                .flat_map(|i| p.arrivals(Segment::new(i, n).unwrap()))
                .collect();
            all.sort_by_key(|a| a.index);
            assert_eq!(all, whole);
        }
    }

    #[test]
    fn strict_refuses_a_malformed_line_and_shapes_wrap_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let e = plan(dir.path(), LOG, "", true).unwrap_err();
        assert!(
            e.contains("1 malformed line: line 3 (not a JSON object"),
            "{e}"
        );
        let p = plan(
            dir.path(),
            LOG,
            "  shape: { stages: [ { rate: 10/s, for: 1s } ] }\narrivals: uniform\n",
            false,
        )
        .unwrap();
        let targets: Vec<String> = p
            .arrivals(Segment::WHOLE)
            .map(|a| a.fixed.unwrap().target.clone())
            .collect();
        assert_eq!(targets.len(), 10);
        assert_eq!(&targets[..5], ["/a/1", "/a/2", "/b", "/a/3?x=1", "/a/1"]);
    }
}
