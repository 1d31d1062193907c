//! The load-source seam: what every block under `load:` (`stages`, `users`, `countdown`,
//! `steps`, …) provides, and the one table that lists them.
//!
//! A load source is one file under `src/plan/`: its YAML block (a serde type), the rules beyond
//! types (checked by `scenario::validate` through `LoadSource::check`, each problem at its key
//! path), its phase names (known before compiling, for thresholds and `during`), the instants a
//! `wait:` step may name, and its compilation into a `Shaped` curve. Adding a source is a new
//! file, a field in `scenario::model::Load`, and a line in `KEYS` and `given`; nothing in the
//! engine changes. A source may give its arrivals a `Payload` (a fixed request) instead of
//! letting the session pick a client and journey by share.

use super::{Arrival, PlanOptions, Segment, Shaped};
use crate::scenario::model::{Load, Scenario};
use crate::scenario::spans::KeyPath;
use crate::scenario::Issue;
use std::path::Path;

/// One block under `load:` that decides when sessions arrive (or how many users there are).
pub trait LoadSource {
    /// Its key under `load:`.
    fn key(&self) -> &'static str;

    /// The rules beyond types, each problem pushed at its key path under `at` (`load.KEY`).
    fn check(&self, at: &KeyPath, issues: &mut Vec<Issue>);

    /// The rules that need the rest of the scenario (its declared clients, files beside it).
    fn check_in(&self, _at: &KeyPath, _s: &Scenario, _base_dir: &Path, _issues: &mut Vec<Issue>) {}

    /// Does every arrival carry its own request (a replay)? Then the scenario has no journeys.
    fn brings_requests(&self) -> bool {
        false
    }

    /// The phase names, in time order, known without compiling (a broken block gives what it
    /// can; its problems are `check`'s to report).
    fn phase_names(&self) -> Vec<String>;

    /// Names that stand for several phases in `during` and thresholds (a calendar's moments,
    /// each meaning all its phases).
    fn phase_groups(&self) -> Vec<String> {
        Vec::new()
    }

    /// The instants a `wait:` step may name (`sale-start` for a countdown).
    fn instants(&self) -> Vec<String> {
        Vec::new()
    }

    /// The curve, phases and extras of this source, with `--scale` and `--time-scale` applied.
    fn compile(&self, opts: &PlanOptions) -> Result<Shaped, String>;
}

/// Arrivals a source places itself, with what each one sends (a replay reads them from its
/// file). Called once per shard; the iterator must be in time order and O(1) in memory.
pub trait Feed: Send + Sync + std::fmt::Debug {
    /// The arrivals of `segment`; `placed` are those the plan's curve would place there.
    fn arrivals(
        &self,
        segment: Segment,
        placed: Box<dyn Iterator<Item = Arrival> + Send>,
    ) -> Box<dyn Iterator<Item = Arrival> + Send>;
}

/// A request a load source fixed for one arrival: sent once, as it is, by a session of
/// `client`, recorded under `Plan::fixed_names[name]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedRequest {
    pub method: String,
    /// Path and query (the target's base path goes in front).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub name: u32,
    /// Index into `PlanOptions::clients`; None: picked by share, like any session's.
    pub client: Option<u32>,
}

/// The keys of every load source, in the order messages list them.
pub const KEYS: &[&str] = &[
    "stages",
    "users",
    "countdown",
    "steps",
    "calendar",
    "replay",
];

/// The load sources given in `load`, in the order of `KEYS`. Exactly one is valid.
pub fn given(load: &Load) -> Vec<&dyn LoadSource> {
    let mut out: Vec<&dyn LoadSource> = Vec::new();
    if let Some(s) = &load.stages {
        out.push(s);
    }
    if let Some(s) = &load.users {
        out.push(s);
    }
    if let Some(s) = &load.countdown {
        out.push(s);
    }
    if let Some(s) = &load.steps {
        out.push(s);
    }
    if let Some(s) = &load.calendar {
        out.push(s);
    }
    if let Some(s) = &load.replay {
        out.push(s);
    }
    out
}

/// "stages, users, countdown or steps": the keys as a sentence lists them.
pub fn keys_sentence() -> String {
    sentence(KEYS.iter().map(|k| k.to_string()).collect())
}

/// "`stages`, `users`, `countdown`, … or `replay`".
pub fn keys_quoted() -> String {
    sentence(KEYS.iter().map(|k| format!("`{k}`")).collect())
}

fn sentence(words: Vec<String>) -> String {
    match words.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The phase names of the load's source (the first given, if several), or none.
pub fn phase_names(load: &Load) -> Vec<String> {
    given(load)
        .first()
        .map(|s| s.phase_names())
        .unwrap_or_default()
}

/// The names that stand for several phases under this load (a calendar's moments).
pub fn phase_groups(load: &Load) -> Vec<String> {
    given(load)
        .first()
        .map(|s| s.phase_groups())
        .unwrap_or_default()
}

/// The instants a `wait:` step may name under this load.
pub fn instants(load: &Load) -> Vec<String> {
    given(load).iter().flat_map(|s| s.instants()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_a_sentence() {
        assert_eq!(
            keys_sentence(),
            "stages, users, countdown, steps, calendar or replay"
        );
        assert_eq!(
            keys_quoted(),
            "`stages`, `users`, `countdown`, `steps`, `calendar` or `replay`"
        );
    }

    #[test]
    fn every_key_has_a_source() {
        // A scenario with every block set lists each key once, in KEYS order.
        let text = "stages: [ { rate: 1/s, for: 1s } ]\nusers: [ { users: 1, for: 1s } ]\ncountdown: { sale_start: 1s, before: 1/s, peak: 2/s, rise: 1s, hold: 1s, decay: 1s, after: 1/s, end: 5s }\nsteps: { start: 1/s, step: 1/s, every: 1s, max: 2/s }\ncalendar: { until: 9s, base: 1/s, moments: { m: { at: 1s, peak: 2/s, rise: 1s, hold: 1s, decay: 1s } } }\nreplay: { from: x.log }\n";
        let load: Load = serde_yaml::from_str(text).unwrap();
        let keys: Vec<&str> = given(&load).iter().map(|s| s.key()).collect();
        assert_eq!(keys, KEYS);
    }
}
