//! The target's water level: scrape its Prometheus endpoints (node_exporter and the like) every
//! `every` during the run, on a thread and runtime of its own (reqwest), and compute the
//! scenario's declared series from each scrape. The series language itself (parsed when the
//! scenario is validated) is `crate::scenario::series`; this module evaluates it on scrapes.
//!
//! `rate` and `busy` need two scrapes: their first value comes at the second scrape.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::ScrapeRecord;
use crate::scenario::series::is_name_char;
pub use crate::scenario::series::{parse_series, Matcher, Selector, SeriesExpr, Term};

/// One sample of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Reads the Prometheus text format (and OpenMetrics): comment lines are skipped, timestamps
/// ignored, lines it cannot read skipped.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = parse_sample(line) {
            out.push(s);
        }
    }
    out
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map(|(i, _)| i)
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let end;
        loop {
            // label name
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            let (ls, c) = *chars.peek()?;
            if c == '}' {
                end = ls + 1;
                break;
            }
            let mut le = ls;
            while let Some(&(i, c)) = chars.peek() {
                if c == '=' {
                    le = i;
                    break;
                }
                chars.next();
            }
            let label = r[ls..le].trim().to_string();
            chars.next(); // '='
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                let (_, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        o => value.push(o),
                    },
                    '"' => break,
                    o => value.push(o),
                }
            }
            labels.push((label, value));
        }
        rest = &r[end..];
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

impl Selector {
    fn matches(&self, s: &Sample) -> bool {
        s.name == self.name
            && self.matchers.iter().all(|m| {
                let v = s
                    .labels
                    .iter()
                    .find(|(l, _)| *l == m.label)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("");
                (v == m.value) != m.negate
            })
    }

    /// The sum of the matching samples; None when none matches.
    fn sum(&self, samples: &[Sample], keep: impl Fn(&Sample) -> bool) -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for s in samples.iter().filter(|s| self.matches(s) && keep(s)) {
            found = true;
            total += s.value;
        }
        found.then_some(total)
    }
}

/// A scrape: its samples and when it was taken (seconds since the monitor started).
pub struct Scraped<'a> {
    pub samples: &'a [Sample],
    pub t: f64,
}

impl Term {
    fn eval(&self, prev: Option<&Scraped>, cur: &Scraped) -> Option<f64> {
        match self {
            Term::Number(n) => Some(*n),
            Term::Gauge(sel) => sel.sum(cur.samples, |_| true),
            Term::Rate(sel) => {
                let p = prev?;
                let dt = cur.t - p.t;
                let d = sel.sum(cur.samples, |_| true)? - sel.sum(p.samples, |_| true)?;
                (dt > 0.0 && d >= 0.0).then(|| d / dt)
            }
            Term::Busy(sel) => {
                let p = prev?;
                let idle = |s: &Sample| s.labels.iter().any(|(l, v)| l == "mode" && v == "idle");
                let d_all = sel.sum(cur.samples, |_| true)? - sel.sum(p.samples, |_| true)?;
                let d_idle = sel.sum(cur.samples, idle).unwrap_or(0.0)
                    - sel.sum(p.samples, idle).unwrap_or(0.0);
                (d_all > 0.0).then(|| (100.0 * (1.0 - d_idle / d_all)).clamp(0.0, 100.0))
            }
        }
    }
}

impl SeriesExpr {
    /// The value from this scrape (and the previous one, for rates); None when a term has no
    /// value yet or a division by zero.
    pub fn eval(&self, prev: Option<&Scraped>, cur: &Scraped) -> Option<f64> {
        let mut v = self.first.eval(prev, cur)?;
        for (op, t) in &self.rest {
            let x = t.eval(prev, cur)?;
            v = match op {
                '+' => v + x,
                '-' => v - x,
                '*' => v * x,
                _ if x == 0.0 => return None,
                _ => v / x,
            };
        }
        v.is_finite().then_some(v)
    }
}

/// What the monitor is to scrape and compute, from the scenario.
#[derive(Debug, Clone)]
pub struct MonitorSpec {
    pub every: Duration,
    /// (name, url)
    pub targets: Vec<(String, String)>,
    /// (name, expression)
    pub series: Vec<(String, SeriesExpr)>,
    /// Headers to send (the test-traffic tag).
    pub headers: Vec<(String, String)>,
}

impl MonitorSpec {
    pub fn from_scenario(
        m: &crate::scenario::model::Monitor,
        tag: (&str, &str),
    ) -> Result<MonitorSpec, String> {
        let mut series = Vec::new();
        for (name, src) in &m.series {
            series.push((
                name.clone(),
                parse_series(src).map_err(|e| format!("monitor.series.{name}: {e}"))?,
            ));
        }
        Ok(MonitorSpec {
            every: m.every.map(|d| d.0).unwrap_or(Duration::from_secs(5)),
            targets: m
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        t.name.clone().unwrap_or_else(|| format!("target{}", i + 1)),
                        t.url.clone(),
                    )
                })
                .collect(),
            series,
            headers: vec![(tag.0.to_string(), tag.1.to_string())],
        })
    }

    /// The names the per-second series carries: each series (the mean over targets), and with
    /// several targets also `NAME@TARGET`.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.series.iter().map(|(n, _)| n.clone()).collect();
        if self.targets.len() > 1 {
            for (n, _) in &self.series {
                for (t, _) in &self.targets {
                    v.push(format!("{n}@{t}"));
                }
            }
        }
        v
    }
}

#[derive(Default)]
struct Shared {
    /// Per target: the latest value of each series.
    latest: Vec<Vec<Option<f64>>>,
    scrapes: Vec<ScrapeRecord>,
}

pub struct Monitor {
    pub spec: MonitorSpec,
    shared: Arc<Mutex<Shared>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    pub fn start(spec: MonitorSpec) -> Result<Monitor, String> {
        let shared = Arc::new(Mutex::new(Shared {
            latest: vec![vec![None; spec.series.len()]; spec.targets.len()],
            scrapes: Vec::new(),
        }));
        let (tx, rx) = mpsc::channel::<()>();
        let sh = shared.clone();
        let sp = spec.clone();
        let thread = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || scrape_loop(sp, sh, rx))
            .map_err(|e| format!("cannot start the monitor thread: {e}"))?;
        Ok(Monitor {
            spec,
            shared,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The current values by name (see `MonitorSpec::names`); series without a value are left out.
    pub fn current(&self) -> Vec<(String, f64)> {
        let Ok(sh) = self.shared.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, (name, _)) in self.spec.series.iter().enumerate() {
            let vals: Vec<f64> = sh.latest.iter().filter_map(|t| t[k]).collect();
            if !vals.is_empty() {
                out.push((name.clone(), vals.iter().sum::<f64>() / vals.len() as f64));
            }
        }
        if self.spec.targets.len() > 1 {
            for (k, (name, _)) in self.spec.series.iter().enumerate() {
                for (ti, (tname, _)) in self.spec.targets.iter().enumerate() {
                    if let Some(v) = sh.latest[ti][k] {
                        out.push((format!("{name}@{tname}"), v));
                    }
                }
            }
        }
        out
    }

    pub fn scrapes(&self) -> Vec<ScrapeRecord> {
        self.shared
            .lock()
            .map(|s| s.scrapes.clone())
            .unwrap_or_default()
    }

    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn scrape_loop(spec: MonitorSpec, shared: Arc<Mutex<Shared>>, stop: mpsc::Receiver<()>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let timeout = spec
        .every
        .clamp(Duration::from_millis(200), Duration::from_secs(5));
    let Ok(client) = reqwest::Client::builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(true)
        .build()
    else {
        return;
    };
    let began = Instant::now();
    let mut prev: Vec<Option<(Vec<Sample>, f64)>> = vec![None; spec.targets.len()];
    let mut k: u32 = 0;
    loop {
        for (ti, (tname, url)) in spec.targets.iter().enumerate() {
            let mut req = client.get(url);
            for (h, v) in &spec.headers {
                req = req.header(h, v);
            }
            let got: Result<String, String> = rt.block_on(async {
                let r = req.send().await.map_err(|e| e.to_string())?;
                if !r.status().is_success() {
                    return Err(format!("HTTP {}", r.status().as_u16()));
                }
                r.text().await.map_err(|e| e.to_string())
            });
            let t = began.elapsed().as_secs_f64();
            let t_ms = (t * 1000.0).round() / 1000.0;
            let mut rec = ScrapeRecord {
                t: t_ms,
                target: tname.clone(),
                values: Default::default(),
                error: None,
            };
            match got {
                Ok(text) => {
                    let samples = parse_exposition(&text);
                    let cur = Scraped {
                        samples: &samples,
                        t,
                    };
                    let p = prev[ti]
                        .as_ref()
                        .map(|(s, t)| Scraped { samples: s, t: *t });
                    let vals: Vec<Option<f64>> = spec
                        .series
                        .iter()
                        .map(|(_, e)| e.eval(p.as_ref(), &cur))
                        .collect();
                    for ((name, _), v) in spec.series.iter().zip(vals.iter()) {
                        rec.values
                            .insert(name.clone(), v.map(|x| (x * 1e6).round() / 1e6));
                    }
                    if let Ok(mut sh) = shared.lock() {
                        for (slot, v) in sh.latest[ti].iter_mut().zip(vals) {
                            if v.is_some() {
                                *slot = v;
                            }
                        }
                    }
                    prev[ti] = Some((samples, t));
                }
                Err(e) => rec.error = Some(e),
            }
            if let Ok(mut sh) = shared.lock() {
                sh.scrapes.push(rec);
            }
        }
        k += 1;
        let next = began + spec.every * k;
        let wait = next.saturating_duration_since(Instant::now());
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_expressions_parse() {
        let e = parse_series("busy(node_cpu_seconds_total)").unwrap();
        assert!(matches!(e.first, Term::Busy(_)));
        let e =
            parse_series("node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes").unwrap();
        assert_eq!(e.rest.len(), 1);
        let e = parse_series("node_filesystem_avail_bytes{mountpoint=\"/\", fstype!=\"tmpfs\"}")
            .unwrap();
        let Term::Gauge(s) = e.first else { panic!() };
        assert_eq!(s.matchers.len(), 2);
        assert!(s.matchers[1].negate);
        assert!(parse_series("avg(x)").is_err());
        assert!(parse_series("- x").is_err());
        assert!(parse_series("x{a=b}").is_err());
    }

    #[test]
    fn busy_rate_and_gauges_evaluate() {
        let a = parse_exposition(
            "# HELP x\nnode_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 100\nnode_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 50\nnode_load1 1.5\nreqs_total 10 1700000000\n",
        );
        let b = parse_exposition(
            "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 101\nnode_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 53\nnode_load1 2.5\nreqs_total 30\n",
        );
        let pa = Scraped {
            samples: &a,
            t: 0.0,
        };
        let pb = Scraped {
            samples: &b,
            t: 2.0,
        };
        let busy = parse_series("busy(node_cpu_seconds_total)").unwrap();
        assert_eq!(busy.eval(None, &pa), None);
        assert_eq!(busy.eval(Some(&pa), &pb), Some(75.0));
        assert_eq!(
            parse_series("rate(reqs_total)")
                .unwrap()
                .eval(Some(&pa), &pb),
            Some(10.0)
        );
        assert_eq!(
            parse_series("node_load1 * 2").unwrap().eval(None, &pb),
            Some(5.0)
        );
        assert_eq!(parse_series("missing").unwrap().eval(None, &pb), None);
    }
}
