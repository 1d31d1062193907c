//! What the plan sends to each `wait` and `rendezvous`, checked before any load: a wait whose
//! parked sessions fill `max_users` makes the cap drop arrivals while the target sits idle, and a
//! rendezvous that can never gather its `users` only ever releases on its timeout. `plan` and
//! `validate` print these warnings; the run prints them before it starts.
//!
//! Pure arithmetic on the scenario and the compiled plan: which journeys a session arriving in a
//! phase takes (the clients' shares there, journeys renormalized among those a client may take),
//! times the plan's expected arrivals.

use super::{Model, Plan};
use crate::scenario::model::{Journey, Scenario};
use crate::scenario::validate::{during_entry, journey_during};

/// The share of the sessions arriving in `phase` that take each journey, in declaration order:
/// clients by their share in that phase (their `during` entry, else their base share,
/// renormalized), each client's journeys by share among those it may take there.
pub fn journey_shares<'a>(s: &'a Scenario, phase: &str) -> Vec<(&'a str, &'a Journey, f64)> {
    let clients: Vec<(&str, f64)> = if s.clients.is_empty() {
        vec![("default", 1.0)]
    } else {
        s.clients
            .iter()
            .map(|(name, c)| {
                (
                    name.as_str(),
                    during_entry(&c.during, phase).unwrap_or(&c.share).0,
                )
            })
            .collect()
    };
    let mut out: Vec<(&str, &Journey, f64)> = s
        .journeys
        .iter()
        .map(|(n, j)| (n.as_str(), j, 0.0))
        .collect();
    let client_total: f64 = clients.iter().map(|c| c.1).sum();
    if client_total <= 0.0 {
        return out;
    }
    for (client, share) in &clients {
        let allowed = |j: &Journey| {
            (match &j.clients {
                None => true,
                Some(list) => s.clients.is_empty() || list.iter().any(|c| c == client),
            }) && journey_during(j.during.as_deref(), phase)
        };
        let weight: f64 = out
            .iter()
            .filter(|(_, j, _)| allowed(j))
            .map(|(_, j, _)| j.share.0)
            .sum();
        if weight <= 0.0 {
            continue;
        }
        for (_, j, w) in out.iter_mut() {
            if allowed(j) {
                *w += share / client_total * j.share.0 / weight;
            }
        }
    }
    out
}

/// Planned sessions arriving in `[0, until)` that take a journey with a step for which `has`
/// holds.
fn sessions_to(s: &Scenario, plan: &Plan, until: f64, has: &dyn Fn(&Journey) -> bool) -> f64 {
    plan.phases
        .iter()
        .filter(|p| p.start < until)
        .map(|p| {
            let share: f64 = journey_shares(s, &p.name)
                .iter()
                .filter(|(_, j, _)| has(j))
                .map(|(_, _, w)| w)
                .sum();
            plan.expected_arrivals(p.start, p.end.min(until)) * share
        })
        .sum()
}

/// A whole number with thousands separators: `1,861,374`.
pub fn grouped(v: f64) -> String {
    let digits = format!("{}", v.round().max(0.0) as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The scenario's waits and rendezvous as written, each once: `wait: sale-start`,
/// `rendezvous: midnight`.
pub fn names(s: &Scenario) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for st in s.journeys.values().flat_map(|j| &j.steps) {
        let name = match (&st.wait, &st.rendezvous) {
            (Some(w), _) => format!("wait: {w}"),
            (None, Some(r)) => format!("rendezvous: {}", r.name),
            _ => continue,
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// One warning, with the step it is about: `journeys.JOURNEY.steps[STEP]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitWarning {
    pub journey: String,
    pub step: usize,
    pub message: String,
}

/// The warnings for the scenario's waits and rendezvous under `plan` (after `--scale`).
pub fn warnings(s: &Scenario, plan: &Plan) -> Vec<WaitWarning> {
    let mut out = Vec::new();
    if s.load.replay.is_some() {
        // A replay's arrivals send their own requests: no journey, no wait.
        return out;
    }
    let mut seen: Vec<String> = Vec::new();
    for (jname, j) in &s.journeys {
        for (i, st) in j.steps.iter().enumerate() {
            let at = |message| WaitWarning {
                journey: jname.clone(),
                step: i,
                message,
            };
            if let Some(w) = &st.wait {
                if seen.contains(&format!("wait:{w}")) {
                    continue;
                }
                seen.push(format!("wait:{w}"));
                if let Some(m) = wait_warning(s, plan, w) {
                    out.push(at(m));
                }
            } else if let Some(r) = &st.rendezvous {
                if seen.contains(&format!("rendezvous:{}", r.name)) {
                    continue;
                }
                seen.push(format!("rendezvous:{}", r.name));
                if let Some(m) = rendezvous_warning(s, plan, r) {
                    out.push(at(m));
                }
            }
        }
    }
    out
}

fn wait_warning(s: &Scenario, plan: &Plan, w: &str) -> Option<String> {
    let cap = plan.max_users?;
    if plan.model != Model::Open {
        return None;
    }
    let release = plan.wait_instant(w)?;
    let to_wait = |j: &Journey| j.steps.iter().any(|st| st.wait.as_deref() == Some(w));
    let parked = sessions_to(s, plan, release, &to_wait);
    if parked <= cap as f64 + 0.5 {
        return None;
    }
    // The instant the parked sessions alone fill the cap: from then until the release every
    // arrival is dropped, whatever journey it would have taken.
    let (mut lo, mut hi) = (0.0, release);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if sessions_to(s, plan, mid, &to_wait) < cap as f64 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let fmt_time = crate::scenario::units::fmt_time;
    Some(format!(
        "`wait: {w}` parks the {} sessions the plan sends to it before it releases at {}, but \
         max_users caps sessions in flight at {}: waiting sessions count against the cap, so from \
         about {} until the release every arrival is dropped (about {} of them) while the target \
         sits idle. Raise max_users above {} (or lower the rates before {})",
        grouped(parked),
        fmt_time(release),
        grouped(cap as f64),
        fmt_time(hi),
        grouped(plan.expected_arrivals(hi, release)),
        grouped(parked),
        fmt_time(release),
    ))
}

fn rendezvous_warning(
    s: &Scenario,
    plan: &Plan,
    r: &crate::scenario::model::Rendezvous,
) -> Option<String> {
    let users = ((r.users as f64 * plan.scale).round() as u64).max(1);
    let timeout = crate::scenario::units::format_duration(r.timeout.0.mul_f64(plan.time_scale));
    let name = &r.name;
    if let Some(cap) = plan.max_users.filter(|c| *c < users) {
        return Some(format!(
            "`rendezvous: {name}` releases when {} users have gathered, but max_users caps \
             sessions in flight at {}: it can never fill and releases only on its {timeout} \
             timeout. Raise max_users to at least {} or lower `users`",
            grouped(users as f64),
            grouped(cap as f64),
            grouped(users as f64),
        ));
    }
    let has = |j: &Journey| {
        j.steps
            .iter()
            .any(|st| st.rendezvous.as_ref().is_some_and(|x| &x.name == name))
    };
    let reach = match plan.model {
        Model::Open => sessions_to(s, plan, plan.duration, &has),
        Model::Closed => plan.peak().0.floor(),
    };
    (reach + 1e-9 < users as f64).then(|| {
        let what = match plan.model {
            Model::Open => format!("the plan sends only {} sessions to it", grouped(reach)),
            Model::Closed => format!("the plan has at most {} users", grouped(reach)),
        };
        format!(
            "`rendezvous: {name}` releases when {} users have gathered, but {what}: it can never \
             fill and releases only on its {timeout} timeout. Lower `users` to at most {}",
            grouped(users as f64),
            grouped(reach.floor()),
        )
    })
}

/// Mean number of request steps per session in `phase`: each journey's request count weighted
/// by the share of that phase's sessions that take it ([`journey_shares`]).
pub fn requests_per_session(s: &Scenario, phase: &str) -> f64 {
    if s.load.replay.is_some() {
        // Each record of a replay is one arrival sending its own request.
        return 1.0;
    }
    journey_shares(s, phase)
        .iter()
        .map(|(_, j, w)| {
            let n = j
                .steps
                .iter()
                .filter(|st| st.request().is_some() || st.stream().is_some())
                .count();
            w * n as f64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanOptions;

    fn compile(yaml: &str) -> (Scenario, Plan) {
        let s: Scenario = serde_yaml::from_str(yaml).unwrap();
        let p = Plan::compile(&s.load, &PlanOptions::default()).unwrap();
        (s, p)
    }

    const COUNTDOWN: &str = r#"
name: t
journeys:
  buy:
    share: 80%
    steps: [ { wait: sale-start }, { post: /order } ]
  look:
    share: 20%
    steps: [ { get: /item } ]
load:
  countdown: { sale_start: 60s, before: 100/s, peak: 1000/s, rise: 1s, hold: 2s, decay: 1s, after: 10/s, end: 70s }
  max_users: MAX
  arrivals: uniform
"#;

    #[test]
    fn journey_shares_renormalize_among_a_clients_journeys() {
        let yaml = r#"
name: t
clients:
  app: { share: 50%, during: { rush: 100% } }
  pc: { share: 50%, during: { rush: 0% } }
journeys:
  browse:
    share: 50%
    steps: [ { get: /a } ]
  buy:
    share: 50%
    clients: [app]
    steps: [ { get: /a }, { think: 1s }, { post: /b }, { post: /c } ]
load: { stages: [ { rate: 1/s, for: 1s } ] }
"#;
        let s: Scenario = serde_yaml::from_str(yaml).unwrap();
        // app: (1 + 3)/2 = 2; pc: only browse = 1.
        assert_eq!(requests_per_session(&s, "stage-1"), 1.5);
        assert_eq!(requests_per_session(&s, "rush"), 2.0);
    }

    #[test]
    fn a_wait_that_parks_more_sessions_than_max_users_is_named() {
        // 100/s for 60 s before the sale: 6,000 arrivals, 80 % of them take `buy`: 4,800 parked.
        let (s, p) = compile(&COUNTDOWN.replace("MAX", "4000"));
        let w = warnings(&s, &p);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].journey.as_str(), w[0].step), ("buy", 0));
        assert!(
            w[0].message.starts_with(
                "`wait: sale-start` parks the 4,800 sessions the plan sends to it before it releases at 1m, \
                 but max_users caps sessions in flight at 4,000"
            ),
            "{}",
            w[0].message
        );
        // 4,000 parked after 4,000 / 80 = 5,000 arrivals, at 50 s: the last 10 s drop all 1,000.
        assert!(
            w[0].message.contains(
                "from about 50s until the release every arrival is dropped (about 1,000 of them)"
            ),
            "{}",
            w[0].message
        );
        // Room for every parked session: no warning.
        let (s, p) = compile(&COUNTDOWN.replace("MAX", "4800"));
        assert_eq!(warnings(&s, &p), vec![]);
    }

    #[test]
    fn a_rendezvous_that_cannot_fill_is_named() {
        let yaml = r#"
name: t
journeys:
  grab:
    share: 50%
    steps: [ { rendezvous: { name: midnight, users: 200, timeout: 3s } }, { post: /grab } ]
  look:
    share: 50%
    steps: [ { get: /item } ]
load:
  stages: [ { rate: 30/s, for: 10s } ]
  max_users: MAX
  arrivals: uniform
"#;
        // 300 arrivals, half of them to the rendezvous: 150 < 200.
        let (s, p) = compile(&yaml.replace("MAX", "1000"));
        let w = warnings(&s, &p);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message
                .contains("the plan sends only 150 sessions to it"),
            "{}",
            w[0].message
        );
        assert!(w[0].message.contains("releases only on its 3s timeout"));
        // The cap below the rendezvous size is said first.
        let (s, p) = compile(&yaml.replace("MAX", "100"));
        let w = warnings(&s, &p);
        assert!(
            w[0].message
                .contains("max_users caps sessions in flight at 100"),
            "{}",
            w[0].message
        );
        // Twice the rate: 300 reach it, no warning.
        let (s, p) = compile(&yaml.replace("MAX", "1000").replace("30/s", "60/s"));
        assert_eq!(warnings(&s, &p), vec![]);
    }
}
