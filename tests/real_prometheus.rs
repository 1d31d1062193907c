//! The real parts users have beside a run: Debian's `prometheus` scraping a run's /metrics,
//! answering every PromQL query of examples/grafana's dashboard with data, and Debian's
//! `prometheus-node-exporter` feeding the scenario's `monitor:` block (the fake one is in
//! liveops_run.rs). Each test starts its own processes on free loopback ports, with their own
//! temporary config and storage, and kills them when it ends, panic or not (a Drop guard):
//! whatever a package's postinst may have started on the usual ports is never used.
//!
//! Neither binary is optional: without one the test fails and says that `.ci/run` installs it
//! (`apt-get install prometheus prometheus-node-exporter`).

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::endpoint::free_addr;
use support::{count, Scenario};

/// The installed binary `name` of Debian's package `package`; fails the test without it.
fn installed(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` (Debian's package `{package}`) is not installed, and this test needs \
                 the real one: `bash .ci/run` installs it (as root: apt-get install prometheus \
                 prometheus-node-exporter)"
            )
        })
}

/// A process the test started: killed and reaped when dropped (also when the test panics).
/// Its output goes to a log file the failure messages quote.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(name: &'static str, bin: &Path, args: &[String], log: PathBuf) -> Daemon {
        let out = std::fs::File::create(&log).expect("a log file");
        let err = out.try_clone().unwrap();
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        Daemon { name, child, log }
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("--- {} log (last lines)\n{}", self.name, tail.join("\n"))
    }

    /// Waits until `GET url` answers 200 with a body containing `want`; fails (with the log)
    /// after `limit` or when the process exits.
    fn wait_ready(&mut self, url: &str, want: &str, limit: Duration) {
        let began = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({s}) before it was ready\n{}",
                    self.name,
                    self.log()
                );
            }
            if let Ok((200, body)) = get(url) {
                if body.contains(want) {
                    return;
                }
            }
            assert!(
                began.elapsed() < limit,
                "{} not ready at {url} within {limit:?}\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET (reqwest on a runtime of its own); (status, body).
fn get(url: &str) -> Result<(u16, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let r = client.get(url).send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.map_err(|e| e.to_string())?))
    })
}

/// Debian's node_exporter on a free loopback port, with only the collectors the tests read.
fn node_exporter(dir: &Path) -> (Daemon, SocketAddr) {
    let bin = installed("prometheus-node-exporter", "prometheus-node-exporter");
    let addr = free_addr();
    let mut d = Daemon::start(
        "node_exporter",
        &bin,
        &[
            format!("--web.listen-address={addr}"),
            "--collector.disable-defaults".into(),
            "--collector.cpu".into(),
            "--collector.loadavg".into(),
            "--collector.meminfo".into(),
        ],
        dir.join("node_exporter.log"),
    );
    d.wait_ready(
        &format!("http://{addr}/metrics"),
        "node_cpu_seconds_total{",
        Duration::from_secs(30),
    );
    (d, addr)
}

fn monitor_block(node: SocketAddr, every: &str) -> String {
    format!(
        r#"monitor:
  every: {every}
  targets: [ {{ url: "http://{node}/metrics", name: this-machine }} ]
  series:
    cpu: busy(node_cpu_seconds_total)
    load1: node_load1
    mem_total: node_memory_MemTotal_bytes
    mem_used: node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes
"#
    )
}

/// Requests to the shop for `secs` seconds at 20/s: an item page, and a page the shop does not
/// have (a 404 each time, so that the errors panel has data).
fn scenario(secs: u32, monitor: &str) -> String {
    format!(
        r#"
name: real-prometheus
target: http://127.0.0.1:9
journeys:
  look:
    share: 100%
    steps:
      - get: /api/items/1
        name: item
      - get: /no-such-page
        name: missing
load:
  stages:
    - {{ rate: 20/s, for: {secs}s }}
  arrivals: uniform
{monitor}"#
    )
}

/// The machine's MemTotal (bytes), as /proc/meminfo says it.
fn mem_total() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    kb * 1024.0
}

#[test]
fn the_monitor_reads_a_real_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let (_node, node) = node_exporter(dir.path());
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let sc = Scenario::new(&scenario(4, &monitor_block(node, "500ms")));
    let done = sc.run(&shop.url(), &["--threads", "1"], Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    let m = &report["monitor"];
    assert_eq!(
        m["series"],
        serde_json::json!(["cpu", "load1", "mem_total", "mem_used"])
    );
    let scrapes = m["scrapes"].as_array().unwrap();
    // Every 500 ms over a 4 s run.
    assert!(scrapes.len() >= 6, "{} scrapes: {m}", scrapes.len());
    let total = mem_total();
    let mut cpus = Vec::new();
    for (k, s) in scrapes.iter().enumerate() {
        assert!(s["error"].is_null(), "scrape {k}: {s}");
        assert_eq!(s["target"], "this-machine");
        let v = &s["values"];
        // The machine's own MemTotal, exactly: real numbers from the real exporter.
        assert_eq!(v["mem_total"].as_f64(), Some(total), "{s}");
        let used = v["mem_used"].as_f64().unwrap();
        assert!(used > 0.0 && used < total, "{s}");
        assert!(v["load1"].as_f64().unwrap() >= 0.0, "{s}");
        if k == 0 {
            assert!(v["cpu"].is_null(), "busy() needs two scrapes: {s}");
        } else {
            let cpu = v["cpu"].as_f64().unwrap_or_else(|| panic!("no cpu: {s}"));
            assert!((0.0..=100.0).contains(&cpu), "{s}");
            cpus.push(cpu);
        }
    }
    // The machine runs the load test and the shop: its CPUs were busy some of the time.
    assert!(cpus.iter().any(|c| *c > 0.0), "cpu {cpus:?}");
    // The CPU series lands in the per-second series and the phase's mean.
    let series = report["series"].as_array().unwrap();
    let with_cpu = series
        .iter()
        .filter(|p| {
            p["monitor"]["cpu"]
                .as_f64()
                .is_some_and(|c| (0.0..=100.0).contains(&c))
        })
        .count();
    assert!(with_cpu >= 3, "{series:?}");
    let mean = report["phases"][0]["monitor_mean"]["cpu"]
        .as_f64()
        .unwrap_or_else(|| panic!("no cpu mean: {}", report["phases"][0]));
    assert!((0.0..=100.0).contains(&mean), "{mean}");
    assert_eq!(count(&report, "/totals/requests"), 160);
}

/// Percent-encodes a query parameter.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every `expr` of the dashboard's panels (rows' nested panels too), with its panel's title.
fn dashboard_queries(v: &Value, title: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            let title = m.get("title").and_then(Value::as_str).unwrap_or(title);
            if let Some(Value::String(e)) = m.get("expr") {
                out.push((title.to_string(), e.clone()));
            }
            for (k, x) in m {
                if k != "templating" {
                    dashboard_queries(x, title, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| dashboard_queries(x, title, out)),
        _ => {}
    }
}

/// Grafana's variables as Grafana would fill them in against this Prometheus:
/// - `$job` (multi-value, "All" selected, no custom all value) → the regex alternation of its
///   values, `(flashcrowd)`;
/// - `$__rate_interval` → `4s`: Grafana's max($__interval + scrape interval, 4 × scrape
///   interval), with the data source's scrape interval set to this Prometheus' 1 s and a 1 s
///   step;
/// - `$__interval` → `1s` (the step), `$__range` → the queried range.
fn fill_in(expr: &str, jobs: &[String], range_s: u64) -> String {
    let alternation = format!("({})", jobs.join("|"));
    let range = format!("{range_s}s");
    let mut e = expr.to_string();
    for (var, val) in [
        ("${__rate_interval}", "4s"),
        ("$__rate_interval", "4s"),
        ("${__interval}", "1s"),
        ("$__interval", "1s"),
        ("${__range}", range.as_str()),
        ("$__range", range.as_str()),
        ("${job}", alternation.as_str()),
        ("$job", alternation.as_str()),
    ] {
        e = e.replace(var, val);
    }
    assert!(
        !e.contains('$') && !e.contains("[["),
        "a Grafana variable this test does not know in `{expr}`: say here how Grafana fills it in"
    );
    e
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let bin = installed("prometheus", "prometheus");
    let (_node, node) = node_exporter(dir.path());
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let metrics = free_addr();
    let prom = free_addr();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: flashcrowd\n    static_configs:\n      - targets: [\"{metrics}\"]\n"
        ),
    )
    .unwrap();
    let mut prometheus = Daemon::start(
        "prometheus",
        &bin,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={prom}"),
            "--log.level=warn".into(),
        ],
        dir.path().join("prometheus.log"),
    );
    prometheus.wait_ready(
        &format!("http://{prom}/-/ready"),
        "",
        Duration::from_secs(60),
    );
    // Ready is not yet scraping: Prometheus hands targets to its scrape loops up to 5 s later.
    // Start the run once it has tried the (not yet listening) endpoint, so that every second of
    // the run can be scraped.
    prometheus.wait_ready(
        &format!("http://{prom}/api/v1/targets"),
        "\"health\":\"down\"",
        Duration::from_secs(60),
    );

    // A bounded run (8 s at 20/s) with its endpoint where Prometheus scrapes, and the monitor on
    // the real node_exporter (the dashboard's water-level panel).
    let now_s = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let start = now_s();
    let sc = Scenario::new(&scenario(8, &monitor_block(node, "1s")));
    let m = metrics.to_string();
    let done = sc.run(
        &shop.url(),
        &[
            "--threads",
            "1",
            "--metrics-listen",
            &m,
            "--control-token",
            "prometheus-test-token",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    assert_eq!(count(&report, "/totals/requests"), 320);
    // Let the last scrapes land (and the run's endpoint go stale) before asking.
    std::thread::sleep(Duration::from_secs(2));
    let end = now_s();
    let api = |path: &str| -> Value {
        let url = format!("http://{prom}{path}");
        let (status, body) =
            get(&url).unwrap_or_else(|e| panic!("{url}: {e}\n{}", prometheus.log()));
        assert_eq!(status, 200, "{url}: {body}\n{}", prometheus.log());
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{url}: {body}");
        v["data"].clone()
    };
    let targets = api("/api/v1/targets");
    // Prometheus saw the run's seconds go by, to at least its 6th of 8 (a scrape on a loaded
    // machine may come late and see two seconds at once, or miss the last one).
    let elapsed = api(&format!(
        "/api/v1/query?query=max_over_time(flashcrowd_elapsed_seconds[1m])&time={:.3}",
        now_s()
    ));
    let seen = elapsed["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        seen >= 6.0,
        "the last second Prometheus scraped: {elapsed}; targets {targets}"
    );
    let window = format!("start={start:.3}&end={end:.3}");

    // The dashboard's `job` variable: `label_values(flashcrowd_elapsed_seconds, job)`.
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/grafana/flashcrowd-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let vars = dash["templating"]["list"].as_array().unwrap();
    let job_var = vars
        .iter()
        .find(|v| v["name"] == "job")
        .expect("a job variable");
    let q = job_var["query"]
        .as_str()
        .or_else(|| job_var["query"]["query"].as_str())
        .unwrap();
    let (metric, label) = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|r| r.split_once(','))
        .map(|(m, l)| (m.trim(), l.trim()))
        .unwrap_or_else(|| {
            panic!("the job variable's query is not label_values(METRIC, LABEL): {q}")
        });
    let jobs: Vec<String> = api(&format!(
        "/api/v1/label/{label}/values?match[]={}&{window}",
        enc(metric)
    ))
    .as_array()
    .unwrap()
    .iter()
    .map(|j| j.as_str().unwrap().to_string())
    .collect();
    assert_eq!(jobs, ["flashcrowd"], "`{q}`; targets: {targets}");

    // Every panel's query, as Grafana's range query over the run: each must return a series
    // with at least one number (not only NaN: a panel that draws nothing is no panel).
    let mut queries = Vec::new();
    dashboard_queries(&dash["panels"], "", &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let range_s = (end - start).ceil() as u64;
    let mut empty = Vec::new();
    let mut table = String::new();
    for (title, expr) in &queries {
        let promql = fill_in(expr, &jobs, range_s);
        let data = api(&format!(
            "/api/v1/query_range?query={}&{window}&step=1",
            enc(&promql)
        ));
        let result = data["result"].as_array().unwrap();
        let numbers: usize = result
            .iter()
            .map(|s| {
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| {
                        p[1].as_str()
                            .and_then(|v| v.parse::<f64>().ok())
                            .is_some_and(f64::is_finite)
                    })
                    .count()
            })
            .sum();
        table.push_str(&format!(
            "{title} | {promql} | {} series, {numbers} numbers\n",
            result.len()
        ));
        if numbers == 0 {
            empty.push(format!("{title}: {promql} → {data}"));
        }
    }
    println!("{table}");
    assert!(
        empty.is_empty(),
        "dashboard queries with no data:\n{}\n\nall:\n{table}\ntargets: {targets}",
        empty.join("\n")
    );
}
