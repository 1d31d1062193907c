//! Judging a finished run: every threshold against what was measured, and the final status.
//! One function, [`judge`], used at the end of a run and by `flashcrowd merge` on the whole of
//! its segments, so a merged run and a single run are judged alike.

use super::outcome::Status;
use super::recovery::ActionReport;
use super::result::{FinalStatus, Verdict};
use crate::gate::{Selector, Threshold};
use crate::metrics::{Catalog, Recorder};

/// What a run measured, as far as thresholds read it.
pub struct Evidence<'a> {
    pub catalog: &'a Catalog,
    pub total: &'a Recorder,
    /// The run's length (`rate` thresholds without a phase divide by it).
    pub duration_s: f64,
    /// Scheduled actions (`action:NAME recovery < 30s`).
    pub actions: &'a [ActionReport],
}

/// An action's recovery in milliseconds: the slowest of its firings; None when it never fired
/// or one firing never recovered (a gate on recovery must not pass on nothing).
fn recovery_ms(actions: &[ActionReport], name: &str) -> Option<f64> {
    let mine: Vec<&ActionReport> = actions.iter().filter(|a| a.name == name).collect();
    if mine.is_empty() || mine.iter().any(|a| a.recovery_s.is_none()) {
        return None;
    }
    mine.iter()
        .filter_map(|a| a.recovery_s)
        .map(|s| s * 1000.0)
        .reduce(f64::max)
}

/// Each threshold's verdict, and the status: an aborted or interrupted run stays so; a
/// completed one passed when every threshold held (a threshold that measured nothing fails), and
/// is `completed` when it had none (nothing was checked, so nothing passed).
pub fn judge(
    ev: &Evidence<'_>,
    thresholds: &[Threshold],
    ran: Status,
) -> (Vec<Verdict>, FinalStatus) {
    let duration = ev.duration_s.max(1e-9);
    let verdicts: Vec<Verdict> = thresholds
        .iter()
        .map(|t| {
            let observed = match &t.selector {
                Selector::Action(name) => recovery_ms(ev.actions, name),
                _ => ev.catalog.observe(ev.total, t, duration),
            };
            Verdict {
                threshold: t.clone(),
                observed,
                passed: observed.is_some_and(|v| t.op.holds(v, t.value)),
            }
        })
        .collect();
    let status = match ran {
        Status::Aborted => FinalStatus::Aborted,
        Status::Interrupted => FinalStatus::Interrupted,
        Status::Completed if verdicts.is_empty() => FinalStatus::Completed,
        Status::Completed if verdicts.iter().all(|v| v.passed) => FinalStatus::Passed,
        Status::Completed => FinalStatus::Failed,
    };
    (verdicts, status)
}
