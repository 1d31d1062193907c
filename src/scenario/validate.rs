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
const FUNCTIONS: &[&str] = &["random(a, b)", "uuid()", "seq()", "now_ms()", "user()", "client()", "env(NAME)"];
/// Largest number of drill steps `phase_names` lists (a drill with more is refused elsewhere).
const MAX_DRILL_STEPS: usize = 10_000;

/// The metric name of a request step: its `name`, else `METHOD /path` with the query string of
/// the URL template removed (`GET /api/items` for `get: /api/items?page={{ random(1, 50) }}`).
/// None for steps that are not requests.
pub fn request_name(step: &Step) -> Option<String> {
    let (method, url) = step.request()?;
    if let Some(n) = &step.name {
        return Some(n.clone());
    }
    let path = url.split_once('?').map(|(p, _)| p).unwrap_or(url).trim();
    Some(format!("{method} {path}"))
}

/// The phases of a load shape, in time order:
/// countdown → `before`, `rise`, `peak`, `decay`, `after`;
/// stages and users → each stage's `name` if given, else `stage-N` (N counts stages from 1);
/// steps drill → `step-1` … `step-K`, K the number of steps from `start` to `max` inclusive.
/// With no shape (or a broken one), the phases of the first shape present, or none.
pub fn phase_names(load: &Load) -> Vec<String> {
    fn staged(names: impl Iterator<Item = Option<String>>) -> Vec<String> {
        names
            .enumerate()
            .map(|(i, n)| n.unwrap_or_else(|| format!("stage-{}", i + 1)))
            .collect()
    }
    if let Some(stages) = &load.stages {
        return staged(stages.iter().map(|s| s.name.clone()));
    }
    if let Some(users) = &load.users {
        return staged(users.iter().map(|s| s.name.clone()));
    }
    if load.countdown.is_some() {
        return ["before", "rise", "peak", "decay", "after"]
            .map(String::from)
            .to_vec();
    }
    if let Some(d) = &load.steps {
        return (1..=drill_steps(d.start.0, d.step.0, d.max.0))
            .map(|k| format!("step-{k}"))
            .collect();
    }
    Vec::new()
}

/// Steps of a drill from `start` to `max` inclusive (1 when the numbers make no drill).
fn drill_steps(start: f64, step: f64, max: f64) -> usize {
    if !(step > 0.0 && max >= start) {
        return 1;
    }
    let k = ((max - start) / step + 1e-9).floor() + 1.0;
    if k.is_finite() {
        (k as usize).clamp(1, MAX_DRILL_STEPS)
    } else {
        MAX_DRILL_STEPS
    }
}

/// Parses a threshold (as `run --threshold EXPR` gives it) and checks that the names it uses
/// exist in the scenario: requests, journeys, clients and phases.
pub fn check_threshold(loaded: &Loaded, expr: &str) -> Result<Threshold, String> {
    let names = Names::of(&loaded.scenario);
    let t = gate::parse_threshold(expr).map_err(|e| {
        format!("`{expr}`: {} (at character {})", e.message, e.offset + 1)
    })?;
    names.check_expr(&t).map_err(|(m, h)| match h {
        Some(h) => format!("`{expr}`: {m}; {h}"),
        None => format!("`{expr}`: {m}"),
    })?;
    Ok(t)
}

/// The names a scenario defines, for expressions.
struct Names {
    requests: Vec<String>,
    journeys: Vec<String>,
    clients: Vec<String>,
    phases: Vec<String>,
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
        Names {
            requests,
            journeys: s.journeys.keys().cloned().collect(),
            clients: client_names(s),
            phases: phase_names(&s.load),
        }
    }

    /// Checks the names in an expression; on failure the message and a hint.
    fn check_expr(&self, t: &Threshold) -> Result<(), (String, Option<String>)> {
        let unknown = |what: &str, name: &str, known: &[String]| {
            let help = did_you_mean(name, known.iter().map(String::as_str)).or_else(|| {
                if known.is_empty() {
                    None
                } else {
                    Some(format!("the {what}s are: {}", quoted(known)))
                }
            });
            Err((format!("unknown {what} `{name}`"), help))
        };
        match &t.selector {
            Selector::All => {}
            Selector::Request(n) if !self.requests.contains(n) => {
                return unknown("request", n, &self.requests)
            }
            Selector::Journey(n) if !self.journeys.contains(n) => {
                return unknown("journey", n, &self.journeys)
            }
            Selector::Client(n) if !self.clients.contains(n) => {
                return unknown("client", n, &self.clients)
            }
            _ => {}
        }
        if let Some(p) = &t.phase {
            if !self.phases.contains(p) {
                return unknown("phase", p, &self.phases);
            }
        }
        Ok(())
    }
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
                    Issue::at(root().key("target"), format!("`{t}` is not an http:// or https:// URL"))
                        .help("write the base URL of the system under test, like http://127.0.0.1:8080"),
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
                    Issue::at(path, format!("the CSV file `{}` does not exist", file.display()))
                        .help("paths are relative to the scenario file's directory"),
                );
                continue;
            }
            let mut rd = match csv::ReaderBuilder::new().has_headers(true).from_path(&file) {
                Ok(r) => r,
                Err(e) => {
                    self.push(Issue::at(path, format!("cannot read `{}`: {e}", file.display())));
                    continue;
                }
            };
            let header: Vec<String> = match rd.headers() {
                Ok(h) => h.iter().map(|c| c.trim().to_string()).collect(),
                Err(e) => {
                    self.push(Issue::at(path, format!("cannot read the header row of `{}`: {e}", file.display())));
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
                Issue::at(root().key("clients"), format!("client shares add up to {}, not 100%", pct(sum)))
                    .on_key()
                    .help(format!("{}; change them so that they total 100%", parts.join(" + "))),
            );
        }
        // Phases named in `during`, each checked once.
        let phases = self.names.phases.clone();
        let mut seen: Vec<String> = Vec::new();
        for (cname, c) in &s.clients {
            for phase in c.during.keys() {
                let path = root().key("clients").key(cname).key("during").key(phase);
                if !phases.contains(phase) {
                    let help = did_you_mean(phase, phases.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("the phases of this load are {}", quoted(&phases)));
                    self.push(Issue::at(path, format!("unknown phase `{phase}`")).on_key().help(help));
                    continue;
                }
                if seen.contains(phase) {
                    continue;
                }
                seen.push(phase.clone());
                let parts: Vec<(String, f64)> = s
                    .clients
                    .iter()
                    .map(|(n, c)| (n.clone(), c.during.get(phase).unwrap_or(&c.share).0))
                    .collect();
                let sum: f64 = parts.iter().map(|p| p.1).sum();
                if !is_hundred(sum) {
                    let list: Vec<String> = parts.iter().map(|(n, x)| format!("{n} {}", pct(*x))).collect();
                    self.push(
                        Issue::at(path, format!("during phase `{phase}`, client shares add up to {}, not 100%", pct(sum)))
                            .on_key()
                            .help(format!(
                                "{} (a client without `during: {{ {phase}: … }}` keeps its `share`)",
                                list.join(" + ")
                            )),
                    );
                }
            }
        }
    }

    fn journeys(&mut self) {
        let s = self.s;
        let jpath = root().key("journeys");
        if s.journeys.is_empty() {
            self.push(Issue::at(jpath.clone(), "there are no journeys: a scenario needs at least one").on_key());
            return;
        }
        let sum: f64 = s.journeys.values().map(|j| j.share.0).sum();
        if !is_hundred(sum) {
            let parts: Vec<String> = s.journeys.iter().map(|(n, j)| format!("{n} {}", pct(j.share.0))).collect();
            self.push(
                Issue::at(jpath.clone(), format!("journey shares add up to {}, not 100%", pct(sum)))
                    .on_key()
                    .help(format!("{}; change them so that they total 100%", parts.join(" + "))),
            );
        }
        let clients = client_names(s);
        for (jname, j) in &s.journeys {
            if let Some(list) = &j.clients {
                if list.is_empty() {
                    self.push(
                        Issue::at(jpath.key(jname).key("clients"), "the list of clients is empty: no one would take this journey")
                            .help("list the clients that take it, or remove `clients` to let all take it"),
                    );
                }
                for (i, c) in list.iter().enumerate() {
                    if !clients.contains(c) {
                        let help = did_you_mean(c, clients.iter().map(String::as_str))
                            .unwrap_or_else(|| format!("the clients are {}", quoted(&clients)));
                        self.push(Issue::at(jpath.key(jname).key("clients").index(i), format!("unknown client `{c}`")).help(help));
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
        // Request names must not mix methods.
        let mut methods: HashMap<String, (&'static str, KeyPath)> = HashMap::new();
        let mut rendezvous: HashMap<String, KeyPath> = HashMap::new();
        for (jname, j) in &s.journeys {
            let spath = jpath.key(jname).key("steps");
            if j.steps.is_empty() {
                self.push(Issue::at(spath.clone(), "the journey has no steps").help("add at least one request, like `- get: /`"));
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
                if let (Some(name), Some((method, _))) = (request_name(step), step.request()) {
                    match methods.get(&name) {
                        Some((m, first)) if *m != method => {
                            let at = if step.name.is_some() { p.key("name") } else { p.key(&method.to_lowercase()) };
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
                            Issue::at(np.clone(), format!("the rendezvous name `{}` is already used at `{first}`", r.name))
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

    fn step(&mut self, p: &KeyPath, step: &Step, captures: &[String], later: &HashMap<String, usize>) {
        let methods: Vec<(&str, &str)> = [
            ("get", &step.get),
            ("post", &step.post),
            ("put", &step.put),
            ("patch", &step.patch),
            ("delete", &step.delete),
            ("head", &step.head),
        ]
        .into_iter()
        .filter_map(|(m, u)| u.as_deref().map(|u| (m, u)))
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
        match kinds.as_slice() {
            [] => {
                self.push(
                    Issue::at(p.clone(), "this step does nothing: it needs one of get, post, put, patch, delete, head, think, wait or rendezvous")
                        .help("for example `- get: /api/items` or `- think: 2s`"),
                );
                return;
            }
            [_] => {}
            [first, second, ..] => {
                self.push(
                    Issue::at(p.key(second), format!("a step does one thing, but this one has `{first}` and `{second}`"))
                        .on_key()
                        .help("split it into two steps"),
                );
                return;
            }
        }
        let kind = kinds[0];
        let is_request = METHODS.contains(&kind);
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
                        Issue::at(p.key(key), format!("`{key}` belongs to a request step, not to a `{kind}` step"))
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
                if w != "sale-start" {
                    self.push(
                        Issue::at(wp, format!("unknown instant `{w}`: `wait` knows only `sale-start`"))
                            .help_opt(did_you_mean(w, ["sale-start"]).or(Some("for a gathering of users, use `rendezvous: { name, users, timeout }`".into()))),
                    );
                } else if self.s.load.countdown.is_none() {
                    self.push(
                        Issue::at(wp, "`wait: sale-start` needs a countdown load, and this load has none")
                            .help("use `load.countdown`, or a `rendezvous` step to gather users"),
                    );
                }
            }
            "rendezvous" => {
                let r = step.rendezvous.as_ref().expect("kind says so");
                let rp = p.key("rendezvous");
                if r.users == 0 {
                    self.push(Issue::at(rp.key("users"), "a rendezvous needs at least 1 user"));
                }
                if r.timeout.0.is_zero() {
                    self.push(Issue::at(rp.key("timeout"), "the rendezvous timeout must be longer than 0s"));
                }
                if r.name.trim().is_empty() {
                    self.push(Issue::at(rp.key("name"), "the rendezvous name is empty"));
                }
            }
            method => {
                let (_, url) = methods[0];
                self.template(&p.key(method), url, &scope);
                if url.trim().is_empty() {
                    self.push(Issue::at(p.key(method), "the URL is empty").help("write a path like /api/items"));
                }
                self.request_parts(p, step, &scope);
            }
        }
    }

    fn request_parts(&mut self, p: &KeyPath, step: &Step, scope: &Scope<'_>) {
        let bodies: Vec<&str> = [("json", step.json.is_some()), ("form", step.form.is_some()), ("body", step.body.is_some())]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| k)
            .collect();
        if bodies.len() > 1 {
            self.push(
                Issue::at(p.key(bodies[1]), format!("a request has one body, but this one has `{}` and `{}`", bodies[0], bodies[1]))
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
                self.push(Issue::at(p.key("timeout"), "the timeout must be longer than 0s"));
            }
        }
        for (var, jp) in &step.capture {
            let cp = p.key("capture").key(var);
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || var.starts_with(|c: char| c.is_ascii_digit()) {
                self.push(
                    Issue::at(cp.clone(), format!("`{var}` is not a capture name: use letters, digits and _"))
                        .on_key()
                        .help("templates refer to it as {{ name }}"),
                );
            } else if self.s.data.contains_key(var) {
                self.push(
                    Issue::at(cp.clone(), format!("the capture `{var}` has the name of a data set"))
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
                        Issue::at(p.key("expect").key("json").key(k), format!("`{k}` is not a JSONPath: {}", e.message()))
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
                                "declare it under `data:`, like `users: { csv: data/users.csv }`".into()
                            } else {
                                format!("the data sets are {}", sets.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))
                            }
                        });
                        self.push(Issue::at(p.clone(), format!("unknown data set `{set}` in {{{{ {set}.{column} }}}}")).within(src, at).help(help));
                    } else if let Some(cols) = self.columns.get(set) {
                        if !cols.contains(column) {
                            let file = &self.s.data[set].csv;
                            let help = did_you_mean(column, cols.iter().map(String::as_str))
                                .unwrap_or_else(|| format!("its columns are {}", quoted(cols)));
                            self.push(
                                Issue::at(p.clone(), format!("data set `{set}` ({file}) has no column `{column}`"))
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
                        let col = self.columns.get(name).and_then(|c| c.first()).cloned().unwrap_or_else(|| "id".into());
                        Issue::at(p.clone(), format!("`{name}` is a data set, not a value"))
                            .help(format!("name one of its columns, like {{{{ {name}.{col} }}}}"))
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
                        Issue::at(p.clone(), format!("random({a}, {b}): the low end is above the high end"))
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
        let scope = Scope { captures: &none, later: &later };
        for (k, v) in &s.defaults.headers {
            self.template(&root().key("defaults").key("headers").key(k), v, &scope);
        }
        for (c, client) in &s.clients {
            for (k, v) in &client.headers {
                self.template(&root().key("clients").key(c).key("headers").key(k), v, &scope);
            }
        }
        if let Some(t) = s.defaults.timeout {
            if t.0.is_zero() {
                self.push(Issue::at(root().key("defaults").key("timeout"), "the timeout must be longer than 0s"));
            }
        }
        if let Some(ca) = &s.defaults.tls.ca {
            let f = self.base_dir.join(ca);
            if !f.is_file() {
                self.push(
                    Issue::at(root().key("defaults").key("tls").key("ca"), format!("the CA file `{}` does not exist", f.display()))
                        .help("paths are relative to the scenario file's directory"),
                );
            }
        }
    }

    fn load(&mut self) {
        let l = &self.s.load;
        let lp = root().key("load");
        let shapes: Vec<&str> = [
            ("stages", l.stages.is_some()),
            ("users", l.users.is_some()),
            ("countdown", l.countdown.is_some()),
            ("steps", l.steps.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect();
        match shapes.as_slice() {
            [] => {
                self.push(
                    Issue::at(lp.clone(), "the load has no shape: it needs one of stages, users, countdown or steps")
                        .on_key()
                        .help("for example `load: { stages: [ { rate: 50/s, for: 30s } ] }`"),
                );
            }
            [_] => {}
            [a, b, ..] => {
                self.push(
                    Issue::at(lp.key(b), format!("the load has more than one shape: `{a}` and `{b}`"))
                        .on_key()
                        .help("keep exactly one of stages, users, countdown or steps"),
                );
            }
        }
        if let Some(stages) = &l.stages {
            let forms: Vec<StageForm> = stages
                .iter()
                .map(|s| StageForm {
                    level: s.rate.is_some(),
                    for_: s.for_.map(|d| d.0),
                    to: s.to.is_some(),
                    over: s.over.map(|d| d.0),
                    hold: s.hold.map(|d| d.0),
                    name: s.name.clone(),
                })
                .collect();
            self.stage_forms(&lp.key("stages"), "rate", "{ rate: 50/s, for: 30s }", &forms);
        }
        if let Some(stages) = &l.users {
            let forms: Vec<StageForm> = stages
                .iter()
                .map(|s| StageForm {
                    level: s.users.is_some(),
                    for_: s.for_.map(|d| d.0),
                    to: s.to.is_some(),
                    over: s.over.map(|d| d.0),
                    hold: s.hold.map(|d| d.0),
                    name: s.name.clone(),
                })
                .collect();
            self.stage_forms(&lp.key("users"), "users", "{ users: 50, for: 30s }", &forms);
        }
        if let Some(c) = &l.countdown {
            self.countdown(&lp.key("countdown"), c);
        }
        if let Some(d) = &l.steps {
            let dp = lp.key("steps");
            if d.start.0 <= 0.0 {
                self.push(Issue::at(dp.key("start"), "the drill's start rate must be above 0/s"));
            }
            if d.step.0 <= 0.0 {
                self.push(Issue::at(dp.key("step"), "the drill's step must be above 0/s"));
            }
            if d.every.0.is_zero() {
                self.push(Issue::at(dp.key("every"), "each drill step must last longer than 0s"));
            }
            if d.max.0 < d.start.0 {
                self.push(Issue::at(dp.key("max"), format!(
                    "max ({}) is below start ({})",
                    super::units::format_rate(d.max.0),
                    super::units::format_rate(d.start.0)
                )));
            } else if d.step.0 > 0.0 && (d.max.0 - d.start.0) / d.step.0 + 1.0 > MAX_DRILL_STEPS as f64 {
                self.push(Issue::at(dp.key("step"), format!("the drill would have more than {MAX_DRILL_STEPS} steps")).help("use a larger step"));
            }
        }
        if l.max_users == Some(0) {
            self.push(Issue::at(lp.key("max_users"), "max_users must be at least 1").help("leave it out for no cap"));
        }
    }

    fn stage_forms(&mut self, p: &KeyPath, level_key: &str, example: &str, forms: &[StageForm]) {
        if forms.is_empty() {
            self.push(Issue::at(p.clone(), "the list of stages is empty").help(format!("add a stage like {example}")));
            return;
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, f) in forms.iter().enumerate() {
            let sp = p.index(i);
            let groups: Vec<&str> = [
                ("level", f.level || f.for_.is_some()),
                ("ramp", f.to || f.over.is_some()),
                ("hold", f.hold.is_some()),
            ]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| k)
            .collect();
            let forms_help = format!("a stage is one of {example}, {{ to, over }} (a linear ramp) or {{ hold }}");
            match groups.as_slice() {
                [] => {
                    self.push(Issue::at(sp.clone(), "this stage is empty").help(forms_help));
                    continue;
                }
                [_] => {}
                _ => {
                    self.push(Issue::at(sp.clone(), "this stage mixes stage forms").help(forms_help));
                    continue;
                }
            }
            let zero = |d: Option<std::time::Duration>| d.is_some_and(|d| d.is_zero());
            match groups[0] {
                "level" if !f.level => {
                    self.push(Issue::at(sp.key("for"), format!("`for` needs `{level_key}`")).on_key().help(forms_help))
                }
                "level" if f.for_.is_none() => {
                    self.push(Issue::at(sp.key(level_key), format!("`{level_key}` needs `for`: how long to keep it")).on_key().help(forms_help))
                }
                "ramp" if !f.to => self.push(Issue::at(sp.key("over"), "`over` needs `to`: the value to ramp to").on_key().help(forms_help)),
                "ramp" if f.over.is_none() => {
                    self.push(Issue::at(sp.key("to"), "`to` needs `over`: how long the ramp takes").on_key().help(forms_help))
                }
                "hold" if i == 0 => self.push(
                    Issue::at(sp.key("hold"), "the first stage cannot be { hold }: there is nothing to hold yet")
                        .on_key()
                        .help(format!("start with {example} or a ramp from 0 like {{ to: …, over: 10s }}")),
                ),
                _ => {}
            }
            for (key, d) in [("for", f.for_), ("over", f.over), ("hold", f.hold)] {
                if zero(d) {
                    self.push(Issue::at(sp.key(key), format!("`{key}` must be longer than 0s")));
                }
            }
            if let Some(n) = &f.name {
                if let Some(first) = names.get(n.as_str()) {
                    self.push(
                        Issue::at(sp.key("name"), format!("the stage name `{n}` is already used by stage {}", first + 1))
                            .help("phase names must be unique: thresholds and `during` refer to them"),
                    );
                } else {
                    names.insert(n, i);
                }
            }
        }
    }

    fn countdown(&mut self, p: &KeyPath, c: &super::model::Countdown) {
        use super::model::At;
        if c.rise.0.is_zero() {
            self.push(Issue::at(p.key("rise"), "`rise` must be longer than 0s: it is the climb to the peak").help("the 2020 Tmall peak came 26s after 00:00: rise: 26s"));
        }
        let need = c.rise.0 + c.hold.0 + c.decay.0;
        let fmt = super::units::format_duration;
        match (c.sale_start, c.end) {
            (At::Offset(s), At::Offset(e)) => {
                if s.0 + need > e.0 {
                    self.push(
                        Issue::at(p.key("end"), format!(
                            "`end` ({}) comes before the countdown is over: sale_start + rise + hold + decay = {}",
                            fmt(e.0),
                            fmt(s.0 + need)
                        ))
                        .help(format!("set end to at least {}", fmt(s.0 + need))),
                    );
                }
            }
            (At::Instant(s), At::Instant(e)) => {
                let span = (e - s).to_std().unwrap_or_default();
                if e < s || span < need {
                    self.push(
                        Issue::at(p.key("end"), format!(
                            "`end` comes before the countdown is over: it must be at least rise + hold + decay = {} after sale_start",
                            fmt(need)
                        )),
                    );
                }
            }
            _ => self.push(
                Issue::at(p.key("end"), "`sale_start` and `end` must both be offsets (like 2m) or both RFC 3339 instants")
                    .help("mixing them makes the run length depend on when it starts"),
            ),
        }
    }

    fn expressions(&mut self) {
        let s = self.s;
        for (i, e) in s.thresholds.iter().enumerate() {
            let p = root().key("thresholds").index(i);
            match gate::parse_threshold(e) {
                Ok(t) => self.names_in(&p, e, &t),
                Err(err) => self.push(
                    Issue::at(p, format!("bad threshold: {}", err.message))
                        .within(e, err.offset.min(e.len()))
                        .help("a threshold is [SELECTOR] METRIC OP VALUE [during PHASE], like `create-order p99 < 300ms during peak`"),
                ),
            }
        }
        for (i, e) in s.abort.iter().enumerate() {
            let p = root().key("abort").index(i);
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

    fn names_in(&mut self, p: &KeyPath, src: &str, t: &Threshold) {
        if let Err((m, h)) = self.names.check_expr(t) {
            let needle = match (&t.selector, &t.phase) {
                (Selector::Request(n) | Selector::Journey(n) | Selector::Client(n), _) if m.contains(&format!("`{n}`")) => n.clone(),
                (_, Some(ph)) => ph.clone(),
                _ => String::new(),
            };
            let at = if needle.is_empty() { 0 } else { src.find(&needle).unwrap_or(0) };
            self.push(Issue::at(p.clone(), m).within(src, at).help_opt(h));
        }
    }
}

/// The shape of one stage, whatever its model (rates or users).
struct StageForm {
    /// `rate` (stages) or `users` (users) is set.
    level: bool,
    for_: Option<std::time::Duration>,
    to: bool,
    over: Option<std::time::Duration>,
    hold: Option<std::time::Duration>,
    name: Option<String>,
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

