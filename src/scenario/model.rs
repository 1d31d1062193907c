//! The scenario file as data: one serde type per YAML block of format v1.
//!
//! Every struct denies unknown keys, so a misspelt key is an error (with a did-you-mean added by
//! `scenario::de` and the loader). Step forms and load shapes are flat structs with optional
//! fields rather than untagged enums: serde's untagged errors ("did not match any variant") help
//! nobody, so the "exactly one of" rules live in `scenario::validate` where they can name the
//! offending keys. The enums that are not plain words (`Think`, `StatusSpec`, `At`) are read by
//! hand, so they work with serde_yaml and give errors that say what to write.

use super::units::{Dur, Share};
use chrono::{DateTime, FixedOffset};
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

pub type Headers = IndexMap<String, String>;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Base URL of the system under test; `--target` overrides it.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub defaults: Defaults,
    /// The device mix. Empty means one client named `default` with a 100 % share.
    #[serde(default)]
    pub clients: IndexMap<String, Client>,
    #[serde(default)]
    pub data: IndexMap<String, DataSet>,
    /// What an arriving user does; none when the load brings its own requests (a replay).
    #[serde(default)]
    pub journeys: IndexMap<String, Journey>,
    pub load: Load,
    #[serde(default)]
    pub thresholds: Vec<String>,
    #[serde(default)]
    pub abort: Vec<String>,
    #[serde(default)]
    pub safety: Safety,
    /// The target's own metrics to scrape during the run (its "water level").
    #[serde(default)]
    pub monitor: Option<Monitor>,
    /// Contingency drills under load: what to do, and when (see `crate::run::actions`).
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
    /// How recovery after an action is judged.
    #[serde(default)]
    pub recovery: Option<Recovery>,
}

/// One entry of `actions:`: a name, `at` or `when`, and one of `http`, `run`, `steer`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub name: String,
    /// An offset (`90s`), or a moment or phase name ± an offset (`sale-start+30s`, `peak`).
    #[serde(default)]
    pub at: Option<String>,
    /// A rule like an abort rule (`p99 > 500ms for 10s`).
    #[serde(default)]
    pub when: Option<String>,
    /// `when` actions: fire again each time the rule holds again (default: once).
    #[serde(default)]
    pub repeat: bool,
    /// One request, written like a journey's request step (one method key with the URL,
    /// `headers`, `json` or `body`, `expect: { status }`) and sent as written; `validate`
    /// refuses the keys only a journey step has.
    #[serde(default)]
    pub http: Option<Step>,
    /// A program and its arguments (no shell); refused unless `--allow-run`.
    #[serde(default)]
    pub run: Option<Vec<String>>,
    #[serde(default)]
    pub steer: Option<SteerSpec>,
    /// The longest the action may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// A failed action (non-2xx or unexpected status, non-zero exit, timeout) aborts the run.
    #[serde(default)]
    pub abort_on_failure: bool,
}

/// `steer:` of an action: `pause`, `resume`, `stop`, or `{ rate: 0.5 }` (a factor of the plan).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SteerSpec {
    Pause,
    Resume,
    Stop,
    Rate(f64),
}

const STEER_FORMS: &str = "pause, resume, stop or { rate: 0.5 }";

impl<'de> Deserialize<'de> for SteerSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SteerSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a live-control verb: {STEER_FORMS}")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<SteerSpec, E> {
                match s.trim() {
                    "pause" => Ok(SteerSpec::Pause),
                    "resume" => Ok(SteerSpec::Resume),
                    "stop" => Ok(SteerSpec::Stop),
                    other => Err(E::custom(format!(
                        "`{other}` is not a live-control verb: write {STEER_FORMS}"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<SteerSpec, A::Error> {
                use serde::de::Error;
                let key: Option<String> = m.next_key()?;
                match key.as_deref() {
                    Some("rate") => {
                        let f: f64 = m.next_value()?;
                        if !f.is_finite() || f < 0.0 {
                            return Err(A::Error::custom(format!(
                                "steer rate must be a factor of the plan ≥ 0, like 0.5; got {f}"
                            )));
                        }
                        if let Some(extra) = m.next_key::<String>()? {
                            return Err(A::Error::custom(format!(
                                "steer takes one verb, but `{extra}` follows `rate`"
                            )));
                        }
                        Ok(SteerSpec::Rate(f))
                    }
                    Some(other) => Err(A::Error::custom(format!(
                        "`{other}` is not a steer form: write {STEER_FORMS}"
                    ))),
                    None => Err(A::Error::custom(format!(
                        "steer needs a verb: {STEER_FORMS}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for SteerSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            SteerSpec::Pause => s.serialize_str("pause"),
            SteerSpec::Resume => s.serialize_str("resume"),
            SteerSpec::Stop => s.serialize_str("stop"),
            SteerSpec::Rate(f) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("rate", f)?;
                m.end()
            }
        }
    }
}

/// `recovery:` — when the target counts as recovered after an action.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Thresholds judged per second (`p99 < 300ms`, `errors < 1%`); all must hold.
    pub slo: Vec<String>,
    /// How long the SLO must hold without a break (default 10s).
    #[serde(default)]
    pub stable: Option<Dur>,
}

/// `monitor:` — scrape the target's Prometheus endpoints during the run (see `ops::monitor`
/// for the series expressions).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// Scrape interval (default 5s).
    #[serde(default)]
    pub every: Option<Dur>,
    pub targets: Vec<MonitorTarget>,
    /// name → expression: `node_load1`, `busy(node_cpu_seconds_total)`, `rate(x_total)`,
    /// `a - b`.
    pub series: IndexMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorTarget {
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Per-request timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    #[serde(default)]
    pub headers: Headers,
    #[serde(default)]
    pub tls: Tls,
    /// Largest response body read; larger ones are cut and counted as `body` errors. Default 10 MiB.
    #[serde(default)]
    pub max_body: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    #[serde(default)]
    pub insecure: bool,
    /// PEM file with a private CA, relative to the scenario file.
    #[serde(default)]
    pub ca: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpVersion {
    #[default]
    H1,
    H2,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionMode {
    /// Each user session owns one connection and reuses it for all its requests.
    #[default]
    PerUser,
    /// Connections are pooled per shard and shared by its sessions (one multiplexed connection for h2).
    Shared,
    /// A new connection for every request.
    Fresh,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub share: Share,
    #[serde(default)]
    pub http: HttpVersion,
    #[serde(default)]
    pub connection: ConnectionMode,
    #[serde(default)]
    pub headers: Headers,
    /// Pause between steps; none by default.
    #[serde(default)]
    pub think: Option<Think>,
    /// Share of this client during named phases, overriding `share` there.
    #[serde(default)]
    pub during: IndexMap<String, Share>,
    /// `connection: shared` over HTTP/1.1: most connections per generator thread (default 256).
    #[serde(default)]
    pub pool: Option<u32>,
    /// Close connections with SO_LINGER 0 (RST, no TIME_WAIT).
    #[serde(default)]
    pub reset_on_close: bool,
    /// The network its connections cross (`4g`, or `{ rtt, jitter, down, up }`), emulated in the
    /// generator; none: the machine's own.
    #[serde(default)]
    pub network: Option<super::network::Network>,
}

/// Think-time distribution between a client's steps, written as a one-key mapping:
/// `{ lognormal: { median: 1s, p90: 4s } }`, `{ uniform: [1s, 3s] }` or `{ constant: 1s }`
/// (a bare duration, `think: 1s`, means `constant`).
///
/// Deserialize and Serialize are written by hand: serde_yaml 0.9 reads and writes externally
/// tagged enums only as YAML tags (`!lognormal`), which nobody writes by hand.
#[derive(Debug, Clone, PartialEq)]
pub enum Think {
    Lognormal { median: Dur, p90: Dur },
    Uniform([Dur; 2]),
    Constant(Dur),
}

const THINK_FORMS: &str =
    "{ lognormal: { median: 1s, p90: 4s } }, { uniform: [1s, 3s] } or { constant: 1s }";
const THINK_KINDS: &[&str] = &["lognormal", "uniform", "constant"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LognormalParams {
    median: Dur,
    p90: Dur,
}

/// The distribution's name, read as a key so that a misspelt one is reported at the key.
enum ThinkKind {
    Lognormal,
    Uniform,
    Constant,
}

impl<'de> Deserialize<'de> for ThinkKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ThinkKind;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("lognormal, uniform or constant")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ThinkKind, E> {
                match s {
                    "lognormal" => Ok(ThinkKind::Lognormal),
                    "uniform" => Ok(ThinkKind::Uniform),
                    "constant" => Ok(ThinkKind::Constant),
                    other => Err(E::unknown_variant(other, THINK_KINDS)),
                }
            }
        }
        d.deserialize_identifier(V)
    }
}

/// `[min, max]` of a uniform think time; the length is checked where the list is read.
struct UniformRange([Dur; 2]);

impl<'de> Deserialize<'de> for UniformRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<Dur>::deserialize(d)?;
        match v.as_slice() {
            [a, b] if a <= b => Ok(UniformRange([*a, *b])),
            [a, b] => Err(serde::de::Error::custom(format!(
                "uniform takes [min, max], but {a} is above {b}"
            ))),
            _ => Err(serde::de::Error::custom(format!(
                "uniform takes two durations, [min, max] like [1s, 3s]; found {}",
                v.len()
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Think {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Think;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a think-time distribution: {THINK_FORMS}")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Think, E> {
                super::units::parse_duration(s)
                    .map(|d| Think::Constant(Dur(d)))
                    .map_err(|e| E::custom(format!("{e}; or a distribution: {THINK_FORMS}")))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Think, A::Error> {
                use serde::de::Error;
                let Some(kind) = m.next_key::<ThinkKind>()? else {
                    return Err(A::Error::custom(format!(
                        "think needs a distribution: {THINK_FORMS}"
                    )));
                };
                let think = match kind {
                    ThinkKind::Lognormal => {
                        let p: LognormalParams = m.next_value()?;
                        Think::Lognormal {
                            median: p.median,
                            p90: p.p90,
                        }
                    }
                    ThinkKind::Uniform => Think::Uniform(m.next_value::<UniformRange>()?.0),
                    ThinkKind::Constant => Think::Constant(m.next_value()?),
                };
                if let Some(extra) = m.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "think takes one distribution, but `{extra}` follows another"
                    )));
                }
                Ok(think)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Think {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Think::Lognormal { median, p90 } => {
                let mut inner = IndexMap::new();
                inner.insert("median", *median);
                inner.insert("p90", *p90);
                m.serialize_entry("lognormal", &inner)?;
            }
            Think::Uniform(r) => m.serialize_entry("uniform", r)?,
            Think::Constant(d) => m.serialize_entry("constant", d)?,
        }
        m.end()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// Rows in file order, wrapping around at the end.
    #[default]
    Sequential,
    /// A uniformly random row for each session.
    Random,
    /// Each row used at most once in the whole run (across all segments); sessions past the end
    /// of the file fail with a `data` error.
    Unique,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSet {
    /// CSV file with a header row, relative to the scenario file.
    pub csv: String,
    #[serde(default)]
    pub pick: Pick,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Journey {
    pub share: Share,
    /// Only these clients take this journey; all clients when absent.
    #[serde(default)]
    pub clients: Option<Vec<String>>,
    /// Only sessions that arrive during these phases or moments take this journey (`[presale]`);
    /// at any time when absent.
    #[serde(default)]
    pub during: Option<Vec<String>>,
    pub steps: Vec<Step>,
}

/// One step of a journey. Exactly one of the request methods, `think`, `wait` or `rendezvous`
/// is set; the other keys qualify a request step.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub get: Option<String>,
    #[serde(default)]
    pub post: Option<String>,
    #[serde(default)]
    pub put: Option<String>,
    #[serde(default)]
    pub patch: Option<String>,
    #[serde(default)]
    pub delete: Option<String>,
    #[serde(default)]
    pub head: Option<String>,
    /// Metric name; default `METHOD /path/template`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub headers: Headers,
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// JSON body; string leaves are templates.
    #[serde(default)]
    pub json: Option<serde_yaml::Value>,
    /// URL-encoded form body; values are templates.
    #[serde(default)]
    pub form: Option<IndexMap<String, String>>,
    /// Raw body template.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Variable name → JSONPath into the response body.
    #[serde(default)]
    pub capture: IndexMap<String, String>,
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Explicit pause.
    #[serde(default)]
    pub think: Option<Dur>,
    /// Wait for a named instant: `sale-start` (countdown loads) or a calendar moment's name.
    #[serde(default)]
    pub wait: Option<String>,
    #[serde(default)]
    pub rendezvous: Option<Rendezvous>,
    /// A WebSocket on the target (path template; ws:// for an http target, wss:// for https).
    #[serde(default)]
    pub ws: Option<String>,
    /// Server-Sent Events: GET the path and read the event stream.
    #[serde(default)]
    pub sse: Option<String>,
    /// WebSocket: a text message (template) sent on open, and again every `every`.
    #[serde(default)]
    pub send: Option<String>,
    #[serde(default)]
    pub every: Option<Dur>,
    /// WebSocket: how long to stay connected, receiving (default: until the server closes).
    #[serde(default)]
    pub hold: Option<Dur>,
    /// SSE: when the stream is done: `{ event: done }`, `{ events: 50 }` or `{ for: 30s }`
    /// (default: when the server ends it).
    #[serde(default)]
    pub until: Option<Until>,
}

/// When an SSE step is done reading. Exactly one key (checked in `validate`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Until {
    /// An event of this name (`event:` field) arrived.
    #[serde(default)]
    pub event: Option<String>,
    /// This many events arrived.
    #[serde(default)]
    pub events: Option<u64>,
    /// The stream has been read this long.
    #[serde(default, rename = "for")]
    pub for_: Option<Dur>,
}

/// Accepted status codes: `200` or `[200, 201]`. Deserialized by hand so that a wrong value
/// says what is expected instead of "did not match any variant of untagged enum".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Any(Vec<u16>),
}

fn status_code<E: serde::de::Error>(n: u64) -> Result<u16, E> {
    if (100..=599).contains(&n) {
        Ok(n as u16)
    } else {
        Err(E::custom(format!(
            "`{n}` is not an HTTP status code: expected 100 to 599"
        )))
    }
}

impl<'de> Deserialize<'de> for StatusSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StatusSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a status code like 200 or a list like [200, 201]")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<StatusSpec, E> {
                status_code(n).map(StatusSpec::One)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<StatusSpec, E> {
                Err(E::custom(format!(
                    "`{n}` is not an HTTP status code: expected 100 to 599"
                )))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<StatusSpec, A::Error> {
                let mut codes = Vec::new();
                while let Some(n) = s.next_element::<u64>()? {
                    codes.push(status_code(n)?);
                }
                if codes.is_empty() {
                    return Err(serde::de::Error::custom(
                        "the list of status codes is empty: give at least one, like [200, 201]",
                    ));
                }
                Ok(StatusSpec::Any(codes))
            }
        }
        d.deserialize_any(V)
    }
}

impl StatusSpec {
    pub fn codes(&self) -> Vec<u16> {
        match self {
            StatusSpec::One(c) => vec![*c],
            StatusSpec::Any(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Accepted status codes. Without it, 2xx and 3xx pass and 4xx/5xx count as http errors.
    #[serde(default)]
    pub status: Option<StatusSpec>,
    /// JSONPath → expected value.
    #[serde(default)]
    pub json: IndexMap<String, serde_yaml::Value>,
    /// Text the body must contain.
    #[serde(default)]
    pub contains: Option<String>,
    /// WebSocket and SSE: JSONPath → expected value in the first message (or event data).
    #[serde(default)]
    pub first: IndexMap<String, serde_yaml::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rendezvous {
    pub name: String,
    /// Release when this many users have gathered (over all segments).
    pub users: u64,
    /// Release whoever is waiting after this long.
    pub timeout: Dur,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    #[default]
    Poisson,
    Uniform,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default)]
    pub stages: Option<Vec<Stage>>,
    #[serde(default)]
    pub users: Option<Vec<UserStage>>,
    #[serde(default)]
    pub countdown: Option<Countdown>,
    #[serde(default)]
    pub steps: Option<StepDrill>,
    #[serde(default)]
    pub calendar: Option<Calendar>,
    #[serde(default)]
    pub replay: Option<Replay>,
    /// Cap on sessions in flight (open model); arrivals beyond it are dropped and counted.
    #[serde(default)]
    pub max_users: Option<u64>,
    /// Closed model: journeys per user; open model: sessions in all. The run ends when they
    /// are done (or the plan is over, whichever comes first).
    #[serde(default)]
    pub iterations: Option<u64>,
    #[serde(default)]
    pub arrivals: Arrivals,
    /// Seed for arrivals, client/journey picks and random data; same seed, same plan.
    #[serde(default)]
    pub seed: Option<u64>,
}

pub use crate::plan::{Calendar, Countdown, Replay, Stage, StepDrill, UserStage};

impl Load {
    /// The UTC offset the load's instants are written in (`+08:00`): the calendar's `from` or
    /// first wall-clock moment, or the countdown's sale start. Reports show times in it.
    pub fn zone(&self) -> Option<FixedOffset> {
        let of = |a: &At| match a {
            At::Instant(t) => Some(*t.offset()),
            At::Offset(_) => None,
        };
        if let Some(c) = &self.calendar {
            return c
                .from
                .as_ref()
                .and_then(of)
                .or_else(|| c.moments.values().find_map(|m| of(&m.at)));
        }
        self.countdown.as_ref().and_then(|c| of(&c.sale_start))
    }
}

/// An instant: an offset from the run start (`2m`) or a wall-clock RFC 3339 time, kept in the
/// offset it was written in (`+08:00`) so that listings show it as the author wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum At {
    Offset(Dur),
    Instant(DateTime<FixedOffset>),
}

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let s = match &v {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => {
                return Err(serde::de::Error::custom(format!(
                    "`{n}` has no unit: expected an offset like 2m or an RFC 3339 instant like 2026-11-11T00:00:00+08:00"
                )))
            }
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected an offset like 2m or an RFC 3339 instant, got {}",
                    super::units::describe(other)
                )))
            }
        };
        if let Ok(d) = super::units::parse_duration(&s) {
            return Ok(At::Offset(Dur(d)));
        }
        DateTime::parse_from_rfc3339(s.trim())
            .map(At::Instant)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{s}` is neither an offset like 2m nor an RFC 3339 instant like 2026-11-11T00:00:00+08:00"
                ))
            })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    /// Header that tags test traffic. A non-loopback target is refused unless every request carries it.
    #[serde(default = "default_tag_header")]
    pub tag_header: String,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            tag_header: default_tag_header(),
        }
    }
}

fn default_tag_header() -> String {
    "X-Load-Test".to_string()
}

/// The request-method keys of a step (and of an action's `http:`), with their HTTP methods.
pub const METHOD_KEYS: [(&str, &str); 6] = [
    ("get", "GET"),
    ("post", "POST"),
    ("put", "PUT"),
    ("patch", "PATCH"),
    ("delete", "DELETE"),
    ("head", "HEAD"),
];

impl Step {
    /// Every request method given, as (key, HTTP method, URL template), in the order of
    /// [`METHOD_KEYS`]; a valid request step (or action) has exactly one.
    pub fn methods(&self) -> Vec<(&'static str, &'static str, &str)> {
        let urls = [
            &self.get,
            &self.post,
            &self.put,
            &self.patch,
            &self.delete,
            &self.head,
        ];
        METHOD_KEYS
            .iter()
            .zip(urls)
            .filter_map(|(&(key, method), u)| u.as_deref().map(|u| (key, method, u)))
            .collect()
    }

    /// The request method and URL template, if this is a request step.
    pub fn request(&self) -> Option<(&'static str, &str)> {
        self.methods().first().map(|&(_, m, u)| (m, u))
    }

    /// The keys set here that only a journey step takes, not an action's `http:` (as written:
    /// `capture`, `expect.contains`).
    pub fn journey_only_keys(&self) -> Vec<&'static str> {
        let e = self.expect.as_ref();
        [
            ("name", self.name.is_some()),
            ("query", !self.query.is_empty()),
            ("form", self.form.is_some()),
            ("timeout", self.timeout.is_some()),
            ("capture", !self.capture.is_empty()),
            ("think", self.think.is_some()),
            ("wait", self.wait.is_some()),
            ("rendezvous", self.rendezvous.is_some()),
            ("ws", self.ws.is_some()),
            ("sse", self.sse.is_some()),
            ("send", self.send.is_some()),
            ("every", self.every.is_some()),
            ("hold", self.hold.is_some()),
            ("until", self.until.is_some()),
            ("expect.json", e.is_some_and(|e| !e.json.is_empty())),
            ("expect.contains", e.is_some_and(|e| e.contains.is_some())),
            ("expect.first", e.is_some_and(|e| !e.first.is_empty())),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
    /// The stream form of a step (`ws:` or `sse:`) and its URL template.
    pub fn stream(&self) -> Option<(StreamKind, &str)> {
        match (&self.ws, &self.sse) {
            (Some(u), _) => Some((StreamKind::Ws, u)),
            (None, Some(u)) => Some((StreamKind::Sse, u)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Ws,
    Sse,
}

impl StreamKind {
    /// `WS` or `SSE`: the first word of a stream step's default name.
    pub fn word(self) -> &'static str {
        match self {
            StreamKind::Ws => "WS",
            StreamKind::Sse => "SSE",
        }
    }
}
