//! `flashcrowd import FILE`: a runnable scenario written from an access log or a HAR file.
//!
//! Clients are the input's User-Agents (the most common ones, the rest as `other`), their shares
//! the User-Agents' shares of the requests; journeys are the commonest session shapes (a HAR
//! page, or a log's client address + User-Agent until an idle gap), their steps the first such
//! session's requests with its gaps as think times; names are folded (`records::names`); the
//! observed rate of session starts per minute becomes `stages`. Every number has a comment saying
//! where it came from. Secrets in the input (Authorization, Cookie and similar headers; query
//! values named like token, sign or session) are written as `${env:…}` placeholders, never as
//! their values.

use super::{Failure, Outcome};
use crate::cli::ImportArgs;
use crate::records::{self, names, Format, Record};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::fmt::Write as _;

/// A new session starts after this much silence from the same client.
const SESSION_GAP_S: f64 = 30.0 * 60.0;
const MAX_CLIENTS: usize = 8;
const MAX_JOURNEYS: usize = 10;
const MAX_STEPS: usize = 20;

/// Is this header a secret?
fn secret_header(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "authorization" => Some("IMPORT_AUTHORIZATION"),
        "cookie" => Some("IMPORT_COOKIE"),
        "x-api-key" | "x-auth-token" | "proxy-authorization" => Some("IMPORT_API_KEY"),
        _ => None,
    }
}

/// Is this query parameter a secret (named like token, sign or session)?
fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["token", "sign", "session", "secret", "password", "key"]
        .iter()
        .any(|w| n.contains(w))
}

/// The target with secret query values replaced by `${env:IMPORT_<NAME>}`; the variables used.
fn scrub_target(target: &str, env: &mut Vec<String>) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if secret_param(k) => {
                let var = format!(
                    "IMPORT_{}",
                    k.chars()
                        .map(|c| if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        })
                        .collect::<String>()
                );
                if !env.contains(&var) {
                    env.push(var.clone());
                }
                format!("{k}=${{env:{var}}}")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// A client name from a User-Agent: its first product token, lower-cased (`shopapp-ios`).
fn client_slug(ua: &str) -> String {
    let first = ua.split([' ', '/', ';', '(']).next().unwrap_or("");
    let s: String = first
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// Whole percentages of `counts` that add up to exactly 100 (largest remainders).
fn percents(counts: &[u64]) -> Vec<u64> {
    let total: u64 = counts.iter().sum::<u64>().max(1);
    let mut out: Vec<u64> = counts.iter().map(|c| c * 100 / total).collect();
    let mut rest: Vec<(u64, usize)> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| (c * 100 % total, i))
        .collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let short = 100 - out.iter().sum::<u64>();
    for (_, i) in rest.iter().take(short as usize) {
        out[*i] += 1;
    }
    out
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn secs(s: f64) -> String {
    format!("{}ms", (s * 1000.0).round().max(1.0) as u64)
}

pub fn import(a: ImportArgs) -> Outcome {
    let bad = |m: String| Failure::BadInput(m);
    let path = &a.file;
    let format = match &a.format {
        Some(f) => Format::parse(f).map_err(|e| bad(format!("--format: {e}")))?,
        None => records::sniff(path).map_err(bad)?,
    };
    let mut recs: Vec<Record> = Vec::new();
    let mut malformed = Vec::new();
    for r in records::read(path, format).map_err(bad)? {
        match r {
            Ok(r) => recs.push(r),
            Err(m) => malformed.push(m),
        }
    }
    if recs.is_empty() {
        return Err(bad(format!("{}: no records to import", path.display())));
    }
    recs.sort_by(|a, b| {
        a.time
            .partial_cmp(&b.time)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let file = path.display().to_string();
    let n = recs.len() as u64;

    // Clients: the most common User-Agents.
    let mut by_ua: IndexMap<String, u64> = IndexMap::new();
    for r in &recs {
        *by_ua.entry(r.user_agent().to_string()).or_insert(0) += 1;
    }
    by_ua.sort_by(|_, a, _, b| b.cmp(a));
    let mut clients: Vec<(String, Option<String>, u64)> = Vec::new();
    let mut other = 0;
    for (i, (ua, c)) in by_ua.iter().enumerate() {
        if i < MAX_CLIENTS {
            let mut name = client_slug(ua);
            let base = name.clone();
            let mut k = 2;
            while clients.iter().any(|(n, _, _)| *n == name) {
                name = format!("{base}-{k}");
                k += 1;
            }
            clients.push((name, (!ua.is_empty()).then(|| ua.clone()), *c));
        } else {
            other += c;
        }
    }
    if other > 0 {
        clients.push(("other".into(), None, other));
    }
    let shares = percents(&clients.iter().map(|c| c.2).collect::<Vec<_>>());

    // Sessions: HAR pages, or client address + User-Agent until an idle gap.
    let mut sessions: Vec<Vec<usize>> = Vec::new();
    let mut open: HashMap<String, (usize, f64)> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        let key = match (&r.page, &r.client) {
            (Some(p), _) => format!("page {p}"),
            (None, Some(c)) => format!("{c} {}", r.user_agent()),
            (None, None) => format!("ua {}", r.user_agent()),
        };
        match open.get_mut(&key) {
            Some((s, last)) if r.time - *last <= SESSION_GAP_S => {
                sessions[*s].push(i);
                *last = r.time;
            }
            _ => {
                sessions.push(vec![i]);
                open.insert(key, (sessions.len() - 1, r.time));
            }
        }
    }
    let namer = names::Names::default();
    let mut shapes: IndexMap<Vec<String>, (u64, usize)> = IndexMap::new();
    for (si, s) in sessions.iter().enumerate() {
        let sig: Vec<String> = s
            .iter()
            .take(MAX_STEPS)
            .map(|i| namer.name(&recs[*i].method, recs[*i].path()))
            .collect();
        shapes.entry(sig).or_insert((0, si)).0 += 1;
    }
    shapes.sort_by(|_, a, _, b| b.0.cmp(&a.0));
    let kept: Vec<(&Vec<String>, &(u64, usize))> = shapes.iter().take(MAX_JOURNEYS).collect();
    let jshares = percents(&kept.iter().map(|(_, c)| c.0).collect::<Vec<_>>());

    // The observed rate: sessions starting per minute of the log.
    let t0 = recs[0].time;
    let mut per_minute: Vec<u64> = Vec::new();
    for s in &sessions {
        let m = ((recs[s[0]].time - t0) / 60.0).floor() as usize;
        if per_minute.len() <= m {
            per_minute.resize(m + 1, 0);
        }
        per_minute[m] += 1;
    }

    let target = a
        .target
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let mut env: Vec<String> = Vec::new();
    let mut y = String::new();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "imported".into());
    let _ = writeln!(
        y,
        "# Written by `flashcrowd import {file}` ({} format).",
        format.as_str()
    );
    let _ = writeln!(
        y,
        "# {n} requests, {} sessions, {} malformed {} skipped.",
        sessions.len(),
        malformed.len(),
        if malformed.len() == 1 {
            "line"
        } else {
            "lines"
        }
    );
    let _ = writeln!(y, "name: {}", yaml_str(&format!("imported-{stem}")));
    let _ = writeln!(y, "target: {}   # --target overrides", yaml_str(&target));
    let _ = writeln!(y, "defaults:\n  headers: {{ X-Load-Test: flashcrowd }}");
    let _ = writeln!(y, "clients:");
    for ((name, ua, c), share) in clients.iter().zip(&shares) {
        let _ = writeln!(
            y,
            "  {name}:\n    share: {share}%   # {c} of {n} requests carried this User-Agent"
        );
        if let Some(ua) = ua {
            let _ = writeln!(y, "    headers: {{ User-Agent: {} }}", yaml_str(ua));
        }
    }
    let _ = writeln!(y, "journeys:");
    for (j, ((sig, (count, first)), share)) in kept.iter().zip(&jshares).enumerate() {
        let _ = writeln!(
            y,
            "  session-{}:   # {} of {} sessions had these {} requests\n    share: {share}%\n    steps:",
            j + 1,
            count,
            sessions.len(),
            sig.len()
        );
        let s = &sessions[*first];
        for (k, i) in s.iter().take(MAX_STEPS).enumerate() {
            let r = &recs[*i];
            if k > 0 {
                let gap = r.time - recs[s[k - 1]].time;
                if gap >= 0.001 {
                    let _ = writeln!(
                        y,
                        "      - think: {}   # the recorded gap before this request",
                        secs(gap)
                    );
                }
            }
            let method = r.method.to_ascii_lowercase();
            let method =
                if ["get", "post", "put", "patch", "delete", "head"].contains(&method.as_str()) {
                    method
                } else {
                    "get".into()
                };
            let t = scrub_target(r.target.as_str(), &mut env);
            let _ = writeln!(y, "      - {method}: {}", yaml_str(&t));
            let _ = writeln!(y, "        name: {}", yaml_str(&sig[k]));
            let mut hdrs: Vec<(String, String)> = Vec::new();
            for (hk, hv) in &r.headers {
                if let Some(var) = secret_header(hk) {
                    if !env.contains(&var.to_string()) {
                        env.push(var.to_string());
                    }
                    hdrs.push((hk.clone(), format!("${{env:{var}}}")));
                } else if hk.eq_ignore_ascii_case("content-type") {
                    hdrs.push((hk.clone(), hv.clone()));
                }
            }
            if !hdrs.is_empty() {
                let list: Vec<String> = hdrs
                    .iter()
                    .map(|(k, v)| format!("{}: {}", yaml_str(k), yaml_str(v)))
                    .collect();
                let _ = writeln!(y, "        headers: {{ {} }}", list.join(", "));
            }
            if !r.body.is_empty() {
                let _ = writeln!(
                    y,
                    "        body: {}",
                    yaml_str(&String::from_utf8_lossy(&r.body))
                );
            }
            let _ = writeln!(y, "        expect: {{ status: [200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 409, 429] }}");
        }
    }
    let _ = writeln!(
        y,
        "load:\n  stages:   # sessions starting per minute of the log"
    );
    for (m, c) in per_minute.iter().enumerate() {
        let _ = writeln!(
            y,
            "    - {{ rate: {c}/min, for: 1m }}   # minute {} of the log: {c} sessions began",
            m + 1
        );
    }
    if !env.is_empty() {
        let mut head = String::from(
            "# Secrets in the input are not written here; set these before running:\n",
        );
        for v in &env {
            let _ = writeln!(head, "#   export {v}=…");
        }
        y = head + &y;
    }
    match &a.output {
        Some(o) => {
            std::fs::write(o, &y).map_err(|e| bad(format!("cannot write {}: {e}", o.display())))?;
            eprintln!(
                "wrote {} ({} clients, {} journeys, {} minutes of stages)",
                o.display(),
                clients.len(),
                kept.len(),
                per_minute.len()
            );
        }
        None => print!("{y}"),
    }
    if !malformed.is_empty() {
        let shown: Vec<String> = malformed
            .iter()
            .take(5)
            .map(|m| format!("line {} ({})", m.line, m.reason))
            .collect();
        eprintln!(
            "skipped {} malformed {}: {}",
            malformed.len(),
            if malformed.len() == 1 {
                "line"
            } else {
                "lines"
            },
            shown.join(", ")
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_add_up_to_a_hundred_by_largest_remainder() {
        assert_eq!(percents(&[1, 1, 1]), [34, 33, 33]);
        assert_eq!(percents(&[700, 200, 100]), [70, 20, 10]);
        assert_eq!(percents(&[5]), [100]);
    }

    #[test]
    fn secret_query_values_become_placeholders() {
        let mut env = Vec::new();
        assert_eq!(
            scrub_target("/api/pay?sku=1&token=abc123&sign=zz", &mut env),
            "/api/pay?sku=1&token=${env:IMPORT_TOKEN}&sign=${env:IMPORT_SIGN}"
        );
        assert_eq!(env, ["IMPORT_TOKEN", "IMPORT_SIGN"]);
        assert_eq!(client_slug("ShopApp-iOS/10.4 (iPhone)"), "shopapp-ios");
    }
}
