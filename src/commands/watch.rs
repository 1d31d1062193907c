//! `flashcrowd watch URL...`: the live page and a terminal summary over many generators'
//! endpoints (`--metrics-listen` of each `--segment` process), merged exactly (see
//! `ops::watch`). Ends when every segment has finished, or when the rest has been missing for
//! `--give-up`; exit 0 when every segment finished, 3 when one went missing.

use super::{Failure, Outcome};
use crate::cli::WatchArgs;
use crate::ops::server::{Routes, Server};
use crate::ops::watch::Watch;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn watch(a: WatchArgs) -> Outcome {
    for u in &a.urls {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(Failure::BadInput(format!(
                "watch: `{u}` is not an endpoint URL: give each segment's --metrics-listen as http://HOST:PORT"
            )));
        }
    }
    let give_up = a
        .give_up
        .as_deref()
        .map(crate::scenario::units::parse_duration)
        .transpose()
        .map_err(|e| Failure::BadInput(format!("--give-up: {e}")))?
        .unwrap_or(Duration::from_secs(10));
    let mut w = Watch::new(&a.urls).map_err(Failure::Aborted)?;
    let server = Server::start(
        a.listen,
        Routes {
            exporter: None,
            steer: None,
            board: w.board.clone(),
            token: None,
            redact: Arc::new(|s: &str| s.to_string()),
        },
    )
    .map_err(Failure::BadInput)?;
    eprintln!(
        "watch: live page http://{}/ over {} segment(s)",
        server.addr,
        a.urls.len()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Aborted(e.to_string()))?;
    let mut last_line = Instant::now();
    let mut missing_said: Vec<bool> = vec![false; a.urls.len()];
    let interrupted = rt.block_on(async {
        loop {
            w.poll().await;
            for (s, said) in w.segments.iter().zip(missing_said.iter_mut()) {
                if s.missing != *said {
                    *said = s.missing;
                    eprintln!(
                        "watch: segment {} at {} {}",
                        s.label.as_deref().unwrap_or("?"),
                        s.url,
                        if s.missing {
                            format!(
                                "is MISSING ({})",
                                s.last_error.as_deref().unwrap_or("no answer")
                            )
                        } else {
                            "answers again".to_string()
                        }
                    );
                }
            }
            if last_line.elapsed() >= Duration::from_secs(5) && !a.quiet {
                last_line = Instant::now();
                eprintln!("{}", line(&w));
            }
            if w.over(give_up) {
                return false;
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return true,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
    let summary = w.summary();
    let complete = summary["complete"].as_bool().unwrap_or(false);
    eprintln!("{}", line(&w));
    let status = if !complete {
        "incomplete".to_string()
    } else {
        worst(w.segments.iter().filter_map(|s| s.verdict.as_deref()))
    };
    eprintln!(
        "watch: {status}: {} requests, p99 {} ms over {} s from {} segment(s){}",
        summary["totals"]["requests"],
        summary["totals"]["latency_ms"]["p99"],
        summary["seconds"],
        w.segments.len(),
        if interrupted { " (interrupted)" } else { "" }
    );
    if a.json {
        println!("{summary:#}");
    }
    w.board.finish(crate::ops::board::Verdict {
        status: status.clone(),
        reason: (!complete).then(|| {
            let gone: Vec<String> = w
                .segments
                .iter()
                .filter(|s| s.missing)
                .map(|s| s.url.clone())
                .collect();
            format!("missing: {}", gone.join(", "))
        }),
        exit_code: if complete { 0 } else { 3 },
        dir: None,
    });
    w.board.linger(Duration::from_secs(3));
    server.stop();
    Ok(if complete { 0 } else { 3 })
}

/// The worst of the segments' verdicts.
fn worst<'a>(v: impl Iterator<Item = &'a str>) -> String {
    const ORDER: [&str; 5] = ["error", "aborted", "failed", "interrupted", "passed"];
    v.min_by_key(|s| ORDER.iter().position(|o| o == s).unwrap_or(0))
        .unwrap_or("passed")
        .to_string()
}

/// One terminal line: the last merged second and every segment's state.
fn line(w: &Watch) -> String {
    let (requests, h, errors) = w.board.totals();
    let segs: Vec<String> = w
        .segments
        .iter()
        .map(|s| {
            format!(
                "{}={}",
                s.label.as_deref().unwrap_or(&s.url),
                if s.missing {
                    "MISSING"
                } else if s.done {
                    "done"
                } else {
                    "live"
                }
            )
        })
        .collect();
    format!(
        "watch: t={}s requests={} errors={} p99={}ms segments: {}",
        w.board.seconds(),
        requests,
        errors.iter().sum::<u64>(),
        if h.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", h.value_at_quantile(0.99) as f64 / 1000.0)
        },
        segs.join(" ")
    )
}
