//! summary.md: a compact Markdown table for a pull-request comment or a CI job summary —
//! status, totals, thresholds ✓/✗ with observed vs limit, a row per scheduled action (its
//! instants, result, recovery and impact), a row per request name × client.

use super::summary::{action_cells, opt_ms, overload_warning, pct, ACTION_COLUMNS};
use super::{Exporter, RunReport};
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub struct Markdown;

/// Escapes text for a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &RunReport) -> String {
    let r = &r.report;
    let t = &r.totals;
    let mut o = String::new();
    let badge = match r.run.status.as_str() {
        "passed" => "✅ passed",
        "completed" => "⚪ completed (no thresholds: nothing was checked)",
        "failed" => "❌ failed",
        "aborted" => "🛑 aborted",
        "incomplete" => "⚠️ incomplete (part of the run is missing)",
        _ => "⚠️ interrupted",
    };
    let _ = writeln!(o, "### flashcrowd: {} — {}", cell(&r.scenario.name), badge);
    let _ = writeln!(o);
    if let Some(reason) = &r.run.reason {
        let _ = writeln!(o, "> stopped: {}", cell(reason));
        let _ = writeln!(o);
    }
    for w in crate::report::summary::error_warnings(r) {
        let _ = writeln!(o, "> ⚠️ **{}**", cell(&w));
        let _ = writeln!(o);
    }
    if let Some(d) = crate::report::summary::diagnosis(r) {
        let _ = writeln!(o, "> **Diagnosis:** {}", cell(&d));
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "{:.1}s · segment {} · {} requests ({:.0}/s) · errors {} ({}) · p50 {} · p99 {} · max {}",
        r.run.duration_s,
        r.run.segment,
        t.requests,
        t.rate,
        t.errors,
        pct(t.errors, t.requests),
        opt_ms(r.latency_ms.p50),
        opt_ms(r.latency_ms.p99),
        opt_ms(r.latency_ms.max)
    );
    if t.retried > 0 {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{} request(s) retried once on a new connection (no answer on the first attempt)",
            t.retried
        );
    }
    let _ = writeln!(o);
    if !r.thresholds.is_empty() {
        let _ = writeln!(o, "| | threshold | observed | limit |");
        let _ = writeln!(o, "|---|---|---:|---:|");
        for v in &r.thresholds {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {} |",
                if v.passed { "✓" } else { "✗" },
                v.expr.replace('`', "'").replace('|', "\\|"),
                v.observed_text.as_deref().unwrap_or("nothing measured"),
                v.limit_shown()
            );
        }
        let _ = writeln!(o);
    }
    if !r.actions.is_empty() {
        let _ = writeln!(o, "| {} |", ACTION_COLUMNS.join(" | "));
        let _ = writeln!(o, "|---|---|---:|---:|---|---:|---|");
        for a in &r.actions {
            let c: Vec<String> = action_cells(a).iter().map(|c| cell(c)).collect();
            let _ = writeln!(o, "| {} |", c.join(" | "));
        }
        let _ = writeln!(o);
    }
    if !r.requests.is_empty() {
        let _ = writeln!(
            o,
            "| request | client | count | rate | errors | p50 | p99 | max |"
        );
        let _ = writeln!(o, "|---|---|---:|---:|---:|---:|---:|---:|");
        for q in &r.requests {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:.0}/s | {} | {} | {} | {} |",
                cell(&q.name),
                cell(&q.client),
                q.count,
                q.rate,
                pct(q.error_count(), q.count),
                opt_ms(q.latency_ms.p50),
                opt_ms(q.latency_ms.p99),
                opt_ms(q.latency_ms.max)
            );
        }
        let _ = writeln!(o);
    }
    // Phases with their client mix, when there is a mix to show.
    if r.clients.len() > 1 && !r.phases.is_empty() {
        let _ = writeln!(o, "| phase | requests | p99 | client mix |");
        let _ = writeln!(o, "|---|---:|---:|---|");
        for p in &r.phases {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                cell(&p.name),
                p.requests,
                opt_ms(p.latency_ms.p99),
                cell(&crate::report::html::client_mix(&p.clients))
            );
        }
        let _ = writeln!(o);
    }
    if !r.timeline.is_empty() {
        let _ = writeln!(o, "| t | event | detail |");
        let _ = writeln!(o, "|---:|---|---|");
        for e in r.timeline.iter().take(super::summary::TIMELINE_SHOWN) {
            let _ = writeln!(
                o,
                "| {:.1}s | {} | {} |",
                e.t,
                cell(e.kind.name()),
                cell(&e.detail)
            );
        }
        if r.timeline.len() > super::summary::TIMELINE_SHOWN {
            let _ = writeln!(
                o,
                "\n… and {} more in report.json `timeline`",
                r.timeline.len() - super::summary::TIMELINE_SHOWN
            );
        }
        let _ = writeln!(o);
    }
    for n in [
        crate::report::summary::dropped_note(r),
        crate::report::summary::left_parked_note(r),
    ]
    .into_iter()
    .flatten()
    {
        let _ = writeln!(o, "> **Note:** {}", cell(&n));
        let _ = writeln!(o);
    }
    if let Some(w) = overload_warning(r) {
        let _ = writeln!(o, "> **Warning:** {w}");
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "<sub>flashcrowd {} · latency from the intended start · full report: report.html</sub>",
        r.tool.version
    );
    o
}

impl Exporter for Markdown {
    fn name(&self) -> &'static str {
        "summary.md"
    }

    fn write(&self, r: &RunReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        Ok(vec![super::rundir::write_atomic(
            dir,
            "summary.md",
            render(r).as_bytes(),
        )?])
    }
}
