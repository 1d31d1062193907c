//! The end-of-run terminal summary: compact like k6's — totals, a row per request name ×
//! client, thresholds with ✓/✗, a plain warning when the generator was the bottleneck, and
//! where the files are.

use super::result::RunResult;
use crate::metrics::recorder::RequestStats;
use hdrhistogram::Histogram;
use std::fmt::Write;

fn ms(h: &Histogram<u64>, q: f64) -> String {
    if h.is_empty() {
        return "-".into();
    }
    fmt_ms(h.value_at_quantile(q) as f64 / 1000.0)
}

pub fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}ms")
    } else {
        format!("{v:.2}ms")
    }
}

fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "0%".into()
    } else {
        format!("{:.2}%", 100.0 * a as f64 / b as f64)
    }
}

pub fn render(r: &RunResult, dir: &std::path::Path) -> String {
    let mut o = String::new();
    let rec = &r.total;
    let all = rec.total_where(|_, _, _| true);
    let dur = r.duration_s.max(1e-9);
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "  {}  {}  {:.1}s  segment {}  {} thread(s)",
        r.scenario.name,
        r.status.name().to_uppercase(),
        r.duration_s,
        r.segment,
        r.threads
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(o, "  stopped: {reason}");
    }
    let _ = writeln!(
        o,
        "  requests {} ({:.0}/s)   errors {} ({})   sessions {} started, {} dropped, {} interrupted",
        all.count,
        all.count as f64 / dur,
        all.error_count(),
        pct(all.error_count(), all.count),
        rec.sessions_started,
        rec.sessions_dropped,
        rec.sessions_interrupted
    );
    let _ = writeln!(
        o,
        "  latency  p50 {}  p90 {}  p99 {}  max {}   (service time p99 {}, from the intended start)",
        ms(&all.latency, 0.5),
        ms(&all.latency, 0.9),
        ms(&all.latency, 0.99),
        if all.latency.is_empty() { "-".into() } else { fmt_ms(all.latency.max() as f64 / 1000.0) },
        ms(&all.service, 0.99),
    );
    // Rows per request name × client.
    let mut rows: Vec<(String, String, RequestStats)> = Vec::new();
    for (e, c, _p, s) in rec.iter() {
        let name = &r.catalog.endpoints[e].name;
        let client = &r.catalog.clients[c];
        match rows.iter_mut().find(|(n, cc, _)| n == name && cc == client) {
            Some(row) => row.2.merge(s),
            None => {
                let mut t = RequestStats::default();
                t.merge(s);
                rows.push((name.clone(), client.clone(), t));
            }
        }
    }
    if !rows.is_empty() {
        let w = rows
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(7)
            .max(7);
        let wc = rows
            .iter()
            .map(|r| r.1.chars().count())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "  {:<w$}  {:<wc$}  {:>9}  {:>8}  {:>7}  {:>8}  {:>8}  {:>8}",
            "request", "client", "count", "rate", "errors", "p50", "p99", "max"
        );
        for (name, client, s) in &rows {
            let _ = writeln!(
                o,
                "  {:<w$}  {:<wc$}  {:>9}  {:>7.0}/s  {:>7}  {:>8}  {:>8}  {:>8}",
                name,
                client,
                s.count,
                s.count as f64 / dur,
                pct(s.error_count(), s.count),
                ms(&s.latency, 0.5),
                ms(&s.latency, 0.99),
                if s.latency.is_empty() {
                    "-".into()
                } else {
                    fmt_ms(s.latency.max() as f64 / 1000.0)
                },
            );
        }
        let kinds: Vec<String> = crate::metrics::ErrorKind::ALL
            .iter()
            .filter(|k| all.errors[**k as usize] > 0)
            .map(|k| format!("{} {}", k.name(), all.errors[*k as usize]))
            .collect();
        if !kinds.is_empty() {
            let _ = writeln!(o, "  errors by kind: {}", kinds.join(", "));
        }
    }
    if !r.verdicts.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "  thresholds");
        for v in &r.verdicts {
            let observed = match v.observed {
                Some(x) => v.threshold.metric.format_value(x),
                None => "nothing measured".into(),
            };
            let _ = writeln!(
                o,
                "  {} {}   observed {observed}, limit {}",
                if v.passed { "✓" } else { "✗" },
                v.threshold.source,
                v.threshold.metric.format_value(v.threshold.value)
            );
        }
    }
    let _ = writeln!(o);
    let lag = &rec.lag;
    let _ = writeln!(
        o,
        "  generator  lag p99 {}  max {}  cpu {:.1}s",
        ms(lag, 0.99),
        if lag.is_empty() {
            "-".into()
        } else {
            fmt_ms(lag.max() as f64 / 1000.0)
        },
        r.cpu_s
    );
    if r.overloaded() {
        let _ = writeln!(
            o,
            "  WARNING: the generator could not keep up with the plan (send lag p99 {} > {}ms).\n           Latencies still count from the intended start, but the target saw less load than planned.\n           Use more --threads, more machines (--segment), or a smaller --scale.",
            ms(lag, 0.99),
            super::result::OVERLOAD_LAG_MS
        );
    }
    if rec.sessions_dropped > 0 {
        let _ = writeln!(
            o,
            "  NOTE: {} arrivals were dropped at the max_users cap: the target was too slow to keep up with the plan.",
            rec.sessions_dropped
        );
    }
    let _ = writeln!(o, "  report   {}", dir.join("report.json").display());
    o
}
