//! Recovery after an action (`recovery:` in the scenario): the SLO is judged per second on that
//! second's histograms as the run goes ([`Tracker`]); at the end, per fired action, `recovery_s`
//! is the time from the action to the start of the first window of `stable` seconds in which
//! the SLO held every second, and `impact` sums what the target suffered from the action's
//! second until recovery was confirmed (the end of that window), or until the run ended.
//!
//! The resolution is one second: windows start on whole seconds of the run.

use crate::gate::Threshold;
use serde::{Deserialize, Serialize};

/// `recovery:` compiled.
#[derive(Debug, Clone)]
pub struct RecoverySpec {
    pub slo: Vec<Threshold>,
    pub stable_s: f64,
}

impl RecoverySpec {
    /// `recovery:` compiled: its SLO rules as written (each an error naming it, `recovery.slo
    /// `…`: …`) and `stable` in seconds (time-scaled, at least 1 s). The run compiles it from the
    /// scenario, a journal's rebuild from what the journal kept.
    pub fn compile(slo: &[String], stable_s: f64) -> Result<RecoverySpec, String> {
        let slo = slo
            .iter()
            .map(|e| {
                crate::gate::parse_stop_when(e)
                    .map_err(|err| format!("recovery.slo `{e}`: {}", err.message))
            })
            .collect::<Result<_, _>>()?;
        Ok(RecoverySpec {
            slo,
            stable_s: stable_s.max(1.0),
        })
    }
}

/// The default `stable`.
pub const DEFAULT_STABLE_S: f64 = 10.0;

/// One second as recovery sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondVerdict {
    pub t: u64,
    /// Every SLO rule held (a rule with nothing to measure, as in a second without requests,
    /// does not hold).
    pub held: bool,
    pub requests: u64,
    pub errors: u64,
    pub p99_ms: f64,
}

/// Judges each completed second against the SLO.
#[derive(Debug, Default)]
pub struct Tracker {
    spec: Option<RecoverySpec>,
    pub seconds: Vec<SecondVerdict>,
}

impl Tracker {
    pub fn new(spec: Option<RecoverySpec>) -> Tracker {
        Tracker {
            spec,
            seconds: Vec::new(),
        }
    }

    pub fn spec(&self) -> Option<&RecoverySpec> {
        self.spec.as_ref()
    }

    /// One completed second; `observe` gives a rule's value in it.
    pub fn second(
        &mut self,
        p: &crate::metrics::Point,
        observe: impl Fn(&Threshold) -> Option<f64>,
    ) {
        let Some(spec) = &self.spec else {
            return;
        };
        let held = spec
            .slo
            .iter()
            .all(|t| observe(t).is_some_and(|v| t.op.holds(v, t.value)));
        self.seconds.push(SecondVerdict {
            t: p.t,
            held,
            requests: p.requests,
            errors: p.errors,
            p99_ms: p.p99_ms,
        });
    }
}

/// What the target suffered after an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// The seconds summed: `[from_s, to_s)` of the run.
    pub from_s: f64,
    pub to_s: f64,
    pub requests: u64,
    /// Failed requests (every error kind).
    pub failed: u64,
    pub error_rate: f64,
    /// The worst one-second p99 in the span.
    pub worst_p99_ms: f64,
}

/// One fired action in report.json `actions[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionReport {
    pub name: String,
    /// `http`, `run`, `steer`.
    pub action: String,
    /// `at sale+30s`, `when p99 > 500ms for 10s`.
    pub trigger: String,
    /// The planned instant (`at`), or the end of the second in which the rule held (`when`).
    pub planned_t: Option<f64>,
    /// When it began; null when it never fired.
    pub t: Option<f64>,
    pub did: String,
    /// `status 200`, `exit 0`, `timed out after 10s`; null when it never fired.
    pub result: Option<String>,
    pub ok: Option<bool>,
    pub duration_s: Option<f64>,
    /// Seconds from the action to the start of the first stable window; null when it never
    /// recovered before the run ended (or the scenario has no `recovery:`).
    pub recovery_s: Option<f64>,
    pub impact: Option<Impact>,
}

/// One report per firing (in the order they began), then one per declared action that never
/// fired (`t`, `result` and `recovery_s` null).
pub fn reports(
    declared: &[super::actions::ActionSummary],
    fired: &[(usize, f64, super::timeline::ActionEvent)],
    tracker: &Tracker,
) -> Vec<ActionReport> {
    let mut fired: Vec<&(usize, f64, super::timeline::ActionEvent)> = fired.iter().collect();
    fired.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut out: Vec<ActionReport> = fired
        .iter()
        .map(|(_, t, ev)| {
            let (recovery_s, impact) = match tracker.spec() {
                Some(spec) => judge(*t, &tracker.seconds, spec.stable_s),
                None => (None, None),
            };
            ActionReport {
                name: ev.name.clone(),
                action: ev.action.clone(),
                trigger: ev.trigger.clone(),
                planned_t: Some(ev.planned_t),
                t: Some(*t),
                did: ev.did.clone(),
                result: Some(ev.result.clone()),
                ok: Some(ev.ok),
                duration_s: Some(ev.duration_s),
                recovery_s,
                impact,
            }
        })
        .collect();
    for (i, d) in declared.iter().enumerate() {
        if !fired.iter().any(|f| f.0 == i) {
            out.push(ActionReport {
                name: d.name.clone(),
                action: d.action.clone(),
                trigger: d.trigger.clone(),
                planned_t: d.planned_t,
                t: None,
                did: d.did.clone(),
                result: None,
                ok: None,
                duration_s: None,
                recovery_s: None,
                impact: None,
            });
        }
    }
    out
}

/// Recovery and impact of an action that began at `t` (seconds from the start).
pub fn judge(t: f64, seconds: &[SecondVerdict], stable_s: f64) -> (Option<f64>, Option<Impact>) {
    if seconds.is_empty() {
        return (None, None);
    }
    let first = t.max(0.0).floor() as u64;
    let n = (stable_s.ceil() as usize).max(1);
    let from = seconds.partition_point(|s| s.t < first);
    let window = (from..seconds.len()).find(|&i| {
        i + n <= seconds.len()
            && seconds[i..i + n]
                .iter()
                .enumerate()
                .all(|(k, s)| s.held && s.t == seconds[i].t + k as u64)
    });
    let end = match window {
        Some(i) => i + n,
        None => seconds.len(),
    };
    let span = &seconds[from..end];
    let impact = (!span.is_empty()).then(|| {
        let requests: u64 = span.iter().map(|s| s.requests).sum();
        let failed: u64 = span.iter().map(|s| s.errors).sum();
        Impact {
            from_s: span[0].t as f64,
            to_s: span[span.len() - 1].t as f64 + 1.0,
            requests,
            failed,
            error_rate: if requests > 0 {
                failed as f64 / requests as f64
            } else {
                0.0
            },
            worst_p99_ms: span.iter().map(|s| s.p99_ms).fold(0.0, f64::max),
        }
    });
    let recovery = window.map(|i| ((seconds[i].t as f64 - t).max(0.0) * 1000.0).round() / 1000.0);
    (recovery, impact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(held: &[bool]) -> Vec<SecondVerdict> {
        held.iter()
            .enumerate()
            .map(|(i, h)| SecondVerdict {
                t: i as u64,
                held: *h,
                requests: 100,
                errors: if *h { 0 } else { 60 },
                p99_ms: if *h { 5.0 } else { 900.0 },
            })
            .collect()
    }

    #[test]
    fn recovery_starts_at_the_first_stable_window_after_the_action() {
        // Action at 2.01 s; seconds 2, 3, 4 fail, 5 holds, 6 breaks, 7 to 9 hold.
        let s = secs(&[
            true, true, false, false, false, true, false, true, true, true,
        ]);
        let (rec, imp) = judge(2.01, &s, 3.0);
        assert_eq!(rec, Some(4.99));
        let imp = imp.unwrap();
        assert_eq!((imp.from_s, imp.to_s), (2.0, 10.0));
        assert_eq!(imp.failed, 4 * 60);
        assert_eq!(imp.requests, 800);
        assert_eq!(imp.worst_p99_ms, 900.0);
        // With a 1 s window the lone good second counts.
        assert_eq!(judge(2.01, &s, 1.0).0, Some(2.99));
        // Never stable for 5 s before the end: no recovery, impact until the end.
        let (rec, imp) = judge(2.01, &s, 5.0);
        assert_eq!(rec, None);
        assert_eq!(imp.unwrap().to_s, 10.0);
        // An action the target shrugged off recovers at once.
        assert_eq!(judge(0.5, &s, 2.0).0, Some(0.0));
    }
}
