//! report.html: one self-contained page for people — inline CSS, charts as inline SVG, no
//! script and no external resource of any kind, so it opens offline and makes no request.
//! Text (including names like `下单`) is HTML the browser renders with its own fonts.

use super::charts;
use super::model::Percentiles;
use super::summary::{dropped_note, fmt_ms, opt_ms, overload_warning, pct};
use super::{Exporter, RunReport};
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub struct Html;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    super::junit::xml(s)
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","WenQuanYi Micro Hei","PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:1080px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}
.meta{color:#5b6475;font-size:13px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-size:14px;font-weight:600;color:#fff;vertical-align:middle;margin-left:8px}
.passed{background:#2e7d32}.completed{background:#546e7a}.failed{background:#c62828}.aborted{background:#6a1b9a}.interrupted{background:#ef6c00}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin-top:16px}
.kpi{background:#fff;border-radius:8px;padding:10px 14px;min-width:120px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.kpi b{display:block;font-size:20px}.kpi span{color:#5b6475;font-size:12px}
.warn{background:#fff3e0;border-left:4px solid #ef6c00;padding:10px 14px;margin:14px 0;border-radius:4px}
.stop{background:#fdecea;border-left:4px solid #c62828;padding:10px 14px;margin:14px 0;border-radius:4px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{padding:6px 10px;border-bottom:1px solid #e6e8ec;text-align:right;white-space:nowrap}
th{background:#eef0f4;font-weight:600}
td:first-child,th:first-child,td.l,th.l{text-align:left}
.ok{color:#2e7d32;font-weight:700}.bad{color:#c62828;font-weight:700}
figure{background:#fff;margin:0 0 14px;padding:8px;border-radius:8px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
figure svg{width:100%;height:auto;display:block}
footer{color:#5b6475;font-size:12px;margin-top:30px}
code{font-family:ui-monospace,Menlo,Consolas,"Noto Sans Mono CJK SC","Noto Sans CJK SC","Microsoft YaHei",monospace;font-size:12px}
svg.glyphs{vertical-align:-4px}
"#;

fn kpi(o: &mut String, value: &str, label: &str) {
    let _ = write!(
        o,
        "<div class=\"kpi\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    );
}

fn pcells(p: &Percentiles) -> String {
    [p.p50, p.p90, p.p99, p.max]
        .iter()
        .map(|v| format!("<td>{}</td>", opt_ms(*v)))
        .collect()
}

fn frac_pct(f: f64) -> String {
    format!("{:.2}%", f * 100.0)
}

/// An RFC 3339 instant of report.json as people read it, to the second, in `zone` (the offset
/// the scenario writes its instants in, like `+08:00`) or else in its own offset:
/// `2026-11-11 00:00:26 +08:00` (`UTC` for offset zero); only the time of day when it falls on
/// the same day as `since`. Text that is not an instant is shown as it is.
fn when(at: &str, since: Option<&str>, zone: Option<&str>) -> String {
    let zone = zone.and_then(|z| z.parse::<chrono::FixedOffset>().ok());
    let local = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| zone.map_or(t, |z| t.with_timezone(&z)))
    };
    let Some(t) = local(at) else {
        return at.to_string();
    };
    let zone = if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        t.format("%:z").to_string()
    };
    let same_day = since
        .and_then(local)
        .is_some_and(|s| s.date_naive() == t.date_naive() && s.offset() == t.offset());
    match same_day {
        true => format!("{} {zone}", t.format("%H:%M:%S")),
        false => format!("{} {zone}", t.format("%Y-%m-%d %H:%M:%S")),
    }
}

/// `mobile-app 92% · pc-web 8%`: each client's share of the requests, largest first.
pub fn client_mix(clients: &indexmap::IndexMap<String, u64>) -> String {
    let total: u64 = clients.values().sum();
    if total == 0 {
        return String::new();
    }
    let mut v: Vec<(&String, &u64)> = clients.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .map(|(name, n)| format!("{name} {:.0}%", **n as f64 * 100.0 / total as f64))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub fn render(r: &RunReport) -> anyhow::Result<String> {
    let rep = &r.report;
    let t = &rep.totals;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — {} — flashcrowd</title><style>{CSS}</style></head><body><main>\n",
        esc(&rep.scenario.name),
        esc(&rep.run.status)
    );
    // A name in a script the system may have no font for is drawn from the embedded font.
    let title = if rep.scenario.name.is_ascii() {
        esc(&rep.scenario.name)
    } else {
        super::glyphs::inline_svg(&rep.scenario.name, 30.0, "#1d2330")
    };
    let _ = writeln!(
        o,
        "<h1>{}<span class=\"badge {}\">{}</span></h1>",
        title,
        esc(&rep.run.status),
        if rep.run.status == "completed" {
            "COMPLETED · NOTHING CHECKED".to_string()
        } else {
            esc(&rep.run.status.to_uppercase())
        }
    );
    let _ = writeln!(
        o,
        "<div class=\"meta\">{} → {} · {:.1}s of {:.1}s planned · target <code>{}</code> · segment {} · seed {} · {} thread(s) · scenario <code>{}</code> · flashcrowd {}</div>",
        esc(&when(&rep.run.started_at, None, rep.scenario.zone.as_deref())),
        esc(&when(
            &rep.run.ended_at,
            Some(&rep.run.started_at),
            rep.scenario.zone.as_deref()
        )),
        rep.run.duration_s,
        rep.run.planned_duration_s,
        esc(&rep.scenario.target),
        esc(&rep.run.segment),
        rep.run.seed,
        rep.run.threads,
        esc(&rep.scenario.file),
        esc(&rep.tool.version)
    );
    if let Some(reason) = &rep.run.reason {
        let _ = writeln!(
            o,
            "<div class=\"stop\"><b>The run stopped early ({}):</b> {}</div>",
            esc(&rep.run.status),
            esc(reason)
        );
    }
    if rep.run.status == "completed" {
        let _ = writeln!(
            o,
            "<div class=\"warn\"><b>No thresholds:</b> nothing was checked, so this run neither passed nor failed. Add <code>thresholds:</code> to the scenario or <code>--threshold</code> to the command.</div>"
        );
    }
    for w in crate::report::summary::error_warnings(rep) {
        let _ = writeln!(o, "<div class=\"stop\"><b>Errors:</b> {}</div>", esc(&w));
    }
    if let Some(d) = crate::report::summary::diagnosis(rep) {
        let _ = writeln!(o, "<div class=\"stop\"><b>Diagnosis:</b> {}</div>", esc(&d));
    }
    if let Some(w) = overload_warning(rep) {
        let _ = writeln!(
            o,
            "<div class=\"warn\"><b>The generator was the bottleneck:</b> {}</div>",
            esc(&w)
        );
    }
    if let Some(n) = dropped_note(rep) {
        let _ = writeln!(o, "<div class=\"warn\">{}</div>", esc(&n));
    }
    if let Some(n) = crate::report::summary::left_parked_note(rep) {
        let _ = writeln!(o, "<div class=\"warn\">{}</div>", esc(&n));
    }
    if r.hlog.truncated {
        let _ = writeln!(
            o,
            "<div class=\"warn\">latency.hlog ends in a partial line (the run was killed while writing it); the charts use every complete second before it.</div>"
        );
    }
    o.push_str("<div class=\"kpis\">");
    kpi(&mut o, &t.requests.to_string(), "requests");
    kpi(&mut o, &format!("{:.0}/s", t.rate), "mean rate");
    kpi(
        &mut o,
        &pct(t.errors, t.requests),
        &format!("errors ({})", t.errors),
    );
    kpi(&mut o, &opt_ms(rep.latency_ms.p50), "p50 latency");
    kpi(&mut o, &opt_ms(rep.latency_ms.p99), "p99 latency");
    kpi(&mut o, &opt_ms(rep.latency_ms.max), "max latency");
    kpi(&mut o, &t.sessions_started.to_string(), "sessions started");
    kpi(&mut o, &t.sessions_dropped.to_string(), "arrivals dropped");
    o.push_str("</div>\n");

    if !rep.thresholds.is_empty() {
        o.push_str("<h2>Thresholds</h2><table><tr><th></th><th class=\"l\">threshold</th><th>observed</th><th>limit</th><th class=\"l\">result</th></tr>\n");
        for v in &rep.thresholds {
            let _ = writeln!(
                o,
                "<tr><td class=\"{}\">{}</td><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td><td class=\"l {}\">{}</td></tr>",
                if v.passed { "ok" } else { "bad" },
                if v.passed { "✓" } else { "✗" },
                esc(&v.expr),
                esc(v.observed_text.as_deref().unwrap_or("nothing measured")),
                esc(&v.limit_shown()),
                if v.passed { "ok" } else { "bad" },
                if v.passed { "pass" } else { "FAIL" }
            );
        }
        o.push_str("</table>\n");
    }

    if !rep.actions.is_empty() {
        // Text columns (name, trigger, result, impact) align left.
        let class = |i: usize| match i {
            0 | 1 | 4 | 6 => " class=\"l\"",
            _ => "",
        };
        o.push_str("<h2>Actions</h2><table><tr>");
        for (i, c) in super::summary::ACTION_COLUMNS.iter().enumerate() {
            let _ = write!(o, "<th{}>{c}</th>", class(i));
        }
        o.push_str("</tr>\n");
        for a in &rep.actions {
            let bad = a.ok == Some(false) || (a.t.is_some() && a.recovery_s.is_none());
            o.push_str(if bad { "<tr class=\"bad\">" } else { "<tr>" });
            for (i, c) in super::summary::action_cells(a).iter().enumerate() {
                let _ = write!(o, "<td{}>{}</td>", class(i), esc(c));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
    }

    if !rep.timeline.is_empty() {
        o.push_str("<h2>Timeline</h2><table><tr><th>t</th><th class=\"l\">event</th><th class=\"l\">detail</th></tr>\n");
        for ev in &rep.timeline {
            let _ = writeln!(
                o,
                "<tr><td>{:.1}s</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                ev.t,
                esc(ev.kind.name()),
                esc(&ev.detail)
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("<h2>Charts</h2>\n");
    for (kind, title) in charts::charts_for(r) {
        let svg = charts::svg(kind, r)?;
        let _ = writeln!(
            o,
            "<figure id=\"chart-{kind}\" aria-label=\"{}\">{svg}</figure>",
            esc(title)
        );
    }

    if let Some(c) = &rep.capacity {
        let _ = writeln!(
            o,
            "<h2>Capacity (step drill)</h2><p>{}</p><table>",
            esc(&crate::capacity::summary_line(c))
        );
        for (i, row) in crate::capacity::step_rows(c).iter().enumerate() {
            let tag = if i == 0 { "th" } else { "td" };
            o.push_str("<tr>");
            for cell in row {
                let _ = write!(o, "<{tag}>{}</{tag}>", esc(cell));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
        for (kind, chart) in crate::capacity::charts(c) {
            let _ = writeln!(o, "<figure id=\"chart-{kind}\">{}</figure>", chart.svg()?);
        }
    }

    o.push_str("<h2>Requests</h2><table><tr><th class=\"l\">request</th><th class=\"l\">client</th><th>count</th><th>rate</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>service p99</th><th class=\"l\">status codes · error kinds</th></tr>\n");
    for q in &rep.requests {
        let codes: Vec<String> = q
            .status
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .chain(q.errors.iter().map(|(k, n)| format!("{k}: {n}")))
            .collect();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.1}/s</td><td>{}</td>{}<td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&q.name),
            esc(&q.client),
            q.count,
            q.rate,
            pct(q.error_count(), q.count),
            pcells(&q.latency_ms),
            opt_ms(q.service_time_ms.p99),
            esc(&codes.join(", "))
        );
    }
    o.push_str("</table>\n");
    if rep.requests.iter().any(|q| q.stream.is_some()) {
        o.push_str("<h2>Streams</h2><table><tr><th class=\"l\">stream</th><th class=\"l\">client</th><th>received</th><th>received/s</th><th>sent</th><th>first event p50</th><th>first event p99</th><th>gap p50</th><th>gap p99</th><th>duration p50</th><th class=\"l\">close codes</th></tr>\n");
        for q in &rep.requests {
            let Some(st) = &q.stream else { continue };
            let codes: Vec<String> = st
                .close_codes
                .iter()
                .map(|(c, n)| format!("{c}: {n}"))
                .collect();
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                esc(&q.name),
                esc(&q.client),
                st.received,
                st.received_per_s,
                st.sent,
                opt_ms(st.first_event_ms.p50),
                opt_ms(st.first_event_ms.p99),
                opt_ms(st.gap_ms.p50),
                opt_ms(st.gap_ms.p99),
                opt_ms(st.duration_ms.p50),
                esc(&codes.join(", "))
            );
        }
        o.push_str("</table><p class=\"meta\">A stream step's latency above is its open (the response head, the WebSocket handshake); here is what came after it.</p>\n");
    }

    o.push_str("<h2>Journeys</h2><table><tr><th class=\"l\">journey</th><th>sessions</th><th>completed</th><th>failed</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>\n");
    for j in &rep.journeys {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            esc(&j.name),
            j.sessions,
            j.completed,
            j.errors,
            pcells(&j.latency_ms)
        );
    }
    o.push_str("</table><p class=\"meta\">Journey latency: a whole session, from its arrival to its last response (completed sessions).</p>\n");
    let held: Vec<_> = rep
        .journeys
        .iter()
        .filter_map(|j| j.from_release_ms.as_ref().map(|p| (j, p)))
        .collect();
    if !held.is_empty() {
        o.push_str("<table><tr><th class=\"l\">journey, from its release</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>\n");
        for (j, p) in held {
            let _ = writeln!(o, "<tr><td>{}</td>{}</tr>", esc(&j.name), pcells(p));
        }
        o.push_str("</table><p class=\"meta\">For sessions a <code>wait</code> or rendezvous held: from the release to the last response — what a buyer waits once the sale opens.</p>\n");
    }

    o.push_str("<h2>Clients</h2><table><tr><th class=\"l\">client</th><th>sessions</th><th>requests</th><th>share of requests</th><th class=\"l\">network</th></tr>\n");
    for c in &rep.clients {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&c.name),
            c.sessions,
            c.requests,
            pct(c.requests, t.requests),
            esc(c.network.as_deref().unwrap_or("the machine's own"))
        );
    }
    o.push_str("</table>\n");

    o.push_str("<h2>Phases</h2><table><tr><th class=\"l\">phase</th><th>from</th><th>to</th><th>planned rate</th><th>requests</th><th>rate</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th class=\"l\">client mix (share of requests)</th></tr>\n");
    for p in &rep.phases {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{:.1}s</td><td>{:.1}s</td><td>{:.1}/s</td><td>{}</td><td>{:.1}/s</td><td>{}</td>{}<td class=\"l\">{}</td></tr>",
            esc(&p.name),
            p.start_s,
            p.end_s,
            p.planned_rate,
            p.requests,
            p.rate,
            frac_pct(p.error_rate),
            pcells(&p.latency_ms),
            esc(&client_mix(&p.clients))
        );
    }
    o.push_str("</table>\n");

    let g = &rep.generator;
    let _ = writeln!(
        o,
        "<h2>Generator health</h2><table><tr><th class=\"l\">send lag p50</th><th>send lag p99</th><th>send lag max</th><th>arrivals dropped</th><th>CPU</th><th class=\"l\">verdict</th></tr>\
         <tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}s</td><td class=\"l {}\">{}</td></tr></table>",
        opt_ms(g.lag_ms.p50),
        opt_ms(g.lag_ms.p99),
        opt_ms(g.lag_ms.max),
        g.dropped,
        g.cpu_s,
        if g.overloaded { "bad" } else { "ok" },
        if g.overloaded {
            format!(
                "overloaded: the generator, not the target, set the pace (lag p99 above {})",
                fmt_ms(crate::run::result::OVERLOAD_LAG_MS)
            )
        } else {
            "kept up with the plan".into()
        }
    );
    let _ = writeln!(
        o,
        "<footer>Latency counts from each request's intended start (no coordinated omission); percentiles come from merged HdrHistograms, never averaged. \
         Files beside this one: report.json, latency.hlog, summary.md, junit.xml, charts/*.png, scenario.yaml. \
         Re-render with <code>flashcrowd report DIR</code>.</footer>\n</main></body></html>"
    );
    Ok(o)
}

impl Exporter for Html {
    fn name(&self) -> &'static str {
        "report.html"
    }

    fn write(&self, r: &RunReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        Ok(vec![super::rundir::write_atomic(
            dir,
            "report.html",
            render(r)?.as_bytes(),
        )?])
    }
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn times_read_to_the_second_in_the_scenarios_zone() {
        let start = "2026-11-10T16:00:26.041Z";
        assert_eq!(when(start, None, None), "2026-11-10 16:00:26 UTC");
        assert_eq!(
            when(start, None, Some("+08:00")),
            "2026-11-11 00:00:26 +08:00"
        );
        let end = "2026-11-10T16:05:00.900Z";
        assert_eq!(when(end, Some(start), Some("+08:00")), "00:05:00 +08:00");
        // The end on another day in the zone keeps its date.
        assert_eq!(
            when(start, Some("2026-11-10T15:59:00Z"), Some("+08:00")),
            "2026-11-11 00:00:26 +08:00"
        );
        assert_eq!(when("not a time", None, None), "not a time");
    }
}
