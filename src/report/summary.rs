//! The end-of-run terminal summary: compact like k6's — totals, a row per request name ×
//! client, thresholds with ✓/✗ and observed vs limit, a plain warning when the generator was the
//! bottleneck, and where the files are. Reads the typed report, so `flashcrowd report` prints
//! the same summary as the run did.

use super::model::{Percentiles, Report};
use std::fmt::Write;

pub fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}ms")
    } else {
        format!("{v:.2}ms")
    }
}

/// A latency in ms, or `-` when nothing was measured.
pub fn opt_ms(v: Option<f64>) -> String {
    v.map(fmt_ms).unwrap_or_else(|| "-".into())
}

pub fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "0%".into()
    } else {
        format!("{:.2}%", 100.0 * a as f64 / b as f64)
    }
}

/// The generator-overload warning, in plain words (also used by report.html).
pub fn overload_warning(r: &Report) -> Option<String> {
    r.generator.overloaded.then(|| {
        format!(
            "the generator could not keep up with the plan (send lag p99 {} > {}ms). \
             Latencies still count from the intended start, but the target saw less load than \
             planned. Use more --threads, more machines (--segment), or a smaller --scale.",
            opt_ms(r.generator.lag_ms.p99),
            crate::run::result::OVERLOAD_LAG_MS
        )
    })
}

/// Where sessions were parked, in words: "`wait: sale-start`", or "a wait" when the report does
/// not name them.
fn parked_at(r: &Report) -> String {
    if r.run.waits.is_empty() {
        "a wait or rendezvous".into()
    } else {
        let names: Vec<String> = r.run.waits.iter().map(|w| format!("`{w}`")).collect();
        names.join(" or ")
    }
}

/// The note on arrivals dropped at the max_users cap: filled by sessions parked at a wait (the
/// target was not the limit) or by sessions waiting on responses (it was).
pub fn dropped_note(r: &Report) -> Option<String> {
    let t = &r.totals;
    (t.sessions_dropped > 0).then(|| {
        if t.sessions_dropped_parked * 2 >= t.sessions_dropped {
            format!(
                "{} arrivals were dropped at the max_users cap, {} of them while sessions parked at {} \
                 held the cap: the cap was full of waiting sessions, not of slow requests, so the \
                 target was not the limit. Raise max_users above the waiting crowd (`flashcrowd plan` \
                 says how many the plan parks).",
                t.sessions_dropped,
                t.sessions_dropped_parked,
                parked_at(r)
            )
        } else {
            format!(
                "{} arrivals were dropped at the max_users cap while sessions waited on responses: \
                 the target was too slow to keep up with the plan.",
                t.sessions_dropped
            )
        }
    })
}

/// The note on sessions still parked when the run ended: they never sent what follows the wait.
pub fn left_parked_note(r: &Report) -> Option<String> {
    let n = r.totals.sessions_left_parked;
    (n > 0).then(|| {
        format!(
            "{n} sessions were still parked at {} when the run ended and never sent what follows \
             it (the run ended before the release, or a rendezvous never gathered its users).",
            parked_at(r)
        )
    })
}

/// One line on what the errors say about the target, when one kind makes up most of them (and
/// errors are at least 1 % of requests): `not_http` (a wrong port or scheme) is not `connect`
/// (nobody there, or refusing), and neither is the target being slow.
pub fn diagnosis(r: &Report) -> Option<String> {
    let t = &r.totals;
    if t.errors == 0 || t.errors * 100 < t.requests {
        return None;
    }
    let (kind, n) = t.errors_by_kind.iter().max_by_key(|(_, n)| **n)?;
    if n * 2 < t.errors {
        return None;
    }
    let of = format!("{n} of {} requests", t.requests);
    let why = match kind.as_str() {
        "not_http" => format!(
            "{of} got an answer that is not HTTP (not_http): the target is not speaking HTTP on \
             this port. Check --target's port, and its scheme (a TLS port needs https://)"
        ),
        "connect" => format!(
            "{of} could not connect (connect): the target refused connections or could not be \
             reached. It is down or out of connections, or --target names the wrong address"
        ),
        "tls" => format!(
            "{of} failed their TLS handshake (tls): check the certificate's CA \
             (defaults.tls.ca) and the scheme (a plain-HTTP port needs http://)"
        ),
        "timeout" => format!(
            "{of} got no answer in time (timeout): the target answered too slowly or stalled"
        ),
        "reset" => format!(
            "{of} had their connection closed or reset mid-exchange (reset): the target, or \
             something in front of it, is dropping connections"
        ),
        _ => return None,
    };
    Some(why)
}

/// Most timeline events the terminal summary and summary.md list (report.json has them all).
pub const TIMELINE_SHOWN: usize = 20;

/// The run's timeline (live control, rules, signals) as lines: `2.0s  rate  factor 0.5 (×0.5)`,
/// at most `TIMELINE_SHOWN` of them, then how many more report.json has.
pub fn timeline_lines(r: &Report) -> Vec<String> {
    let mut out: Vec<String> = r
        .timeline
        .iter()
        .take(TIMELINE_SHOWN)
        .map(|e| {
            format!(
                "{:>7}  {}  {}",
                format!("{:.1}s", e.t),
                e.kind.name(),
                e.detail
            )
        })
        .collect();
    if r.timeline.len() > TIMELINE_SHOWN {
        out.push(format!(
            "… and {} more in report.json `timeline`",
            r.timeline.len() - TIMELINE_SHOWN
        ));
    }
    out
}

/// Terminal columns a string takes: East Asian wide characters (CJK, fullwidth forms) take two.
pub fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

/// `s` padded with spaces to `width` terminal columns.
fn pad(s: &str, width: usize) -> String {
    format!("{s}{}", " ".repeat(width.saturating_sub(display_width(s))))
}

/// The columns every exporter shows for a scheduled action (report.json `actions[]`).
pub const ACTION_COLUMNS: [&str; 7] = [
    "action", "trigger", "planned", "began", "result", "recovery", "impact",
];

/// One action's row under [`ACTION_COLUMNS`]: `db-failover (http)`, `at sale+30s`, `30.0s`,
/// `30.0s`, `status 200 in 0.004s`, `3.0s`, `512 of 1,900 failed (26.9%), worst p99 12ms`.
pub fn action_cells(a: &crate::run::recovery::ActionReport) -> [String; 7] {
    let secs = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}s"));
    let result = match (&a.result, a.duration_s) {
        (Some(r), Some(d)) => format!(
            "{r} in {d:.3}s{}",
            if a.ok == Some(false) { " (failed)" } else { "" }
        ),
        (Some(r), None) => r.clone(),
        _ => "never fired".to_string(),
    };
    let recovery = match (a.t, a.recovery_s) {
        (None, _) => "–".to_string(),
        (Some(_), Some(r)) => format!("{r:.1}s"),
        (Some(_), None) => "not recovered".to_string(),
    };
    let impact = a.impact.as_ref().map_or("–".to_string(), |i| {
        format!(
            "{} of {} failed ({:.1}%), worst p99 {}",
            i.failed,
            i.requests,
            i.error_rate * 100.0,
            fmt_ms(i.worst_p99_ms)
        )
    });
    [
        format!("{} ({})", a.name, a.action),
        a.trigger.clone(),
        secs(a.planned_t),
        secs(a.t),
        result,
        recovery,
        impact,
    ]
}

/// Loud lines for a run that failed more than it should, thresholds or not: the error rate past
/// `run.max_error_rate`, and every journey none of whose sessions completed.
pub fn error_warnings(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let t = &r.totals;
    if t.requests > 0 && t.error_rate > r.run.max_error_rate {
        let checked = if r.thresholds.is_empty() {
            "no threshold checked it"
        } else {
            "whatever the thresholds say"
        };
        out.push(format!(
            "{} of requests failed ({} of {}), above the {} this run allows (--max-errors); {checked}: \
             this is not a healthy run (--strict or CI=true makes it fail)",
            pct(t.errors, t.requests),
            t.errors,
            t.requests,
            crate::report::model::percent_text(r.run.max_error_rate),
        ));
    }
    for j in &r.journeys {
        if j.sessions > 0 && j.completed == 0 && j.errors > 0 {
            out.push(format!(
                "journey `{}`: every one of its {} sessions failed",
                j.name, j.sessions
            ));
        }
    }
    out
}

/// `stream SSE /api/assistant|mobile: received 210 (21/s), first event p50 201ms, gap p50 20ms p99
/// 22ms, duration p50 611ms`: what a stream step received after its open.
pub fn stream_line(name: &str, client: &str, st: &super::model::StreamRow) -> String {
    let mut line = format!(
        "stream {name}|{client}: received {} ({:.0}/s)",
        st.received, st.received_per_s
    );
    if st.sent > 0 {
        line += &format!(", sent {} ({:.0}/s)", st.sent, st.sent_per_s);
    }
    line += &format!(
        ", first event p50 {}, gap p50 {} p99 {}, duration p50 {}",
        opt_ms(st.first_event_ms.p50),
        opt_ms(st.gap_ms.p50),
        opt_ms(st.gap_ms.p99),
        opt_ms(st.duration_ms.p50)
    );
    if !st.close_codes.is_empty() {
        let codes: Vec<String> = st
            .close_codes
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        line += &format!("; close codes {}", codes.join(", "));
    }
    line
}

pub fn render(r: &Report, dir: &std::path::Path) -> String {
    let mut o = String::new();
    let t = &r.totals;
    let all: &Percentiles = &r.latency_ms;
    let _ = writeln!(o);
    // A run without thresholds checked nothing: it is never called PASSED.
    let status = match r.run.status.as_str() {
        "completed" => "COMPLETED (no thresholds: nothing was checked)".to_string(),
        s => s.to_uppercase(),
    };
    let _ = writeln!(
        o,
        "  {}  {}  {:.1}s  segment {}  {} thread(s)",
        r.scenario.name, status, r.run.duration_s, r.run.segment, r.run.threads
    );
    if let Some(reason) = &r.run.reason {
        let _ = writeln!(o, "  stopped: {reason}");
    }
    let _ = writeln!(
        o,
        "  requests {} ({:.0}/s)   errors {} ({})   sessions {} started, {} dropped, {} interrupted",
        t.requests,
        t.rate,
        t.errors,
        pct(t.errors, t.requests),
        t.sessions_started,
        t.sessions_dropped,
        t.sessions_interrupted
    );
    if t.retried > 0 {
        let _ = writeln!(
            o,
            "  retried  {} request(s) sent again once on a new connection (no answer on the first)",
            t.retried
        );
    }
    if t.sessions_unstarted > 0 {
        let _ = writeln!(
            o,
            "  unstarted {} planned arrival(s) never started (a stop came after they were due, or the generator fell over 1 s behind the plan)",
            t.sessions_unstarted
        );
    }
    let _ = writeln!(
        o,
        "  latency  p50 {}  p90 {}  p99 {}  max {}   (service time p99 {}, from the intended start)",
        opt_ms(all.p50),
        opt_ms(all.p90),
        opt_ms(all.p99),
        opt_ms(all.max),
        opt_ms(r.service_time_ms.p99),
    );
    for c in &r.clients {
        if let Some(net) = &c.network {
            let _ = writeln!(o, "  network  {}: {net}", c.name);
        }
    }
    if !r.requests.is_empty() {
        let w = r
            .requests
            .iter()
            .map(|q| display_width(&q.name))
            .max()
            .unwrap_or(7)
            .max(7);
        let wc = r
            .requests
            .iter()
            .map(|q| display_width(&q.client))
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "  {}  {}  {:>9}  {:>8}  {:>7}  {:>8}  {:>8}  {:>8}",
            pad("request", w),
            pad("client", wc),
            "count",
            "rate",
            "errors",
            "p50",
            "p99",
            "max"
        );
        for q in &r.requests {
            let _ = writeln!(
                o,
                "  {}  {}  {:>9}  {:>7.0}/s  {:>7}  {:>8}  {:>8}  {:>8}",
                pad(&q.name, w),
                pad(&q.client, wc),
                q.count,
                q.rate,
                pct(q.error_count(), q.count),
                opt_ms(q.latency_ms.p50),
                opt_ms(q.latency_ms.p99),
                opt_ms(q.latency_ms.max),
            );
        }
        for q in &r.requests {
            if let Some(st) = &q.stream {
                let _ = writeln!(o, "  {}", stream_line(&q.name, &q.client, st));
            }
        }
        let kinds: Vec<String> = t
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if !kinds.is_empty() {
            let _ = writeln!(o, "  errors by kind: {}", kinds.join(", "));
        }
        if let Some(d) = diagnosis(r) {
            let _ = writeln!(o, "  DIAGNOSIS: {d}");
        }
    }
    for w in error_warnings(r) {
        let _ = writeln!(o, "  WARNING: {w}");
    }
    if !r.thresholds.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "  thresholds");
        for v in &r.thresholds {
            let _ = writeln!(
                o,
                "  {} {}   {}",
                if v.passed { "✓" } else { "✗" },
                v.expr,
                v.observed_vs_limit()
            );
        }
    }
    if !r.actions.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "  actions");
        for a in &r.actions {
            let c = action_cells(a);
            let _ = writeln!(
                o,
                "  {}  {}: planned {}, began {}, {}; recovery {}; impact {}",
                c[0], c[1], c[2], c[3], c[4], c[5], c[6]
            );
        }
    }
    if let Some(c) = &r.capacity {
        let _ = writeln!(o);
        let _ = writeln!(o, "  {}", crate::capacity::summary_line(c));
    }
    let timeline = timeline_lines(r);
    if !timeline.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "  timeline (live control, rules, signals)");
        for l in timeline {
            let _ = writeln!(o, "  {l}");
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "  generator  lag p99 {}  max {}  cpu {:.1}s",
        opt_ms(r.generator.lag_ms.p99),
        opt_ms(r.generator.lag_ms.max),
        r.generator.cpu_s
    );
    // A warm-up that opened nothing (per-user connections open as their users arrive) is not
    // worth a line.
    if let Some(w) = r.generator.warm_up.as_ref().filter(|w| w.connections > 0) {
        let _ = writeln!(
            o,
            "  warm-up    {} connection{} opened in {:.1} ms before t=0",
            w.connections,
            if w.connections == 1 { "" } else { "s" },
            w.ms
        );
    }
    let b = &r.generator.burst_ms;
    if b.count > 0 {
        let _ = writeln!(
            o,
            "  burst      {} requests released together: sent within p99 {} (max {}) of the release",
            b.count,
            opt_ms(b.p99),
            opt_ms(b.max)
        );
    }
    if let Some(w) = overload_warning(r) {
        let _ = writeln!(o, "  WARNING: {w}");
    }
    if let Some(n) = dropped_note(r) {
        let _ = writeln!(o, "  NOTE: {n}");
    }
    if let Some(n) = left_parked_note(r) {
        let _ = writeln!(o, "  NOTE: {n}");
    }
    let _ = writeln!(
        o,
        "  report   {}  (report.html, summary.md, junit.xml, latency.hlog, charts/)",
        dir.join("report.json").display()
    );
    o
}
