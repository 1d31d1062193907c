//! The rules a scenario must follow beyond its types: shares that add up, names that exist,
//! templates and expressions that compile, step forms, load-shape forms and ordered times, data
//! files that exist with the columns the templates use.
//!
//! Every rule runs and every problem is collected (an author fixes them in one go), each at the
//! key path of the value it is about. The naming rules that other parts share (request names,
//! phase names) live here and nowhere else. This module reads CSV headers but sends no traffic
//! and compiles no plan.

use super::model::{Load, Scenario, Step};
use super::spans::KeyPath;
use super::{did_you_mean, Issue, Loaded};
use crate::gate::{self, Selector, Threshold};
use crate::template::{Expr, Template};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::Path;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head"];
const FUNCTIONS: &[&str] = &[
    "random(a, b)",
    "uuid()",
    "seq()",
    "now_ms()",
    "user()",
    "client()",
    "env(NAME)",
];

/// The metric name of a request step: its `name`, else `METHOD /path` with the query string of
/// the URL template removed (`GET /api/items` for `get: /api/items?page={{ random(1, 50) }}`);
/// `WS /live/1` and `SSE /api/assistant` for stream steps. None for steps that send nothing.
pub fn request_name(step: &Step) -> Option<String> {
    let (method, url) = step
        .request()
        .or_else(|| step.stream().map(|(k, u)| (k.word(), u)))?;
    if let Some(n) = &step.name {
        return Some(n.clone());
    }
    let path = url.split_once('?').map(|(p, _)| p).unwrap_or(url).trim();
    Some(format!("{method} {path}"))
}

/// The phases of the load, in time order, as its load source names them (see
/// `crate::plan::source`); with no source, none.
pub fn phase_names(load: &Load) -> Vec<String> {
    crate::plan::source::phase_names(load)
}

/// The moment a calendar phase belongs to: `sale` for `sale.peak`; None for `base` and for
/// phases of other shapes (their names have no dot… unless a stage is named so, which only
/// matters if a moment of the same name exists, and stages have no moments).
pub fn moment_of(phase: &str) -> Option<&str> {
    phase.rsplit_once('.').map(|(m, _)| m)
}

/// The phases (indices into `phases`, in order) that `name` means in `during` and thresholds:
/// every phase called `name` (a name may come back, like a calendar's `base` between moments),
/// or, when none is called so, every phase of the moment `name` (`sale` → `sale.rise`,
/// `sale.peak`, `sale.decay`). Empty when `name` means nothing.
pub fn phases_named<'a>(phases: impl Iterator<Item = &'a str> + Clone, name: &str) -> Vec<usize> {
    let exact: Vec<usize> = phases
        .clone()
        .enumerate()
        .filter(|(_, p)| *p == name)
        .map(|(i, _)| i)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    phases
        .enumerate()
        .filter(|(_, p)| moment_of(p) == Some(name))
        .map(|(i, _)| i)
        .collect()
}

/// What `during` (of a client, a journey or a threshold) may name: the phases, and a calendar's
/// moments (each meaning all its phases).
pub fn during_names(load: &Load) -> Vec<String> {
    let mut names = phase_names(load);
    names.extend(crate::plan::source::phase_groups(load));
    names
}

/// The `during` entry in force in `phase`: the phase's own key, else its moment's.
pub fn during_entry<'a, T>(during: &'a IndexMap<String, T>, phase: &str) -> Option<&'a T> {
    during
        .get(phase)
        .or_else(|| moment_of(phase).and_then(|m| during.get(m)))
}

/// Does a journey limited to `during` (None: not limited) take sessions that arrive in `phase`?
pub fn journey_during(during: Option<&[String]>, phase: &str) -> bool {
    during.is_none_or(|list| {
        list.iter()
            .any(|d| d == phase || moment_of(phase) == Some(d.as_str()))
    })
}

/// Parses a threshold (as `run --threshold EXPR` gives it) and checks that the names it uses
/// exist in the scenario: requests, journeys, clients and phases.
pub fn check_threshold(loaded: &Loaded, expr: &str) -> Result<Threshold, String> {
    let names = Names::of(&loaded.scenario);
    let (t, mut said) = match gate::parse_threshold(expr) {
        Ok(t) => (Some(t), Vec::new()),
        Err(e) => (
            e.partial.map(|b| *b),
            vec![format!("{} (at character {})", e.message, e.offset + 1)],
        ),
    };
    if let Some(t) = &t {
        for (m, h, _) in names.problems_in(t) {
            said.push(match h {
                Some(h) => format!("{m}; {h}"),
                None => m,
            });
        }
    }
    match (t, said.is_empty()) {
        (Some(t), true) => Ok(t),
        _ => Err(format!("`{expr}`: {}", said.join("; and "))),
    }
}

/// The names a scenario defines, for expressions.
struct Names {
    requests: Vec<String>,
    /// The load brings its own requests (a replay): their names come from its file.
    open_requests: bool,
    journeys: Vec<String>,
    clients: Vec<String>,
    phases: Vec<String>,
    /// Declared monitor series (and `NAME@TARGET` with several targets).
    monitor: Vec<String>,
    /// Scheduled actions.
    actions: Vec<String>,
}

impl Names {
    fn of(s: &Scenario) -> Names {
        let mut requests = Vec::new();
        for j in s.journeys.values() {
            for step in &j.steps {
                if let Some(n) = request_name(step) {
                    if !requests.contains(&n) {
                        requests.push(n);
                    }
                }
            }
        }
        let brought = crate::plan::source::given(&s.load)
            .iter()
            .any(|l| l.brings_requests());
        Names {
            requests,
            open_requests: brought,
            journeys: if brought {
                vec!["replay".into()]
            } else {
                s.journeys.keys().cloned().collect()
            },
            clients: client_names(s),
            phases: during_names(&s.load),
            monitor: monitor_names(s),
            actions: s.actions.iter().map(|a| a.name.clone()).collect(),
        }
    }

    /// Checks the names in an expression; on failure the message and a hint.
    /// Every unknown name an expression uses (its selector and its phase), each with a help
    /// line and the name itself (to point at it): a person fixes them all in one go.
    fn problems_in(&self, t: &Threshold) -> Vec<(String, Option<String>, String)> {
        let unknown = |what: &str, name: &str, known: &[String]| {
            let help = did_you_mean(name, known.iter().map(String::as_str)).or_else(|| {
                if known.is_empty() {
                    None
                } else {
                    Some(format!("the {what}s are: {}", quoted(known)))
                }
            });
            (format!("unknown {what} `{name}`"), help, name.to_string())
        };
        let mut out = Vec::new();
        match &t.selector {
            Selector::All => {}
            Selector::Request(n) if !self.open_requests && !self.requests.contains(n) => {
                out.push(unknown("request", n, &self.requests))
            }
            Selector::Journey(n) if !self.journeys.contains(n) => {
                out.push(unknown("journey", n, &self.journeys))
            }
            Selector::Client(n) if !self.clients.contains(n) => {
                out.push(unknown("client", n, &self.clients))
            }
            Selector::Monitor(n) if !self.monitor.contains(n) => {
                if self.monitor.is_empty() {
                    out.push((
                        format!("unknown monitor series `{n}`: the scenario has no `monitor:` block"),
                        Some("declare it under monitor.series, like `cpu: busy(node_cpu_seconds_total)`".into()),
                        n.clone(),
                    ));
                } else {
                    out.push(unknown("monitor series", n, &self.monitor));
                }
            }
            Selector::Action(n) if !self.actions.contains(n) => {
                if self.actions.is_empty() {
                    out.push((
                        format!("unknown action `{n}`: the scenario has no `actions:`"),
                        Some("declare it under actions, like `- { name: db-failover, at: 30s, http: { post: \"http://127.0.0.1:9000/admin/failover\" } }`".into()),
                        n.clone(),
                    ));
                } else {
                    out.push(unknown("action", n, &self.actions));
                }
            }
            _ => {}
        }
        if let Some(p) = &t.phase {
            if !self.phases.contains(p) {
                out.push(unknown("phase", p, &self.phases));
            }
        }
        out
    }
}

/// Where `word` stands in `src` as a whole word (not inside another name), else its first place.
fn find_word(src: &str, word: &str) -> Option<usize> {
    if word.is_empty() {
        return None;
    }
    let is_name = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    src.match_indices(word)
        .map(|(i, _)| i)
        .find(|&i| {
            !src[..i].chars().next_back().is_some_and(is_name)
                && !src[i + word.len()..].chars().next().is_some_and(is_name)
        })
        .or_else(|| src.find(word))
}

/// The monitor series names rules may use: each declared series, and `NAME@TARGET` per target
/// when there are several (see `ops::monitor::MonitorSpec::names`).
pub fn monitor_names(s: &Scenario) -> Vec<String> {
    let Some(m) = &s.monitor else {
        return Vec::new();
    };
    let mut v: Vec<String> = m.series.keys().cloned().collect();
    if m.targets.len() > 1 {
        for n in m.series.keys() {
            for (i, t) in m.targets.iter().enumerate() {
                v.push(format!(
                    "{n}@{}",
                    t.name.clone().unwrap_or_else(|| format!("target{}", i + 1))
                ));
            }
        }
    }
    v
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The client names: those declared, or `default` when `clients` is empty.
fn client_names(s: &Scenario) -> Vec<String> {
    if s.clients.is_empty() {
        vec!["default".to_string()]
    } else {
        s.clients.keys().cloned().collect()
    }
}

fn pct(x: f64) -> String {
    let v = x * 100.0;
    if (v - v.round()).abs() < 1e-9 {
        format!("{}%", v.round())
    } else {
        format!("{:.2}%", v)
    }
}

fn is_hundred(sum: f64) -> bool {
    (sum - 1.0).abs() < 1e-6
}

fn root() -> KeyPath {
    KeyPath::root()
}

/// Runs every rule; all problems found. `env` reads environment variables (for `env(NAME)`).
pub fn check(loaded: &Loaded, env: &dyn Fn(&str) -> Option<String>) -> Vec<Issue> {
    let s = &loaded.scenario;
    let mut v = Validator {
        s,
        base_dir: &loaded.base_dir,
        env,
        issues: Vec::new(),
        names: Names::of(s),
        columns: HashMap::new(),
    };
    v.target();
    v.data();
    v.clients();
    v.journeys();
    v.load();
    v.expressions();
    v.monitor();
    v.actions();
    v.defaults();
    v.issues
}

struct Validator<'a> {
    s: &'a Scenario,
    base_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    issues: Vec<Issue>,
    names: Names,
    /// Data set → its CSV header, when the file could be read.
    columns: HashMap<String, Vec<String>>,
}

/// What a template may refer to at the point where it is used.
struct Scope<'a> {
    /// Captures made by earlier steps of the journey.
    captures: &'a [String],
    /// Captures made by this or later steps (for a better message), with their step number.
    later: &'a HashMap<String, usize>,
}

impl Validator<'_> {
    fn push(&mut self, i: Issue) {
        self.issues.push(i);
    }

    fn target(&mut self) {
        if let Some(t) = &self.s.target {
            let t = t.trim();
            if !(t.starts_with("http://") || t.starts_with("https://")) || t.len() < 9 {
                self.push(
                    Issue::at(
                        root().key("target"),
                        format!("`{t}` is not an http:// or https:// URL"),
                    )
                    .help(
                        "write the base URL of the system under test, like http://127.0.0.1:8080",
                    ),
                );
            }
        }
        if self.s.safety.tag_header.trim().is_empty() {
            self.push(Issue::at(
                root().key("safety").key("tag_header"),
                "the tag header name is empty",
            ));
        }
    }

    fn data(&mut self) {
        for (name, set) in &self.s.data {
            let path = root().key("data").key(name).key("csv");
            let file = self.base_dir.join(&set.csv);
            if !file.is_file() {
                self.push(
                    Issue::at(
                        path,
                        format!("the CSV file `{}` does not exist", file.display()),
                    )
                    .help("paths are relative to the scenario file's directory"),
                );
                continue;
            }
            let mut rd = match csv::ReaderBuilder::new().has_headers(true).from_path(&file) {
                Ok(r) => r,
                Err(e) => {
                    self.push(Issue::at(
                        path,
                        format!("cannot read `{}`: {e}", file.display()),
                    ));
                    continue;
                }
            };
            let header: Vec<String> = match rd.headers() {
                Ok(h) => h.iter().map(|c| c.trim().to_string()).collect(),
                Err(e) => {
                    self.push(Issue::at(
                        path,
                        format!("cannot read the header row of `{}`: {e}", file.display()),
                    ));
                    continue;
                }
            };
            if header.iter().all(|c| c.is_empty()) {
                self.push(
                    Issue::at(path, format!("`{}` has no header row", file.display()))
                        .help("the first line names the columns, like `id,name`"),
                );
                continue;
            }
            let mut rec = csv::StringRecord::new();
            match rd.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => self.push(Issue::at(
                    path.clone(),
                    format!("`{}` has a header row but no data rows", file.display()),
                )),
                Err(e) => self.push(Issue::at(
                    path.clone(),
                    format!("`{}` is not valid CSV: {e}", file.display()),
                )),
            }
            self.columns.insert(name.clone(), header);
        }
    }

    fn clients(&mut self) {
        let s = self.s;
        if s.clients.is_empty() {
            return;
        }
        let sum: f64 = s.clients.values().map(|c| c.share.0).sum();
        if !is_hundred(sum) {
            let parts: Vec<String> = s
                .clients
                .iter()
                .map(|(n, c)| format!("{n} {}", pct(c.share.0)))
                .collect();
            self.push(
                Issue::at(
                    root().key("clients"),
                    format!("client shares add up to {}, not 100%", pct(sum)),
                )
                .on_key()
                .help(format!(
                    "{}; change them so that they total 100%",
                    parts.join(" + ")
                )),
            );
        }
        for (cname, c) in &s.clients {
            if c.pool == Some(0) {
                self.push(
                    Issue::at(
                        root().key("clients").key(cname).key("pool"),
                        "pool must be at least 1",
                    )
                    .help("leave it out for the default of 256 connections per thread"),
                );
            }
        }
        // Keys of `during` must name a phase or a moment.
        let known = self.names.phases.clone();
        for (cname, c) in &s.clients {
            for key in c.during.keys() {
                if !known.contains(key) {
                    let path = root().key("clients").key(cname).key("during").key(key);
                    let help =
                        did_you_mean(key, known.iter().map(String::as_str)).unwrap_or_else(|| {
                            format!("the phases of this load are {}", quoted(&known))
                        });
                    self.push(
                        Issue::at(path, format!("unknown phase `{key}`"))
                            .on_key()
                            .help(help),
                    );
                }
            }
        }
        // In every phase, the shares in force add up to 100 %; each `during` key is blamed once.
        let mut blamed: Vec<(String, String)> = Vec::new();
        for phase in phase_names(&s.load) {
            let Some((cname, key)) = s.clients.iter().find_map(|(n, c)| {
                let key = if c.during.contains_key(&phase) {
                    phase.clone()
                } else {
                    moment_of(&phase)
                        .filter(|m| c.during.contains_key(*m))?
                        .to_string()
                };
                Some((n.clone(), key))
            }) else {
                continue;
            };
            let parts: Vec<(String, f64)> = s
                .clients
                .iter()
                .map(|(n, c)| {
                    (
                        n.clone(),
                        during_entry(&c.during, &phase).unwrap_or(&c.share).0,
                    )
                })
                .collect();
            let sum: f64 = parts.iter().map(|p| p.1).sum();
            if is_hundred(sum) || blamed.contains(&(cname.clone(), key.clone())) {
                continue;
            }
            blamed.push((cname.clone(), key.clone()));
            let list: Vec<String> = parts
                .iter()
                .map(|(n, x)| format!("{n} {}", pct(*x)))
                .collect();
            self.push(
                Issue::at(
                    root().key("clients").key(&cname).key("during").key(&key),
                    format!(
                        "during phase `{phase}`, client shares add up to {}, not 100%",
                        pct(sum)
                    ),
                )
                .on_key()
                .help(format!(
                    "{} (a client without `during: {{ {key}: … }}` keeps its `share`)",
                    list.join(" + ")
                )),
            );
        }
    }

    fn journeys(&mut self) {
        let s = self.s;
        let jpath = root().key("journeys");
        let brought = crate::plan::source::given(&s.load)
            .iter()
            .find(|l| l.brings_requests())
            .map(|l| l.key());
        if let Some(key) = brought {
            if !s.journeys.is_empty() {
                self.push(
                    Issue::at(
                        jpath.clone(),
                        format!("`load.{key}` sends its own recorded requests: these journeys would never run"),
                    )
                    .on_key()
                    .help("remove `journeys`, or use another load shape"),
                );
            }
            return;
        }
        if s.journeys.is_empty() {
            self.push(
                Issue::at(
                    jpath.clone(),
                    "there are no journeys: a scenario needs at least one",
                )
                .on_key(),
            );
            return;
        }
        // The journeys in force at a time add up to 100 %. With `during`, which journeys are in
        // force changes by phase: the fullest phase must make 100 %, none more; a phase with
        // fewer journeys renormalizes their shares.
        let limited = s.journeys.values().any(|j| j.during.is_some());
        let phases = if limited {
            phase_names(&s.load)
        } else {
            vec![String::new()]
        };
        let in_force = |phase: &str| -> Vec<(&String, f64)> {
            s.journeys
                .iter()
                .filter(|(_, j)| !limited || journey_during(j.during.as_deref(), phase))
                .map(|(n, j)| (n, j.share.0))
                .collect()
        };
        let sums: Vec<(&String, f64)> = phases
            .iter()
            .map(|p| (p, in_force(p).iter().map(|j| j.1).sum()))
            .collect();
        let over = sums.iter().find(|(_, sum)| *sum > 1.0 && !is_hundred(*sum));
        let fullest = sums.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        let wrong = over
            .copied()
            .or(fullest.filter(|(_, sum)| !is_hundred(*sum)));
        if let Some((phase, sum)) = wrong {
            let parts: Vec<String> = in_force(phase)
                .iter()
                .map(|(n, share)| format!("{n} {}", pct(*share)))
                .collect();
            let message = if limited {
                format!(
                    "during phase `{phase}`, journey shares add up to {}, not 100%",
                    pct(sum)
                )
            } else {
                format!("journey shares add up to {}, not 100%", pct(sum))
            };
            let mut help = format!("{}; change them so that they total 100%", parts.join(" + "));
            if limited {
                help += " (where `during` leaves fewer journeys, their shares are renormalized)";
            }
            self.push(Issue::at(jpath.clone(), message).on_key().help(help));
        }
        let clients = client_names(s);
        for (jname, j) in &s.journeys {
            if let Some(list) = &j.clients {
                if list.is_empty() {
                    self.push(
                        Issue::at(
                            jpath.key(jname).key("clients"),
                            "the list of clients is empty: no one would take this journey",
                        )
                        .help(
                            "list the clients that take it, or remove `clients` to let all take it",
                        ),
                    );
                }
                for (i, c) in list.iter().enumerate() {
                    if !clients.contains(c) {
                        let help = did_you_mean(c, clients.iter().map(String::as_str))
                            .unwrap_or_else(|| format!("the clients are {}", quoted(&clients)));
                        self.push(
                            Issue::at(
                                jpath.key(jname).key("clients").index(i),
                                format!("unknown client `{c}`"),
                            )
                            .help(help),
                        );
                    }
                }
            }
        }
        if !s.clients.is_empty() {
            for cname in s.clients.keys() {
                let takes_one = s
                    .journeys
                    .values()
                    .any(|j| j.clients.as_ref().is_none_or(|l| l.contains(cname)));
                if !takes_one {
                    self.push(
                        Issue::at(root().key("clients").key(cname), format!("client `{cname}` may take no journey"))
                            .on_key()
                            .help("every journey lists `clients` without it; add it to one, or remove `clients` from a journey"),
                    );
                }
            }
        }
        self.journeys_during();
        // Request names must not mix methods.
        let mut methods: HashMap<String, (&'static str, KeyPath)> = HashMap::new();
        let mut rendezvous: HashMap<String, KeyPath> = HashMap::new();
        for (jname, j) in &s.journeys {
            let spath = jpath.key(jname).key("steps");
            if j.steps.is_empty() {
                self.push(
                    Issue::at(spath.clone(), "the journey has no steps")
                        .help("add at least one request, like `- get: /`"),
                );
            }
            // Captures by step, to tell "later step" from "unknown".
            let mut capture_at: HashMap<String, usize> = HashMap::new();
            for (i, step) in j.steps.iter().enumerate() {
                for var in step.capture.keys() {
                    capture_at.entry(var.clone()).or_insert(i + 1);
                }
            }
            let mut captures: Vec<String> = Vec::new();
            for (i, step) in j.steps.iter().enumerate() {
                let p = spath.index(i);
                self.step(&p, step, &captures, &capture_at);
                let method = step
                    .request()
                    .map(|(m, _)| m)
                    .or_else(|| step.stream().map(|(k, _)| k.word()));
                if let (Some(name), Some(method)) = (request_name(step), method) {
                    match methods.get(&name) {
                        Some((m, first)) if *m != method => {
                            let at = if step.name.is_some() {
                                p.key("name")
                            } else {
                                p.key(&method.to_lowercase())
                            };
                            self.push(
                                Issue::at(at, format!("the request name `{name}` is used for {m} at `{first}` and for {method} here"))
                                    .help("give the steps different `name`s: a metric mixes one kind of request"),
                            );
                        }
                        Some(_) => {}
                        None => {
                            methods.insert(name, (method, p.clone()));
                        }
                    }
                }
                if let Some(r) = &step.rendezvous {
                    let np = p.key("rendezvous").key("name");
                    if let Some(first) = rendezvous.get(&r.name) {
                        self.push(
                            Issue::at(
                                np.clone(),
                                format!(
                                    "the rendezvous name `{}` is already used at `{first}`",
                                    r.name
                                ),
                            )
                            .help("each rendezvous gathers its own users: give it its own name"),
                        );
                    } else {
                        rendezvous.insert(r.name.clone(), np);
                    }
                }
                for var in step.capture.keys() {
                    if !captures.contains(var) {
                        captures.push(var.clone());
                    }
                }
            }
        }
    }

    /// `journeys.NAME.during`: names that exist, and in every phase each client with a share
    /// there still has a journey to take.
    fn journeys_during(&mut self) {
        let s = self.s;
        let jpath = root().key("journeys");
        let known = self.names.phases.clone();
        let mut limited: Option<&str> = None;
        for (jname, j) in &s.journeys {
            let Some(list) = &j.during else { continue };
            limited.get_or_insert(jname);
            if list.is_empty() {
                self.push(
                    Issue::at(
                        jpath.key(jname).key("during"),
                        "the `during` list is empty: no session would take this journey",
                    )
                    .help(
                        "list the phases or moments it is for, like [presale], or remove `during`",
                    ),
                );
            }
            for (i, d) in list.iter().enumerate() {
                if !known.contains(d) {
                    let help =
                        did_you_mean(d, known.iter().map(String::as_str)).unwrap_or_else(|| {
                            format!("the phases of this load are {}", quoted(&known))
                        });
                    self.push(
                        Issue::at(
                            jpath.key(jname).key("during").index(i),
                            format!("unknown phase or moment `{d}`"),
                        )
                        .help(help),
                    );
                }
            }
        }
        let Some(first_limited) = limited else { return };
        let clients: Vec<(String, Option<&super::model::Client>)> = if s.clients.is_empty() {
            vec![("default".into(), None)]
        } else {
            s.clients
                .iter()
                .map(|(n, c)| (n.clone(), Some(c)))
                .collect()
        };
        for (cname, c) in &clients {
            let stranded = phase_names(&s.load).into_iter().find(|phase| {
                let share = c.map_or(1.0, |c| {
                    during_entry(&c.during, phase).unwrap_or(&c.share).0
                });
                share > 0.0
                    && !s.journeys.values().any(|j| {
                        c.is_none_or(|_| j.clients.as_ref().is_none_or(|l| l.contains(cname)))
                            && journey_during(j.during.as_deref(), phase)
                    })
            });
            if let Some(phase) = stranded {
                self.push(
                    Issue::at(
                        jpath.key(first_limited).key("during"),
                        format!("during phase `{phase}`, client `{cname}` may take no journey"),
                    )
                    .on_key()
                    .help(format!(
                        "every journey it may take is limited by `during` to other times: add `{phase}` (or its moment) to one, or leave one journey without `during`"
                    )),
                );
            }
        }
    }

    fn step(
        &mut self,
        p: &KeyPath,
        step: &Step,
        captures: &[String],
        later: &HashMap<String, usize>,
    ) {
        let methods: Vec<(&str, &str)> = step
            .methods()
            .into_iter()
            .map(|(key, _, url)| (key, url))
            .collect();
        let mut kinds: Vec<&str> = methods.iter().map(|(m, _)| *m).collect();
        if step.think.is_some() {
            kinds.push("think");
        }
        if step.wait.is_some() {
            kinds.push("wait");
        }
        if step.rendezvous.is_some() {
            kinds.push("rendezvous");
        }
        if step.ws.is_some() {
            kinds.push("ws");
        }
        if step.sse.is_some() {
            kinds.push("sse");
        }
        match kinds.as_slice() {
            [] => {
                self.push(
                    Issue::at(p.clone(), "this step does nothing: it needs one of get, post, put, patch, delete, head, ws, sse, think, wait or rendezvous")
                        .help("for example `- get: /api/items` or `- think: 2s`"),
                );
                return;
            }
            [_] => {}
            [first, second, ..] => {
                self.push(
                    Issue::at(
                        p.key(second),
                        format!("a step does one thing, but this one has `{first}` and `{second}`"),
                    )
                    .on_key()
                    .help("split it into two steps"),
                );
                return;
            }
        }
        let kind = kinds[0];
        let is_stream = kind == "ws" || kind == "sse";
        let is_request = METHODS.contains(&kind) || is_stream;
        self.stream_keys(p, step, kind);
        if !is_request {
            let request_only = [
                ("name", step.name.is_some()),
                ("headers", !step.headers.is_empty()),
                ("query", !step.query.is_empty()),
                ("json", step.json.is_some()),
                ("form", step.form.is_some()),
                ("body", step.body.is_some()),
                ("timeout", step.timeout.is_some()),
                ("capture", !step.capture.is_empty()),
                ("expect", step.expect.is_some()),
            ];
            for (key, present) in request_only {
                if present {
                    self.push(
                        Issue::at(
                            p.key(key),
                            format!("`{key}` belongs to a request step, not to a `{kind}` step"),
                        )
                        .on_key()
                        .help("move it to the request it qualifies, or remove it"),
                    );
                }
            }
        }
        let scope = Scope { captures, later };
        match kind {
            "think" => {}
            "wait" => {
                let w = step.wait.as_deref().unwrap_or_default();
                let wp = p.key("wait");
                let instants = crate::plan::source::instants(&self.s.load);
                let moments: Vec<String> = instants
                    .iter()
                    .filter(|i| *i != "sale-start")
                    .cloned()
                    .collect();
                if instants.iter().any(|i| i == w) {
                } else if w != "sale-start" {
                    let what = if moments.is_empty() {
                        "`wait` knows only `sale-start`".to_string()
                    } else {
                        format!("`wait` knows the moments {}", quoted(&moments))
                    };
                    let mut known = vec!["sale-start"];
                    known.extend(moments.iter().map(String::as_str));
                    self.push(
                        Issue::at(wp, format!("unknown instant `{w}`: {what}"))
                            .help_opt(did_you_mean(w, known).or(Some("for a gathering of users, use `rendezvous: { name, users, timeout }`".into()))),
                    );
                } else {
                    let help = if moments.is_empty() {
                        "use `load.countdown`, or a `rendezvous` step to gather users".to_string()
                    } else {
                        format!(
                            "in a calendar, wait for a moment: {}",
                            moments
                                .iter()
                                .map(|m| format!("`wait: {m}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    self.push(
                        Issue::at(
                            wp,
                            "`wait: sale-start` needs a countdown load, and this load has none",
                        )
                        .help(help),
                    );
                }
            }
            "rendezvous" => {
                let r = step.rendezvous.as_ref().expect("kind says so");
                let rp = p.key("rendezvous");
                if r.users == 0 {
                    self.push(Issue::at(
                        rp.key("users"),
                        "a rendezvous needs at least 1 user",
                    ));
                }
                if r.timeout.0.is_zero() {
                    self.push(Issue::at(
                        rp.key("timeout"),
                        "the rendezvous timeout must be longer than 0s",
                    ));
                }
                if r.name.trim().is_empty() {
                    self.push(Issue::at(rp.key("name"), "the rendezvous name is empty"));
                }
            }
            "ws" | "sse" => {
                let url = step.stream().map(|(_, u)| u).unwrap_or_default();
                self.template(&p.key(kind), url, &scope);
                if url.trim().is_empty() {
                    self.push(
                        Issue::at(p.key(kind), "the URL is empty")
                            .help("write a path like /live/1 or /api/assistant"),
                    );
                }
                if let Some(msg) = &step.send {
                    self.template(&p.key("send"), msg, &scope);
                }
                self.request_parts(p, step, &scope);
            }
            method => {
                let (_, url) = methods[0];
                self.template(&p.key(method), url, &scope);
                if url.trim().is_empty() {
                    self.push(
                        Issue::at(p.key(method), "the URL is empty")
                            .help("write a path like /api/items"),
                    );
                }
                self.request_parts(p, step, &scope);
            }
        }
    }

    /// The keys that only stream steps take (`send`, `every`, `hold` for ws; `until` for sse;
    /// `expect.first`), and the request keys stream steps do not take.
    fn stream_keys(&mut self, p: &KeyPath, step: &Step, kind: &str) {
        let own: [(&str, bool, &str); 5] = [
            ("send", step.send.is_some(), "ws"),
            ("every", step.every.is_some(), "ws"),
            ("hold", step.hold.is_some(), "ws"),
            ("until", step.until.is_some(), "sse"),
            (
                "expect",
                step.expect.as_ref().is_some_and(|e| !e.first.is_empty()),
                "ws or sse",
            ),
        ];
        for (key, present, owner) in own {
            if present && !owner.contains(kind) {
                let at = if key == "expect" {
                    p.key("expect").key("first")
                } else {
                    p.key(key)
                };
                self.push(
                    Issue::at(
                        at,
                        format!("`{key}` belongs to a {owner} step, not to a `{kind}` step"),
                    )
                    .on_key()
                    .help("move it to the stream step it qualifies, or remove it"),
                );
            }
        }
        if kind != "ws" && kind != "sse" {
            return;
        }
        for (key, present) in [
            ("json", step.json.is_some()),
            ("form", step.form.is_some()),
            ("body", step.body.is_some()),
        ] {
            if present {
                self.push(
                    Issue::at(p.key(key), format!("a `{kind}` step sends no request body"))
                        .on_key()
                        .help(if kind == "ws" {
                            "send messages with `send:` (and `every:`)"
                        } else {
                            "an event stream is opened with a GET: put parameters in `query:`"
                        }),
                );
            }
        }
        if let Some(ex) = &step.expect {
            let body_keys = [
                ("json", !ex.json.is_empty()),
                ("contains", ex.contains.is_some()),
            ];
            for (key, present) in body_keys {
                if present {
                    self.push(
                        Issue::at(p.key("expect").key(key), format!("a `{kind}` step has no response body to check with `expect.{key}`"))
                            .on_key()
                            .help("check the first message or event with `expect: { first: { $.type: welcome } }`"),
                    );
                }
            }
            if kind == "ws" && ex.status.is_some() {
                self.push(
                    Issue::at(p.key("expect").key("status"), "a WebSocket handshake answers 101; any other status is a `ws_handshake` error")
                        .on_key()
                        .help("remove `status`"),
                );
            }
            for k in ex.first.keys() {
                if let Err(e) = serde_json_path::JsonPath::parse(k) {
                    self.push(
                        Issue::at(
                            p.key("expect").key("first").key(k),
                            format!("`{k}` is not a JSONPath: {}", e.message()),
                        )
                        .on_key()
                        .help("write the path to check in the first message, like $.type"),
                    );
                }
            }
        }
        if step.every.is_some() && step.send.is_none() {
            self.push(
                Issue::at(
                    p.key("every"),
                    "`every` repeats `send`, and this step sends nothing",
                )
                .on_key()
                .help("add `send: '{\"type\":\"like\"}'` or remove `every`"),
            );
        }
        for (key, d) in [("every", step.every), ("hold", step.hold)] {
            if d.is_some_and(|d| d.0.is_zero()) {
                self.push(Issue::at(
                    p.key(key),
                    format!("`{key}` must be longer than 0s"),
                ));
            }
        }
        if let Some(u) = &step.until {
            let up = p.key("until");
            let set: Vec<&str> = [
                ("event", u.event.is_some()),
                ("events", u.events.is_some()),
                ("for", u.for_.is_some()),
            ]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| k)
            .collect();
            match set.as_slice() {
                [] => self.push(
                    Issue::at(up, "`until` needs one of event, events or for").help(
                        "for example `until: { event: done }`, `{ events: 50 }` or `{ for: 30s }`",
                    ),
                ),
                [_] => {
                    if u.events == Some(0) {
                        self.push(Issue::at(up.key("events"), "`events` must be at least 1"));
                    }
                    if u.for_.is_some_and(|d| d.0.is_zero()) {
                        self.push(Issue::at(up.key("for"), "`for` must be longer than 0s"));
                    }
                }
                [a, b, ..] => self.push(
                    Issue::at(
                        up.key(b),
                        format!("`until` takes one condition, but this one has `{a}` and `{b}`"),
                    )
                    .on_key()
                    .help("keep one of event, events or for"),
                ),
            }
        }
    }

    fn request_parts(&mut self, p: &KeyPath, step: &Step, scope: &Scope<'_>) {
        let bodies: Vec<&str> = [
            ("json", step.json.is_some()),
            ("form", step.form.is_some()),
            ("body", step.body.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect();
        if bodies.len() > 1 {
            self.push(
                Issue::at(
                    p.key(bodies[1]),
                    format!(
                        "a request has one body, but this one has `{}` and `{}`",
                        bodies[0], bodies[1]
                    ),
                )
                .on_key()
                .help("keep one of json, form or body"),
            );
        }
        for (k, v) in &step.headers {
            self.template(&p.key("headers").key(k), v, scope);
        }
        for (k, v) in &step.query {
            self.template(&p.key("query").key(k), v, scope);
        }
        if let Some(j) = &step.json {
            self.json_templates(&p.key("json"), j, scope);
        }
        if let Some(f) = &step.form {
            for (k, v) in f {
                self.template(&p.key("form").key(k), v, scope);
            }
        }
        if let Some(b) = &step.body {
            self.template(&p.key("body"), b, scope);
        }
        if let Some(t) = step.timeout {
            if t.0.is_zero() {
                self.push(Issue::at(
                    p.key("timeout"),
                    "the timeout must be longer than 0s",
                ));
            }
        }
        for (var, jp) in &step.capture {
            let cp = p.key("capture").key(var);
            if var.is_empty()
                || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || var.starts_with(|c: char| c.is_ascii_digit())
            {
                self.push(
                    Issue::at(
                        cp.clone(),
                        format!("`{var}` is not a capture name: use letters, digits and _"),
                    )
                    .on_key()
                    .help("templates refer to it as {{ name }}"),
                );
            } else if self.s.data.contains_key(var) {
                self.push(
                    Issue::at(
                        cp.clone(),
                        format!("the capture `{var}` has the name of a data set"),
                    )
                    .on_key()
                    .help("rename the capture: {{ name }} would be ambiguous"),
                );
            }
            if let Err(e) = serde_json_path::JsonPath::parse(jp) {
                let at = e.position().saturating_sub(1).min(jp.len());
                self.push(
                    Issue::at(cp, format!("`{jp}` is not a JSONPath: {}", e.message()))
                        .within(jp, at)
                        .help("a JSONPath starts at the body's root `$`, like $.cart.id or $.items[0].id"),
                );
            }
        }
        if let Some(ex) = &step.expect {
            for k in ex.json.keys() {
                if let Err(e) = serde_json_path::JsonPath::parse(k) {
                    self.push(
                        Issue::at(
                            p.key("expect").key("json").key(k),
                            format!("`{k}` is not a JSONPath: {}", e.message()),
                        )
                        .on_key()
                        .help("write the path to check, like $.status"),
                    );
                }
            }
        }
    }

    fn json_templates(&mut self, p: &KeyPath, v: &serde_yaml::Value, scope: &Scope<'_>) {
        match v {
            serde_yaml::Value::String(s) => self.template(p, s, scope),
            serde_yaml::Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.json_templates(&p.index(i), item, scope);
                }
            }
            serde_yaml::Value::Mapping(m) => {
                for (k, item) in m {
                    self.json_templates(&p.key(&super::de::key_text(k)), item, scope);
                }
            }
            _ => {}
        }
    }

    /// Compiles one template and checks the names it uses.
    fn template(&mut self, p: &KeyPath, src: &str, scope: &Scope<'_>) {
        let t = match Template::compile(src) {
            Ok(t) => t,
            Err(e) => {
                self.push(
                    Issue::at(p.clone(), format!("bad template: {}", e.message))
                        .within(src, e.offset.min(src.len()))
                        .help(format!("the functions are {}", FUNCTIONS.join(", "))),
                );
                return;
            }
        };
        for e in t.exprs() {
            let offset = |needle: &str| src.find(needle).unwrap_or(0);
            match e {
                Expr::Data { set, column } => {
                    let at = offset(&format!("{set}.{column}"));
                    if !self.s.data.contains_key(set) {
                        let sets: Vec<&str> = self.s.data.keys().map(String::as_str).collect();
                        let help = did_you_mean(set, sets.iter().copied()).unwrap_or_else(|| {
                            if sets.is_empty() {
                                "declare it under `data:`, like `users: { csv: data/users.csv }`"
                                    .into()
                            } else {
                                format!(
                                    "the data sets are {}",
                                    sets.iter()
                                        .map(|s| format!("`{s}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        });
                        self.push(
                            Issue::at(
                                p.clone(),
                                format!("unknown data set `{set}` in {{{{ {set}.{column} }}}}"),
                            )
                            .within(src, at)
                            .help(help),
                        );
                    } else if let Some(cols) = self.columns.get(set) {
                        if !cols.contains(column) {
                            let file = &self.s.data[set].csv;
                            let help = did_you_mean(column, cols.iter().map(String::as_str))
                                .unwrap_or_else(|| format!("its columns are {}", quoted(cols)));
                            self.push(
                                Issue::at(
                                    p.clone(),
                                    format!("data set `{set}` ({file}) has no column `{column}`"),
                                )
                                .within(src, at)
                                .help(help),
                            );
                        }
                    }
                }
                Expr::Var(name) => {
                    if scope.captures.contains(name) {
                        continue;
                    }
                    let at = offset(name);
                    let issue = if let Some(n) = scope.later.get(name) {
                        Issue::at(p.clone(), format!("`{name}` is captured only by a later step (step {n} of this journey)"))
                            .help("a template can use what earlier steps captured; move the capture before this step")
                    } else if self.s.data.contains_key(name) {
                        let col = self
                            .columns
                            .get(name)
                            .and_then(|c| c.first())
                            .cloned()
                            .unwrap_or_else(|| "id".into());
                        Issue::at(p.clone(), format!("`{name}` is a data set, not a value")).help(
                            format!("name one of its columns, like {{{{ {name}.{col} }}}}"),
                        )
                    } else {
                        let mut known: Vec<String> = scope.captures.to_vec();
                        known.extend(self.s.data.keys().cloned());
                        known.extend(["uuid", "seq", "now_ms", "user", "client"].map(String::from));
                        let help = did_you_mean(name, known.iter().map(String::as_str)).unwrap_or_else(|| {
                            if scope.captures.is_empty() {
                                "no earlier step of this journey captures anything; add `capture: { name: $.path }` to one".into()
                            } else {
                                format!("earlier steps capture {}", quoted(scope.captures))
                            }
                        });
                        Issue::at(p.clone(), format!("unknown capture `{name}`: no earlier step of this journey captures it")).help(help)
                    };
                    self.push(issue.within(src, at));
                }
                Expr::Random(a, b) if a > b => {
                    let at = offset("random");
                    self.push(
                        Issue::at(
                            p.clone(),
                            format!("random({a}, {b}): the low end is above the high end"),
                        )
                        .within(src, at)
                        .help(format!("write random({b}, {a})")),
                    );
                }
                Expr::Env(name) if (self.env)(name).is_none() => {
                    let at = offset(name);
                    self.push(
                        Issue::at(p.clone(), format!("the environment variable `{name}` is not set (used as env({name}))"))
                            .within(src, at)
                            .help(format!("set it before running: export {name}=…")),
                    );
                }
                _ => {}
            }
        }
    }

    fn defaults(&mut self) {
        let s = self.s;
        let none: Vec<String> = Vec::new();
        let later = HashMap::new();
        let scope = Scope {
            captures: &none,
            later: &later,
        };
        for (k, v) in &s.defaults.headers {
            self.template(&root().key("defaults").key("headers").key(k), v, &scope);
        }
        for (c, client) in &s.clients {
            for (k, v) in &client.headers {
                self.template(
                    &root().key("clients").key(c).key("headers").key(k),
                    v,
                    &scope,
                );
            }
        }
        if let Some(t) = s.defaults.timeout {
            if t.0.is_zero() {
                self.push(Issue::at(
                    root().key("defaults").key("timeout"),
                    "the timeout must be longer than 0s",
                ));
            }
        }
        if let Some(ca) = &s.defaults.tls.ca {
            let f = self.base_dir.join(ca);
            if !f.is_file() {
                self.push(
                    Issue::at(
                        root().key("defaults").key("tls").key("ca"),
                        format!("the CA file `{}` does not exist", f.display()),
                    )
                    .help("paths are relative to the scenario file's directory"),
                );
            }
        }
    }

    fn load(&mut self) {
        use crate::plan::source;
        let l = &self.s.load;
        let lp = root().key("load");
        let given = source::given(l);
        let keys: Vec<&str> = given.iter().map(|s| s.key()).collect();
        match keys.as_slice() {
            [] => {
                self.push(
                    Issue::at(
                        lp.clone(),
                        format!(
                            "the load has no shape: it needs one of {}",
                            source::keys_sentence()
                        ),
                    )
                    .on_key()
                    .help("for example `load: { stages: [ { rate: 50/s, for: 30s } ] }`"),
                );
            }
            [_] => {}
            [a, b, ..] => {
                self.push(
                    Issue::at(
                        lp.key(b),
                        format!("the load has more than one shape: `{a}` and `{b}`"),
                    )
                    .on_key()
                    .help(format!("keep exactly one of {}", source::keys_sentence())),
                );
            }
        }
        for s in &given {
            s.check(&lp.key(s.key()), &mut self.issues);
            s.check_in(&lp.key(s.key()), self.s, self.base_dir, &mut self.issues);
        }
        if l.max_users == Some(0) {
            self.push(
                Issue::at(lp.key("max_users"), "max_users must be at least 1")
                    .help("leave it out for no cap"),
            );
        }
        if l.iterations == Some(0) {
            self.push(
                Issue::at(lp.key("iterations"), "iterations must be at least 1")
                    .help("leave it out to run the whole plan"),
            );
        }
    }

    fn expressions(&mut self) {
        let s = self.s;
        for (i, e) in s.thresholds.iter().enumerate() {
            let p = root().key("thresholds").index(i);
            match gate::parse_threshold(e) {
                Ok(t) => self.names_in(&p, e, &t),
                Err(err) => {
                    self.push(
                        Issue::at(p.clone(), format!("bad threshold: {}", err.message))
                            .within(e, err.offset.min(e.len()))
                            .help("a threshold is [SELECTOR] METRIC OP VALUE [during PHASE], like `create-order p99 < 300ms during peak`"),
                    );
                    if let Some(t) = &err.partial {
                        self.names_in(&p, e, t);
                    }
                }
            }
        }
        for (i, e) in s.abort.iter().enumerate() {
            let p = root().key("abort").index(i);
            let e = &gate::with_monitor_names(e, &self.names.monitor);
            match gate::parse_abort(e) {
                Ok(r) => self.names_in(&p, e, &r.cond),
                Err(err) => self.push(
                    Issue::at(p, format!("bad abort rule: {}", err.message))
                        .within(e, err.offset.min(e.len()))
                        .help("an abort rule is [SELECTOR] METRIC OP VALUE for DURATION, like `errors > 30% for 10s`"),
                ),
            }
        }
        if let Some(d) = &s.load.steps {
            for (i, e) in d.stop_when.iter().enumerate() {
                let p = root().key("load").key("steps").key("stop_when").index(i);
                let e = &gate::with_monitor_names(e, &self.names.monitor);
                match gate::parse_stop_when(e) {
                    Ok(t) => self.names_in(&p, e, &t),
                    Err(err) => self.push(
                        Issue::at(p, format!("bad stop_when rule: {}", err.message))
                            .within(e, err.offset.min(e.len()))
                            .help("a stop_when rule is [SELECTOR] METRIC OP VALUE, like `p99 > 500ms`"),
                    ),
                }
            }
        }
    }

    fn monitor(&mut self) {
        let Some(m) = &self.s.monitor else {
            return;
        };
        let p = root().key("monitor");
        if m.every
            .is_some_and(|d| d.0 < std::time::Duration::from_millis(100))
        {
            self.push(Issue::at(p.key("every"), "`every` must be at least 100ms"));
        }
        if m.targets.is_empty() {
            self.push(
                Issue::at(p.key("targets"), "a monitor needs at least one target").help(
                    "like `targets: [ { url: http://127.0.0.1:9100/metrics, name: shop-node } ]`",
                ),
            );
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, t) in m.targets.iter().enumerate() {
            let tp = p.key("targets").index(i);
            match reqwest::Url::parse(&t.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => self.push(
                    Issue::at(
                        tp.key("url"),
                        format!("`{}` is not an http:// or https:// URL", t.url),
                    )
                    .help("the target's metrics endpoint, like http://127.0.0.1:9100/metrics"),
                ),
            }
            let name = t.name.clone().unwrap_or_else(|| format!("target{}", i + 1));
            if seen.contains(&name) {
                self.push(Issue::at(
                    tp.key("name"),
                    format!("the target name `{name}` is used twice"),
                ));
            }
            seen.push(name);
        }
        if m.series.is_empty() {
            self.push(
                Issue::at(p.key("series"), "a monitor needs at least one series").help(
                    "like `series: { cpu: busy(node_cpu_seconds_total), load1: node_load1 }`",
                ),
            );
        }
        for (name, src) in &m.series {
            if gate::Metric::from_name(name).is_some() || name.contains(char::is_whitespace) {
                self.push(Issue::at(
                    p.key("series").key(name),
                    format!("`{name}` cannot name a series: it must be one word and not a metric of the rules"),
                ));
            }
            if let Err(e) = crate::scenario::series::parse_series(src) {
                self.push(
                    Issue::at(p.key("series").key(name), format!("bad series: {e}"))
                        .help("a series is METRIC{label=\"v\"}, rate(METRIC), busy(node_cpu_seconds_total), or terms joined by spaced + - * /"),
                );
            }
        }
    }

    /// `actions:` and `recovery:`: the forms; instants and URLs are checked when the run is
    /// compiled (`crate::run::actions`), against the plan and the interlock.
    fn actions(&mut self) {
        let s = self.s;
        let mut seen: Vec<&str> = Vec::new();
        for (i, a) in s.actions.iter().enumerate() {
            let p = root().key("actions").index(i);
            if a.name.trim().is_empty() {
                self.push(
                    Issue::at(p.key("name"), "an action needs a name")
                        .help("like `name: db-failover`"),
                );
            } else if seen.contains(&a.name.as_str()) {
                self.push(Issue::at(p.key("name"), format!("a second action named `{}`", a.name)).help("action names must be unique: thresholds name them (`action:NAME recovery < 30s`)"));
            }
            seen.push(&a.name);
            if a.at.is_some() == a.when.is_some() {
                self.push(Issue::at(p.clone(), "give exactly one of `at` and `when`").help("`at: 90s` or `at: sale-start+30s` (an offset, or a moment or phase ± offset), or `when: p99 > 500ms for 10s` (a rule)"));
            }
            if let Some(w) = &a.when {
                let w = &gate::with_monitor_names(w, &self.names.monitor);
                match gate::parse_abort(w) {
                    Ok(r) => self.names_in(&p.key("when"), w, &r.cond),
                    Err(err) => self.push(
                        Issue::at(p.key("when"), format!("bad rule: {}", err.message))
                            .within(w, err.offset.min(w.len()))
                            .help("a rule is [SELECTOR] METRIC OP VALUE for DURATION, like `p99 > 500ms for 10s`"),
                    ),
                }
            }
            if a.repeat && a.when.is_none() {
                self.push(
                    Issue::at(p.key("repeat"), "`repeat` is for `when` actions")
                        .help("an `at` action fires once, at its instant"),
                );
            }
            if let Some(h) = &a.http {
                for key in h.journey_only_keys() {
                    let at = key.split('.').fold(p.key("http"), |path, k| path.key(k));
                    self.push(
                        Issue::at(at, format!("`{key}` is for a journey's steps, not an action's `http`"))
                            .on_key()
                            .help("an action's `http` takes one of get, post, put, patch, delete or head with the URL, then headers, json or body, and expect: { status }"),
                    );
                }
            }
            let kinds = [a.http.is_some(), a.run.is_some(), a.steer.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                self.push(Issue::at(p.clone(), "give exactly one of `http`, `run` and `steer`").help("what the action does: `http: { post: URL }`, `run: [program, args…]` or `steer: { rate: 0.5 }`"));
            }
        }
        if let Some(r) = &s.recovery {
            let p = root().key("recovery");
            if r.slo.is_empty() {
                self.push(
                    Issue::at(p.key("slo"), "the recovery SLO is empty")
                        .help("like `slo: [ \"p99 < 300ms\", \"errors < 1%\" ]`"),
                );
            }
            for (i, e) in r.slo.iter().enumerate() {
                let p = p.key("slo").index(i);
                match gate::parse_stop_when(e) {
                    Ok(t) => self.names_in(&p, e, &t),
                    Err(err) => self.push(
                        Issue::at(p, format!("bad SLO rule: {}", err.message))
                            .within(e, err.offset.min(e.len()))
                            .help("an SLO rule is [SELECTOR] METRIC OP VALUE, judged each second, like `p99 < 300ms`"),
                    ),
                }
            }
            if r.stable
                .is_some_and(|d| d.0 < std::time::Duration::from_secs(1))
            {
                self.push(Issue::at(
                    p.key("stable"),
                    "`stable` must be at least 1s (recovery is judged per second)",
                ));
            }
        }
    }

    fn names_in(&mut self, p: &KeyPath, src: &str, t: &Threshold) {
        for (m, h, needle) in self.names.problems_in(t) {
            let at = find_word(src, &needle).unwrap_or(0);
            self.push(Issue::at(p.clone(), m).within(src, at).help_opt(h));
        }
    }
}

/// Every request name of a scenario with the journeys that use it (for reports and checks).
pub fn request_names(s: &Scenario) -> IndexMap<String, Vec<String>> {
    let mut out: IndexMap<String, Vec<String>> = IndexMap::new();
    for (jname, j) in &s.journeys {
        for step in &j.steps {
            if let Some(n) = request_name(step) {
                let v = out.entry(n).or_default();
                if !v.contains(jname) {
                    v.push(jname.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load_str_in, Diagnostic, Diagnostics};

    const BASE: &str = "\
name: t
target: http://127.0.0.1:8080
journeys:
  j:
    share: 100%
    steps:
      - get: /a
load:
  stages:
    - { rate: 5/s, for: 10s }
";

    fn load_in(dir: &Path, text: &str) -> Result<Loaded, Diagnostics> {
        let env = |n: &str| (n == "FC_TEST_SET").then(|| "value".to_string());
        load_str_in("t.yaml", text, dir, &[], &env)
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        match load_in(Path::new("."), text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(d) => d.0,
        }
    }

    /// The only error, asserting there is exactly one.
    fn error(text: &str) -> Diagnostic {
        let e = errors(text);
        assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
        e.into_iter().next().unwrap()
    }

    fn with_steps(steps: &str) -> String {
        BASE.replace("      - get: /a\n", steps)
    }

    fn with_load(load: &str) -> String {
        BASE.replace("  stages:\n    - { rate: 5/s, for: 10s }\n", load)
    }

    /// A calendar of two moments, with clients and journeys that use them.
    const CALENDAR: &str = "\
name: t
target: http://127.0.0.1:8080
clients:
  app: { share: 80%, during: { sale: 90%, sale.decay: 85% } }
  pc: { share: 20%, during: { sale: 10%, sale.decay: 15% } }
journeys:
  browse:
    share: 70%
    steps:
      - get: /a
  presale-buy:
    share: 30%
    during: [presale]
    steps:
      - wait: presale
      - get: /b
  sale-buy:
    share: 30%
    during: [base, sale.rise]
    steps:
      - wait: sale
      - get: /c
load:
  calendar:
    from: 2026-11-10T19:55:00+08:00
    until: 2026-11-11T01:30:00+08:00
    base: 300/s
    moments:
      presale: { at: 2026-11-10T20:00:00+08:00, peak: 3000/s, rise: 30s, hold: 2m, decay: 10m }
      sale: { at: 4h5m, peak: 6000/s, rise: 26s, hold: 1m, decay: 30m }
thresholds:
  - p99 < 300ms during sale
  - errors < 1% during sale.peak
  - rate > 1/s during base
";

    #[test]
    fn a_calendar_scenario_is_valid_and_names_its_phases_and_moments() {
        let l = load_in(Path::new("."), CALENDAR).unwrap();
        assert_eq!(
            phase_names(&l.scenario.load),
            [
                "base",
                "presale.rise",
                "presale.peak",
                "presale.decay",
                "sale.rise",
                "sale.peak",
                "sale.decay"
            ]
        );
        let d = during_names(&l.scenario.load);
        assert_eq!(&d[7..], ["presale", "sale"]);
        assert!(check_threshold(&l, "p99 < 1s during presale").is_ok());
        let e = check_threshold(&l, "p99 < 1s during sael").unwrap_err();
        assert!(e.contains("sale"), "{e}");
        assert!(journey_during(Some(&["sale".to_string()]), "sale.peak"));
        assert!(!journey_during(Some(&["sale".to_string()]), "base"));
        assert!(journey_during(None, "base"));
        let c = &l.scenario.clients["app"];
        assert_eq!(
            during_entry(&c.during, "sale.decay").map(|s| s.0),
            Some(0.85)
        );
        assert_eq!(during_entry(&c.during, "sale.rise").map(|s| s.0), Some(0.9));
        assert_eq!(during_entry(&c.during, "base"), None);
        let names = ["base", "sale.rise", "sale.peak", "base"];
        assert_eq!(phases_named(names.into_iter(), "base"), [0, 3]);
        assert_eq!(phases_named(names.into_iter(), "sale"), [1, 2]);
        assert_eq!(phases_named(names.into_iter(), "sale.peak"), [2]);
        assert!(phases_named(names.into_iter(), "presale").is_empty());
    }

    #[test]
    fn calendar_mistakes_are_found_in_place() {
        let bad = CALENDAR
            .replace("peak: 3000/s", "peak: 200/s")
            .replace("rise: 26s", "rise: 0s")
            .replace("decay: 30m", "decay: 90m");
        let e = errors(&bad);
        let msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "the peak (200/s) is below the base rate (300/s)",
                "`rise` must be longer than 0s: it is the climb to the peak",
                "the moment `sale` ends 5h36m after `from` (at + rise + hold + decay), after `until` (5h35m)",
            ],
            "{e:#?}"
        );
        assert_eq!(e[0].line, 29);

        // `until` and the presale's `at` are instants.
        let e = errors(&CALENDAR.replace("    from: 2026-11-10T19:55:00+08:00\n", ""));
        assert_eq!((e.len(), e[0].line, e[1].line), (2, 25, 28), "{e:#?}");
        assert_eq!(
            e[1].message,
            "an RFC 3339 instant needs the calendar's `from`: what run time 0 stands for"
        );
        let e = error(&CALENDAR.replace(
            "at: 2026-11-10T20:00:00+08:00",
            "at: 2026-11-10T19:00:00+08:00",
        ));
        assert_eq!(
            e.message,
            "2026-11-10T19:00:00+08:00 comes 55m before `from`: the calendar starts at `from`"
        );
        let e = errors(&with_load("  calendar:\n    until: 1m\n    base: 1/s\n    moments:\n      a.b: { at: 1s, peak: 2/s, rise: 1s, hold: 0s, decay: 0s }\n      base: { at: 1s, peak: 2/s, rise: 1s, hold: 0s, decay: 0s }\n"));
        let msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "a moment's name has no dots or spaces: its phases are NAME.rise, NAME.peak and NAME.decay",
                "`base` is the phase between moments: give the moment another name"
            ]
        );
    }

    #[test]
    fn calendar_during_and_wait_name_what_exists() {
        let e = errors(
            &CALENDAR
                .replace("sale.decay: 85%", "sael: 85%")
                .replace("during: [presale]", "during: [presael]")
                .replace("wait: sale\n", "wait: sael\n"),
        );
        let msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "unknown phase `sael`",
                // Without its own key, app keeps 90 % through the sale's decay: 90 % + 15 %.
                "during phase `sale.decay`, client shares add up to 105%, not 100%",
                "unknown phase or moment `presael`",
                "unknown instant `sael`: `wait` knows the moments `presale`, `sale`",
            ],
            "{e:#?}"
        );
        assert_eq!(e[2].help.as_deref(), Some("did you mean `presale`?"));
        assert_eq!(e[3].help.as_deref(), Some("did you mean `sale`?"));
        // Shares in force during a moment add up in each of its phases.
        let e = error(&CALENDAR.replace("sale: 10%", "sale: 20%"));
        assert_eq!(
            e.message,
            "during phase `sale.rise`, client shares add up to 110%, not 100%"
        );
        // `wait: sale-start` belongs to the countdown; a calendar waits for its moments.
        let e = error(&CALENDAR.replace("wait: sale\n", "wait: sale-start\n"));
        assert_eq!(
            e.help.as_deref(),
            Some("in a calendar, wait for a moment: `wait: presale`, `wait: sale`")
        );
    }

    #[test]
    fn every_client_has_a_journey_in_every_phase() {
        let e = errors(
            &CALENDAR
                .replace(
                    "  browse:\n    share: 70%\n",
                    "  browse:\n    share: 70%\n    during: [sale]\n",
                )
                .replace("[base, sale.rise]", "[sale.rise]"),
        );
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!(
            e[0].message,
            "during phase `base`, client `app` may take no journey"
        );
        assert_eq!(
            e[1].message,
            "during phase `base`, client `pc` may take no journey"
        );
        assert!(
            e[0].help.as_deref().unwrap().contains("add `base`"),
            "{e:#?}"
        );
        let e = error(&CALENDAR.replace("during: [presale]", "during: []"));
        assert_eq!(
            e.message,
            "the `during` list is empty: no session would take this journey"
        );
    }

    #[test]
    fn base_scenario_is_valid() {
        load_in(Path::new("."), BASE).unwrap();
    }

    #[test]
    fn an_action_http_is_a_request_step_without_the_journey_keys() {
        let action = |http: &str| {
            format!("{BASE}actions:\n  - name: failover\n    at: 2s\n    http: {http}\n")
        };
        // The keys of a request step that an action sends: valid, `head` included.
        load_in(
            Path::new("."),
            &action("{ post: /admin/fail, headers: { X-A: b }, json: { for: 3 }, expect: { status: 200 } }"),
        )
        .unwrap();
        load_in(Path::new("."), &action("{ head: /health }")).unwrap();
        // A journey step's own keys are refused, each at its place, with what http takes.
        let e = errors(&action(
            "{ post: /admin/fail, capture: { id: \"$.id\" }, expect: { status: 200, contains: ok } }",
        ));
        let msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "`capture` is for a journey's steps, not an action's `http`",
                "`expect.contains` is for a journey's steps, not an action's `http`",
            ],
            "{e:#?}"
        );
        assert!(e[0]
            .help
            .as_deref()
            .unwrap()
            .contains("headers, json or body"));
        assert_eq!(e[0].line, 14, "{e:#?}");
        // A misspelt key still gets its did-you-mean.
        let e = error(&action("{ psot: /admin/fail }"));
        assert!(e.help.as_deref().unwrap_or("").contains("post"), "{e:#?}");
    }

    #[test]
    fn request_name_drops_the_query_string_or_uses_the_name() {
        let step = Step {
            get: Some("/api/items?page={{ random(1, 50) }}".into()),
            ..Step::default()
        };
        assert_eq!(request_name(&step).as_deref(), Some("GET /api/items"));
        let named = Step {
            post: Some("/api/orders".into()),
            name: Some("create-order".into()),
            ..Step::default()
        };
        assert_eq!(request_name(&named).as_deref(), Some("create-order"));
        let think = Step {
            think: Some(crate::scenario::units::Dur(std::time::Duration::from_secs(
                1,
            ))),
            ..Step::default()
        };
        assert_eq!(request_name(&think), None);
    }

    #[test]
    fn phase_names_follow_the_shape() {
        let l = load_in(Path::new("."), &with_load("  stages:\n    - { rate: 5/s, for: 10s, name: warm }\n    - { to: 9/s, over: 5s }\n    - { hold: 5s }\n")).unwrap();
        assert_eq!(
            phase_names(&l.scenario.load),
            ["warm", "stage-2", "stage-3"]
        );
        let l = load_in(
            Path::new("."),
            &with_load("  steps: { start: 500/s, step: 500/s, every: 30s, max: 20000/s }\n"),
        )
        .unwrap();
        let p = phase_names(&l.scenario.load);
        assert_eq!(
            (p.len(), p[0].as_str(), p[39].as_str()),
            (40, "step-1", "step-40")
        );
        let l = load_in(
            Path::new("."),
            &with_load("  steps: { start: 100/s, step: 300/s, every: 30s, max: 1000/s }\n"),
        )
        .unwrap();
        assert_eq!(
            phase_names(&l.scenario.load).len(),
            4,
            "100, 400, 700, 1000"
        );
        let l = load_in(Path::new("."), &with_load("  countdown: { sale_start: 1m, before: 1/s, peak: 9/s, rise: 5s, hold: 5s, decay: 5s, after: 1/s, end: 2m }\n")).unwrap();
        assert_eq!(
            phase_names(&l.scenario.load),
            ["before", "rise", "peak", "decay", "after"]
        );
    }

    #[test]
    fn client_shares_must_add_up_to_100() {
        let text = BASE.replace(
            "journeys:",
            "clients:\n  a: { share: 70% }\n  b: { share: 20% }\njourneys:",
        );
        let e = error(&text);
        assert_eq!(e.message, "client shares add up to 90%, not 100%");
        assert_eq!((e.line, e.column), (3, 1));
        assert_eq!(
            e.help.as_deref(),
            Some("a 70% + b 20%; change them so that they total 100%")
        );
    }

    #[test]
    fn shares_in_force_during_a_phase_must_add_up_to_100() {
        let text = with_load("  stages:\n    - { rate: 5/s, for: 10s, name: warm }\n    - { rate: 9/s, for: 5s, name: rush }\n")
            .replace("journeys:", "clients:\n  a: { share: 70%, during: { rush: 90% } }\n  b: { share: 30% }\njourneys:");
        let e = error(&text);
        assert_eq!(
            e.message,
            "during phase `rush`, client shares add up to 120%, not 100%"
        );
        assert_eq!((e.line, e.column), (4, 30));
    }

    #[test]
    fn during_names_an_existing_phase() {
        let text = BASE.replace(
            "journeys:",
            "clients:\n  a: { share: 100%, during: { stage-2: 100% } }\njourneys:",
        );
        let e = error(&text);
        assert_eq!(e.message, "unknown phase `stage-2`");
        assert_eq!(e.help.as_deref(), Some("did you mean `stage-1`?"));
    }

    #[test]
    fn journeys_name_existing_clients_and_every_client_has_a_journey() {
        let text = BASE
            .replace(
                "journeys:",
                "clients:\n  mobile: { share: 50% }\n  pc: { share: 50% }\njourneys:",
            )
            .replace(
                "    share: 100%\n",
                "    share: 100%\n    clients: [mobil]\n",
            );
        let e = errors(&text);
        assert_eq!(e.len(), 3, "{e:#?}");
        assert_eq!(e[0].message, "unknown client `mobil`");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `mobile`?"));
        assert_eq!(e[1].message, "client `mobile` may take no journey");
        assert_eq!(e[2].message, "client `pc` may take no journey");
    }

    #[test]
    fn journey_shares_must_add_up_to_100() {
        let text = BASE.replace("    share: 100%\n", "    share: 60%\n");
        assert_eq!(
            error(&text).message,
            "journey shares add up to 60%, not 100%"
        );
    }

    #[test]
    fn a_step_is_exactly_one_thing() {
        let e = error(&with_steps("      - name: x\n"));
        assert!(
            e.message.contains("this step does nothing"),
            "{}",
            e.message
        );
        let e = error(&with_steps("      - get: /a\n        post: /b\n"));
        assert_eq!(
            e.message,
            "a step does one thing, but this one has `get` and `post`"
        );
        assert_eq!((e.line, e.column), (8, 9));
    }

    #[test]
    fn request_keys_only_on_request_steps() {
        let e = errors(&with_steps("      - get: /a\n      - think: 1s\n        expect: { status: 200 }\n        timeout: 1s\n"));
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0].message,
            "`timeout` belongs to a request step, not to a `think` step"
        );
        assert_eq!(
            e[1].message,
            "`expect` belongs to a request step, not to a `think` step"
        );
    }

    #[test]
    fn a_request_has_one_body() {
        let e = error(&with_steps(
            "      - post: /a\n        json: { a: 1 }\n        body: x\n",
        ));
        assert_eq!(
            e.message,
            "a request has one body, but this one has `json` and `body`"
        );
    }

    #[test]
    fn templates_name_earlier_captures_only() {
        let e = error(&with_steps(
            "      - get: /a/{{ id }}\n      - get: /b\n        capture: { id: $.id }\n",
        ));
        assert_eq!(
            e.message,
            "`id` is captured only by a later step (step 2 of this journey)"
        );
        assert_eq!(
            (e.line, e.column),
            (7, 20),
            "the caret points at the name inside the template"
        );
        let e = error(&with_steps("      - get: /b\n        capture: { cart_id: $.id }\n      - post: /c\n        json: { cart: \"{{ cartid }}\" }\n"));
        assert_eq!(
            e.message,
            "unknown capture `cartid`: no earlier step of this journey captures it"
        );
        assert_eq!(e.help.as_deref(), Some("did you mean `cart_id`?"));
        assert_eq!((e.line, e.column), (10, 27));
    }

    #[test]
    fn template_syntax_errors_are_reported_in_place() {
        let e = error(&with_steps("      - get: /a/{{ nosuch(1) }}\n"));
        assert!(e.message.starts_with("bad template:"), "{}", e.message);
        assert_eq!(e.line, 7);
    }

    #[test]
    fn templates_name_data_sets_and_their_csv_columns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.csv"), "id,name\nu1,a\n").unwrap();
        let text = with_steps("      - get: /a/{{ users.idd }}/{{ user.id }}\n")
            .replace("journeys:", "data:\n  users: { csv: users.csv }\njourneys:");
        let e = match load_in(dir.path(), &text) {
            Err(d) => d.0,
            Ok(_) => panic!("expected errors"),
        };
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!(
            e[0].message,
            "data set `users` (users.csv) has no column `idd`"
        );
        assert_eq!(e[0].help.as_deref(), Some("did you mean `id`?"));
        assert_eq!(e[1].message, "unknown data set `user` in {{ user.id }}");
        assert_eq!(e[1].help.as_deref(), Some("did you mean `users`?"));
    }

    #[test]
    fn csv_files_must_exist_and_have_rows() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.csv"), "id\n").unwrap();
        let text = BASE.replace(
            "journeys:",
            "data:\n  a: { csv: missing.csv }\n  b: { csv: empty.csv }\njourneys:",
        );
        let e = match load_in(dir.path(), &text) {
            Err(d) => d.0,
            Ok(_) => panic!("expected errors"),
        };
        assert_eq!(e.len(), 2);
        assert!(
            e[0].message.contains("missing.csv` does not exist"),
            "{}",
            e[0].message
        );
        assert!(
            e[1].message.contains("has a header row but no data rows"),
            "{}",
            e[1].message
        );
    }

    #[test]
    fn captures_and_expect_keys_are_jsonpath() {
        let e = errors(&with_steps("      - get: /a\n        capture: { id: cart.id }\n        expect: { json: { status: created } }\n"));
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(
            e[0].message.starts_with("`cart.id` is not a JSONPath"),
            "{}",
            e[0].message
        );
        assert!(
            e[1].message.starts_with("`status` is not a JSONPath"),
            "{}",
            e[1].message
        );
    }

    #[test]
    fn thresholds_parse_and_name_existing_things() {
        let text = format!("{BASE}thresholds:\n  - GET /b p99 < 300ms\n  - p99 < 1s during stage-9\n  - errors <> 1%\nabort:\n  - journey:k errors > 30% for 10s\n");
        let e = errors(&text);
        assert_eq!(e.len(), 4, "{e:#?}");
        assert_eq!(e[0].message, "unknown request `GET /b`");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `GET /a`?"));
        assert_eq!(e[1].message, "unknown phase `stage-9`");
        assert!(
            e[2].message.starts_with("bad threshold"),
            "{}",
            e[2].message
        );
        assert_eq!(e[3].message, "unknown journey `k`");
    }

    #[test]
    fn check_threshold_validates_command_line_thresholds() {
        let l = load_in(Path::new("."), BASE).unwrap();
        let t = check_threshold(&l, "GET /a p99 < 300ms during stage-1").unwrap();
        assert_eq!(t.phase.as_deref(), Some("stage-1"));
        let e = check_threshold(&l, "client:web p99 < 1s").unwrap_err();
        assert!(e.contains("unknown client `web`"), "{e}");
    }

    #[test]
    fn load_has_exactly_one_shape() {
        let e = error(&with_load("  seed: 1\n"));
        assert!(
            e.message.starts_with("the load has no shape"),
            "{}",
            e.message
        );
        let e = error(&with_load(
            "  stages: [ { rate: 5/s, for: 1s } ]\n  users: [ { users: 5, for: 1s } ]\n",
        ));
        assert_eq!(
            e.message,
            "the load has more than one shape: `stages` and `users`"
        );
        assert_eq!((e.line, e.column), (10, 3));
    }

    #[test]
    fn stage_forms_are_checked() {
        let e = errors(&with_load("  stages:\n    - { hold: 5s }\n    - { rate: 5/s }\n    - { rate: 5/s, over: 5s }\n    - { to: 5/s, over: 5s }\n"));
        assert_eq!(e.len(), 3, "{e:#?}");
        assert_eq!(
            e[0].message,
            "the first stage cannot be { hold }: there is nothing to hold yet"
        );
        assert_eq!(e[1].message, "`rate` needs `for`: how long to keep it");
        assert_eq!(e[2].message, "this stage mixes stage forms");
        // A first ramp from 0 is fine.
        load_in(
            Path::new("."),
            &with_load("  users:\n    - { to: 50, over: 10s }\n    - { hold: 1m }\n"),
        )
        .unwrap();
    }

    #[test]
    fn countdown_times_are_ordered() {
        let e = error(&with_load("  countdown: { sale_start: 2m, before: 1/s, peak: 9/s, rise: 26s, hold: 1m, decay: 3m, after: 1/s, end: 5m }\n"));
        assert_eq!(e.message, "`end` (5m) comes before the countdown is over: sale_start + rise + hold + decay = 6m26s");
        let e = error(&with_load("  countdown: { sale_start: 2m, before: 1/s, peak: 9/s, rise: 0s, hold: 1m, decay: 3m, after: 1/s, end: 8m }\n"));
        assert!(e.message.starts_with("`rise` must be longer than 0s"));
        let e = error(&with_load("  countdown: { sale_start: 2026-11-11T00:00:00+08:00, before: 1/s, peak: 9/s, rise: 1s, hold: 1s, decay: 1s, after: 1/s, end: 8m }\n"));
        assert!(e.message.contains("both be offsets"), "{}", e.message);
        load_in(Path::new("."), &with_load("  countdown: { sale_start: 2026-11-11T00:00:00+08:00, before: 1/s, peak: 9/s, rise: 1s, hold: 1s, decay: 1s, after: 1/s, end: 2026-11-11T00:10:00+08:00 }\n")).unwrap();
    }

    #[test]
    fn step_drill_numbers_are_checked() {
        let e = errors(&with_load("  steps: { start: 0/s, step: 0/s, every: 0s, max: 10/s, stop_when: [\"journey:x p99 > 1s\"] }\n"));
        let msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "the drill's start rate must be above 0/s",
                "the drill's step must be above 0/s",
                "each drill step must last longer than 0s",
                "unknown journey `x`",
            ]
        );
        let e = error(&with_load(
            "  steps: { start: 10/s, step: 1/s, every: 1s, max: 5/s }\n",
        ));
        assert_eq!(e.message, "max (5/s) is below start (10/s)");
    }

    #[test]
    fn wait_needs_a_countdown_and_rendezvous_are_sound() {
        let e = errors(&with_steps("      - wait: sale-start\n      - wait: salestart\n      - rendezvous: { name: g, users: 0, timeout: 1s }\n      - rendezvous: { name: g, users: 5, timeout: 1s }\n      - get: /a\n"));
        let msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "`wait: sale-start` needs a countdown load, and this load has none",
                "unknown instant `salestart`: `wait` knows only `sale-start`",
                "a rendezvous needs at least 1 user",
                "the rendezvous name `g` is already used at `journeys.j.steps[2].rendezvous.name`",
            ]
        );
        assert_eq!(e[1].help.as_deref(), Some("did you mean `sale-start`?"));
    }

    #[test]
    fn max_users_is_positive() {
        let e = error(&format!("{BASE}  max_users: 0\n"));
        assert_eq!(e.message, "max_users must be at least 1");
    }

    #[test]
    fn a_request_name_is_not_shared_by_two_methods() {
        let e = error(&with_steps(
            "      - get: /a\n        name: x\n      - post: /a\n        name: x\n",
        ));
        assert_eq!(
            e.message,
            "the request name `x` is used for GET at `journeys.j.steps[0]` and for POST here"
        );
    }

    #[test]
    fn all_problems_are_reported_together() {
        let text = BASE
            .replace("    share: 100%\n", "    share: 90%\n")
            .replace("      - get: /a\n", "      - get: /a/{{ nope }}\n")
            + "  max_users: 0\n";
        assert_eq!(errors(&text).len(), 3);
    }

    #[test]
    fn think_reads_every_distribution_form() {
        use crate::scenario::model::Think;
        let think = |t: &str| {
            let text = BASE.replace(
                "journeys:",
                &format!("clients:\n  a: {{ share: 100%, think: {t} }}\njourneys:"),
            );
            load_in(Path::new("."), &text).map(|l| l.scenario.clients["a"].think.clone().unwrap())
        };
        let s = |n| crate::scenario::units::Dur(std::time::Duration::from_secs(n));
        assert_eq!(
            think("{ lognormal: { median: 1s, p90: 4s } }").unwrap(),
            Think::Lognormal {
                median: s(1),
                p90: s(4)
            }
        );
        assert_eq!(
            think("{ uniform: [1s, 3s] }").unwrap(),
            Think::Uniform([s(1), s(3)])
        );
        assert_eq!(think("{ constant: 2s }").unwrap(), Think::Constant(s(2)));
        assert_eq!(think("2s").unwrap(), Think::Constant(s(2)));
        let e = think("{ lognorm: { median: 1s, p90: 4s } }")
            .unwrap_err()
            .0
            .remove(0);
        assert_eq!(e.help.as_deref(), Some("did you mean `lognormal`?"));
        assert_eq!((e.line, e.column), (4, 30), "at the distribution's name");
        let e = think("{ uniform: [1s, 2s, 3s] }").unwrap_err().0.remove(0);
        assert!(
            e.message.contains("uniform takes two durations"),
            "{}",
            e.message
        );
        let e = think("{ lognormal: { median: 1s, p95: 4s } }")
            .unwrap_err()
            .0
            .remove(0);
        assert_eq!(e.help.as_deref(), Some("did you mean `p90`?"));
    }

    #[test]
    fn status_codes_are_one_or_a_list_of_valid_codes() {
        let st = |s: &str| {
            load_in(
                Path::new("."),
                &with_steps(&format!(
                    "      - get: /a\n        expect: {{ status: {s} }}\n"
                )),
            )
        };
        assert!(st("200").is_ok());
        assert!(st("[200, 410]").is_ok());
        let e = st("999").unwrap_err().0.remove(0);
        assert_eq!(
            e.message,
            "`999` is not an HTTP status code: expected 100 to 599"
        );
        assert_eq!((e.line, e.column), (8, 27));
        let e = st("ok").unwrap_err().0.remove(0);
        assert!(
            e.message.contains("a status code like 200"),
            "{}",
            e.message
        );
    }

    #[test]
    fn env_references_are_substituted_and_kept_as_secrets() {
        let text = BASE.replace(
            "      - get: /a\n",
            "      - get: /a\n        headers: { Authorization: \"Bearer ${env:FC_TEST_SET}\" }\n",
        );
        let l = load_in(Path::new("."), &text).unwrap();
        assert_eq!(
            l.scenario.journeys["j"].steps[0].headers["Authorization"],
            "Bearer value"
        );
        assert_eq!(l.secrets, ["value"]);
        assert!(l.source.contains("${env:FC_TEST_SET}"));
    }

    #[test]
    fn sets_override_before_typed_reading() {
        let env = |_: &str| None;
        let l = load_str_in(
            "t.yaml",
            BASE,
            Path::new("."),
            &["load.stages[0].rate=7/s".into(), "load.seed=9".into()],
            &env,
        )
        .unwrap();
        assert_eq!(
            l.scenario.load.stages.as_ref().unwrap()[0].rate.unwrap().0,
            7.0
        );
        assert_eq!(l.scenario.load.seed, Some(9));
        let e = load_str_in(
            "t.yaml",
            BASE,
            Path::new("."),
            &["journeys.jj.share=50%".into()],
            &env,
        )
        .unwrap_err()
        .0
        .remove(0);
        assert_eq!(e.line, 0);
        assert!(
            e.message.contains("there is no `jj` in `journeys`"),
            "{}",
            e.message
        );
    }
}
