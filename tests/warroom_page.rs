//! The war room's live page and its control token, against real parts: a running drill on a
//! loopback server, its endpoint on --metrics-listen, and Debian's headless chromium driven by
//! chromedriver through selenium (installed from PyPI by tests/support/python.rs).
//!
//! Shown here: the page loads with no request beyond its own origin; its numbers change between
//! two reads seconds apart and agree with /metrics; pressing pause with the token pauses the run
//! (the per-second series shows it), without the token the press is refused; every control
//! endpoint answers 401 without the token; the page, its data and /metrics never show a
//! planted secret or the token; a bare port binds to loopback; a token is generated and printed
//! when none is given.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::endpoint::{free_addr, request as http, LiveRun};
use support::server::TestServer;
use support::{python::python, Scenario};

fn get(addr: SocketAddr, path: &str) -> String {
    let (status, body) = http(addr, "GET", path, "").unwrap_or_else(|| panic!("GET {path}"));
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn state(addr: SocketAddr) -> Value {
    serde_json::from_str(&get(addr, "/api/state")).unwrap()
}

/// Waits until the run has completed `secs` seconds (the page's data says so).
fn wait_seconds(addr: SocketAddr, secs: usize, limit: Duration) -> Value {
    let began = Instant::now();
    loop {
        if let Some((200, body)) = http(addr, "GET", "/api/state", "") {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["series"].as_array().unwrap().len() >= secs {
                return v;
            }
        }
        assert!(
            began.elapsed() < limit,
            "no {secs} seconds within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn secret(what: &str) -> String {
    format!("{what}{:016x}", rand::random::<u64>())
}

/// A steady drill carrying planted secrets: an Authorization header, a `${env:…}` header value
/// and URL user-info in the target.
fn scenario(rate: u32, secs: u32, bearer: &str) -> String {
    format!(
        r#"
name: warroom
defaults:
  headers:
    Authorization: "Bearer {bearer}"
    X-Api-Key: "${{env:FC_WARROOM_SECRET}}"
journeys:
  walk:
    share: 100%
    steps:
      - get: /item
        name: item
      - get: /cart
        name: cart
load:
  stages:
    - {{ rate: {rate}/s, for: {secs}s, name: steady }}
  arrivals: uniform
thresholds:
  - p99 < 5s
  - errors < 50%
"#
    )
}

/// `flashcrowd run` of the scenario against `target`, its endpoint on `listen`.
fn run_args<'a>(sc: &'a Scenario, target: &'a str, listen: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        sc.file.to_str().unwrap(),
        "--target",
        target,
        "--out",
        sc.out.to_str().unwrap(),
        "--quiet",
        "--threads",
        "1",
        "--metrics-listen",
        listen,
    ]
}

const CONTROL: [&str; 5] = [
    "/control/pause",
    "/control/resume",
    "/control/stop",
    "/control/rate?factor=0.5",
    "/control/rate?set=3",
];

#[test]
fn control_needs_the_token_a_bare_port_is_loopback_and_a_token_is_generated() {
    let target = TestServer::start();
    let sc = Scenario::new(&scenario(40, 30, "nobearer0000"));
    let port = free_addr().port().to_string();
    let url = target.url();
    let mut run = LiveRun::start(
        &run_args(&sc, &url, &port),
        &[("FC_WARROOM_SECRET", "envsecret0000")],
    );
    let page = run.line_with("live page: http://", Duration::from_secs(30));
    assert!(
        page.contains(&format!("http://127.0.0.1:{port}/")),
        "a bare port listens on loopback: {page}"
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let line = run.line_with("Authorization: Bearer ", Duration::from_secs(5));
    let token: String = line
        .split("Authorization: Bearer ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(token.len(), 32, "a generated token of 128 bits: {line}");
    wait_seconds(addr, 2, Duration::from_secs(30));
    // Without the token, or with a wrong one, every control endpoint answers 401 and changes
    // nothing.
    for path in CONTROL {
        for headers in [
            String::new(),
            "Authorization: Bearer wrong\r\n".to_string(),
            format!("Authorization: Basic {token}\r\n"),
            format!("X-Token: {token}\r\n"),
        ] {
            let (status, body) = http(addr, "POST", path, &headers).unwrap();
            assert_eq!(status, 401, "POST {path} with {headers:?}: {body}");
        }
    }
    let control: Value = serde_json::from_str(&get(addr, "/control")).unwrap();
    assert_eq!(control["paused"], false, "{control}");
    assert_eq!(control["factor"], 1.0, "{control}");
    assert_eq!(control["stopping"], false, "{control}");
    let st = state(addr);
    assert!(
        st["timeline"].as_array().unwrap().is_empty(),
        "a refused command leaves no trace: {}",
        st["timeline"]
    );
    // With the generated token, the same endpoint works.
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let (status, body) = http(addr, "POST", "/control/stop", &bearer).unwrap();
    assert_eq!(status, 200, "{body}");
    let (code, stderr) = run.wait(Duration::from_secs(30));
    assert_eq!(code, Some(3), "a stop is an interruption\n{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(sc.out.join("report.json")).unwrap())
            .unwrap();
    let tl = report["timeline"].as_array().unwrap();
    assert_eq!(tl.len(), 1, "only the authorized stop: {tl:?}");
    assert_eq!(tl[0]["event"], "stop");
    // The token is printed once for the operator and written nowhere in the run directory.
    for f in std::fs::read_dir(&sc.out).unwrap().flatten() {
        if !f.path().is_file() {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(f.path()).unwrap()).into_owned();
        assert!(
            !text.contains(&token),
            "the token is in {}",
            f.path().display()
        );
    }
}

/// Drives the page in headless chromium. Prints one JSON object.
const BROWSER: &str = r#"
import json, sys, time, urllib.request
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from selenium.webdriver.support import expected_conditions as EC

base, token, shots = sys.argv[1], sys.argv[2], sys.argv[3]
o = webdriver.ChromeOptions()
o.binary_location = "/usr/bin/chromium"
for a in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", "--window-size=1920,1080", "--user-data-dir=" + sys.argv[4]]:
    o.add_argument(a)
o.set_capability("goog:loggingPrefs", {"performance": "ALL"})
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
out = {}
try:
    d.set_page_load_timeout(60)
    # The browser's own start-up pages are no request of ours: forget them, then load the page.
    d.get("about:blank")
    d.get_log("performance")
    d.get(base + "/")
    wait = WebDriverWait(d, 60, poll_frequency=0.1)
    num = lambda el, attr="value": float(d.find_element(By.ID, el).get_attribute("data-" + attr) or "nan")
    wait.until(lambda _: num("total-requests", "seconds") >= 2)
    def read():
        # Each attribute is a call of its own and the page may update between two calls: keep
        # a reading only when the second it names did not change while it was taken.
        while True:
            before = num("total-requests", "seconds")
            r = {"seconds": before, "total": num("total-requests"),
                 "elapsed": num("elapsed"), "rps": num("rps")}
            if num("total-requests", "seconds") == before:
                return r
    out["first"] = read()
    time.sleep(3)
    out["second"] = read()
    # The page's whole-run count against /metrics at the same completed second.
    # The page polls once a second and /metrics moves at each completed second, so the two are
    # seldom at the same second at one instant: sample both at 10 Hz for a few seconds and
    # compare them at every second both were seen at.
    seen_page, seen_metrics = {}, {}
    for _ in range(60):
        page = read()
        seen_page[page["seconds"]] = page["total"]
        text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
        secs = total = 0.0
        for line in text.splitlines():
            if line.startswith("flashcrowd_elapsed_seconds "):
                secs = float(line.split()[1])
            if line.startswith("flashcrowd_requests_total{"):
                total += float(line.split()[-1])
        seen_metrics[secs] = total
        if len(set(seen_page) & set(seen_metrics)) >= 3:
            break
        time.sleep(0.1)
    agree = [{"seconds": s, "page": seen_page[s], "metrics": seen_metrics[s]}
             for s in sorted(set(seen_page) & set(seen_metrics)) if s > 0]
    out["agree"] = agree
    d.save_screenshot(shots + "/page-1920.png")
    def press(button, tok):
        box = d.find_element(By.ID, "token")
        box.clear()
        box.send_keys(tok)
        d.execute_script("document.getElementById('ctl-msg').dataset.status = ''")
        d.find_element(By.ID, button).click()
        WebDriverWait(d, 10).until(EC.alert_is_present())
        d.switch_to.alert.accept()
        wait.until(lambda _: d.find_element(By.ID, "ctl-msg").get_attribute("data-status"))
        return int(d.find_element(By.ID, "ctl-msg").get_attribute("data-status"))
    out["pause_without_token"] = press("btn-pause", "not-the-token")
    out["message_without_token"] = d.find_element(By.ID, "ctl-msg").text
    out["pause_with_token"] = press("btn-pause", token)
    out["paused_at_second"] = read()["seconds"]
    wait.until(lambda _: d.find_element(By.ID, "state").text == "PAUSED")
    wait.until(lambda _: read()["seconds"] >= out["paused_at_second"] + 3)
    out["pill"] = d.find_element(By.ID, "state").text
    out["page_text"] = d.find_element(By.TAG_NAME, "body").text
    out["page_source"] = d.page_source
    d.set_window_size(1280, 800)
    time.sleep(1.5)
    d.save_screenshot(shots + "/page-1280.png")
    urls = []
    for e in d.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m.get("method") == "Network.requestWillBeSent":
            urls.append(m["params"]["request"]["url"])
    out["urls"] = urls
finally:
    d.quit()
print(json.dumps(out))
"#;

#[test]
fn the_live_page_in_chromium_reads_the_run_and_pauses_it_only_with_the_token() {
    let target = TestServer::start();
    let bearer = secret("bearer");
    let env_secret = secret("envsecret");
    let token = secret("token");
    let sc = Scenario::new(&scenario(40, 90, &bearer));
    let addr = free_addr();
    let a = addr.to_string();
    let (user, pass) = (secret("user"), secret("pass"));
    let target_url = target
        .url()
        .replace("http://", &format!("http://{user}:{pass}@"));
    let run = LiveRun::start(
        &run_args(&sc, &target_url, &a),
        &[
            ("FC_WARROOM_SECRET", env_secret.as_str()),
            ("FLASHCROWD_CONTROL_TOKEN", token.as_str()),
        ],
    );
    wait_seconds(addr, 1, Duration::from_secs(60));
    let profile = tempfile::tempdir().unwrap();
    let shots = std::env::var("FLASHCROWD_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| sc.dir.path().to_path_buf());
    let out = python(
        BROWSER,
        &[
            &format!("http://{addr}"),
            &token,
            shots.to_str().unwrap(),
            profile.path().to_str().unwrap(),
        ],
    );
    let b: Value = serde_json::from_str(&out).unwrap();

    // Nothing but the page's own origin.
    let urls = b["urls"].as_array().unwrap();
    assert!(!urls.is_empty(), "the performance log saw no request");
    let origin = format!("http://{addr}/");
    for u in urls {
        let u = u.as_str().unwrap();
        // `data:` URLs (the blank favicon) never leave the browser.
        assert!(
            u.starts_with(&origin) || u.starts_with("data:"),
            "a request beyond the page's origin: {u}"
        );
    }
    // The numbers move.
    let (r1, r2) = (&b["first"], &b["second"]);
    assert!(
        r2["seconds"].as_f64() > r1["seconds"].as_f64(),
        "{r1} then {r2}"
    );
    assert!(
        r2["total"].as_f64() > r1["total"].as_f64(),
        "{r1} then {r2}"
    );
    assert!(
        r2["elapsed"].as_f64() > r1["elapsed"].as_f64(),
        "{r1} then {r2}"
    );
    // And agree with /metrics, exactly, at the same completed second.
    let agree = b["agree"].as_array().unwrap();
    assert!(
        !agree.is_empty(),
        "never read the page and /metrics at one second"
    );
    for x in agree {
        assert_eq!(x["page"], x["metrics"], "{x}");
        assert!(x["page"].as_f64().unwrap() > 0.0, "{x}");
    }
    // The press without the token is refused, says so, and changes nothing; with it, pauses.
    assert_eq!(
        b["pause_without_token"], 401,
        "{}",
        b["message_without_token"]
    );
    assert!(
        b["message_without_token"].as_str().unwrap().contains("401"),
        "{}",
        b["message_without_token"]
    );
    assert_eq!(b["pause_with_token"], 200);
    assert_eq!(b["pill"], "PAUSED");
    let st = state(addr);
    let tl = st["timeline"].as_array().unwrap();
    assert_eq!(tl.len(), 1, "only the authorized press: {tl:?}");
    assert_eq!(tl[0]["event"], "pause");
    let paused_at = tl[0]["t"].as_f64().unwrap();
    // The per-second series: seconds after the pause start nothing and count paused arrivals.
    let series = st["series"].as_array().unwrap();
    let after: Vec<&Value> = series
        .iter()
        .filter(|p| p["t"].as_f64().unwrap() >= paused_at.ceil())
        .collect();
    assert!(after.len() >= 2, "{series:?}");
    // An arrival counts in the second the generator handled it in: planned arrivals it reached
    // late (a loaded debug build, kept from its timer) fall into the second before the snapshot,
    // so a second may hold a part of the next one's. Each paused second counts some, and
    // together they count their 40 a second but for one second's worth at the edges.
    for p in &after {
        assert_eq!(p["started"], 0, "second {} after the pause: {p}", p["t"]);
        assert_eq!(p["factor"], 0.0, "{p}");
        assert!(p["paused"].as_u64().unwrap() > 0, "{p}");
    }
    let paused: u64 = after.iter().map(|p| p["paused"].as_u64().unwrap()).sum();
    assert!(
        paused + 40 >= 40 * after.len() as u64,
        "{paused} paused arrivals in {} seconds: {after:?}",
        after.len()
    );
    // The second before the pause started its arrivals (less what the pause took of it).
    let before = &series[paused_at.floor() as usize - 1];
    assert!(before["started"].as_u64().unwrap() > 0, "{before}");

    // No secret and no token in anything the endpoint serves or the page shows.
    let mut texts = vec![
        (
            "page source",
            b["page_source"].as_str().unwrap().to_string(),
        ),
        ("page text", b["page_text"].as_str().unwrap().to_string()),
        ("GET /", get(addr, "/")),
        ("/api/state", get(addr, "/api/state")),
        ("/api/intervals", get(addr, "/api/intervals")),
        ("/metrics", get(addr, "/metrics")),
        ("/control", get(addr, "/control")),
    ];
    assert!(
        texts[4].1.contains("item|"),
        "the intervals name the requests"
    );
    let (status, _) = http(
        addr,
        "POST",
        "/control/stop",
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .unwrap();
    assert_eq!(status, 200);
    let (code, stderr) = run.wait(Duration::from_secs(60));
    assert_eq!(code, Some(3), "{stderr}");
    texts.push(("stderr", stderr));
    for (place, text) in &texts {
        for (what, s) in [
            ("Authorization", &bearer),
            ("${env:}", &env_secret),
            ("URL user", &user),
            ("URL password", &pass),
            ("control token", &token),
        ] {
            assert!(!text.contains(s.as_str()), "{what} shown in {place}");
        }
    }
    // The secrets were really sent.
    assert!(target.count("/item") > 0);
}
