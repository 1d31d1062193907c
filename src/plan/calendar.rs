//! `load.calendar`: the sale night as one open-model shape, a base rate plus one spike per moment.
//!
//! A moment's spike is `peak − base` high: it climbs linearly from 0 over `rise` starting at `at`
//! (so a lone moment peaks at exactly `peak`, at `at + rise`), holds for `hold`, then decays
//! exponentially over `decay` with τ = decay/5 (like the countdown) and ends. Spikes are added on
//! top of the base and on top of each other where they overlap, so a decay still running when the
//! next moment starts carries into it. The curve is cut at every moment's four instants; between
//! two cuts each spike is a ramp, a level or a decay, and their sum is one `Shape::layered` piece.
//!
//! Phases: `base`, and `MOMENT.rise`, `MOMENT.peak`, `MOMENT.decay`. At any instant the latest
//! moment that has started and whose spike is not over owns the time; with none, it is `base`.
//! A phase name may come back (`base` between moments, a decay resumed after a later moment
//! ended): each stretch is its own `Phase`, and `during base` means all of them.
//!
//! Times: `from` is what run time 0 stands for. An `at` or `until` written as an RFC 3339 instant
//! is an offset from `from`; every offset is multiplied by `--time-scale` (the whole calendar
//! compresses), rates by `--scale`.

use super::countdown::DECAY_TIME_CONSTANTS;
use super::curve::{Decay, Piece, Shape};
use super::source::LoadSource;
use super::{phase, Model, Moment, Phase, PlanOptions, Shaped};
use crate::scenario::model::At;
use crate::scenario::spans::KeyPath;
use crate::scenario::units::{format_duration, format_rate, format_secs, Dur, Rate};
use crate::scenario::Issue;
use chrono::{DateTime, FixedOffset};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A sale calendar: a base rate plus one countdown-like spike per moment, each added on top of
/// the base (overlapping spikes add up).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// The wall-clock instant run time 0 stands for (RFC 3339). Without it, every `at` and
    /// `until` is an offset.
    #[serde(default)]
    pub from: Option<At>,
    /// The end of the calendar: an offset from `from` or an RFC 3339 instant.
    pub until: At,
    /// The rate between moments (and under their spikes).
    pub base: Rate,
    pub moments: IndexMap<String, CalendarMoment>,
}

/// One moment of a calendar: its spike climbs linearly from the base to `peak` over `rise` from
/// `at`, holds `hold`, then decays exponentially back over `decay`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarMoment {
    /// An offset from `from` (`4h5m`) or an RFC 3339 instant.
    pub at: At,
    /// The rate at the top of this moment's spike when no other spike overlaps it.
    pub peak: Rate,
    pub rise: Dur,
    pub hold: Dur,
    pub decay: Dur,
}

/// The phase name of the time no moment owns.
pub const BASE: &str = "base";

/// The phases a calendar can have, in the order of its moments: `base`, then each moment's
/// `rise`, its `peak` (when `hold` is longer than 0s) and its `decay` (when `decay` is).
pub fn phase_names(c: &Calendar) -> Vec<String> {
    let mut names = vec![BASE.to_string()];
    for (name, m) in &c.moments {
        names.push(format!("{name}.rise"));
        if !m.hold.0.is_zero() {
            names.push(format!("{name}.peak"));
        }
        if !m.decay.0.is_zero() {
            names.push(format!("{name}.decay"));
        }
    }
    names
}

impl LoadSource for Calendar {
    fn key(&self) -> &'static str {
        "calendar"
    }

    fn check(&self, p: &KeyPath, issues: &mut Vec<Issue>) {
        let c = self;
        let fmt = format_duration;
        let from = match c.from {
            Some(At::Instant(i)) => Some(i),
            Some(At::Offset(_)) => {
                issues.push(
                    Issue::at(p.key("from"), "`from` must be an RFC 3339 instant: the wall-clock time run time 0 stands for")
                        .help("like from: \"2026-11-10T19:55:00+08:00\", or leave it out and write every `at` as an offset"),
                );
                return;
            }
            None => None,
        };
        // Seconds from `from`, or None (with the problem reported) when it cannot be known.
        let offset = |v: &mut Vec<Issue>, key: KeyPath, at: &At| -> Option<f64> {
            match (at, from) {
                (At::Offset(d), _) => Some(d.0.as_secs_f64()),
                (At::Instant(i), Some(f)) if *i < f => {
                    v.push(Issue::at(
                        key,
                        format!(
                            "{} comes {} before `from`: the calendar starts at `from`",
                            i.to_rfc3339(),
                            fmt((f - *i).to_std().unwrap_or_default())
                        ),
                    ));
                    None
                }
                (At::Instant(i), Some(f)) => Some((*i - f).num_milliseconds() as f64 / 1000.0),
                (At::Instant(_), None) => {
                    v.push(
                        Issue::at(key, "an RFC 3339 instant needs the calendar's `from`: what run time 0 stands for")
                            .help("add `from: <RFC 3339 instant>` to load.calendar, or write an offset like 4h5m"),
                    );
                    None
                }
            }
        };
        let until = offset(issues, p.key("until"), &c.until);
        if until.is_some_and(|u| u <= 0.0) {
            issues.push(Issue::at(
                p.key("until"),
                "`until` must come after `from`: the calendar would last no time",
            ));
        }
        if c.moments.is_empty() {
            issues.push(
                Issue::at(p.key("moments"), "the calendar has no moments")
                    .help("add one like `sale: { at: 5m, peak: 6000/s, rise: 26s, hold: 1m, decay: 30m }`, or use `load.stages` for a flat rate"),
            );
        }
        for (name, m) in &c.moments {
            let mp = p.key("moments").key(name);
            let bad_name = if name.is_empty() {
                Some("a moment needs a name")
            } else if name == BASE {
                Some("`base` is the phase between moments: give the moment another name")
            } else if name.contains('.') || name.chars().any(char::is_whitespace) {
                Some("a moment's name has no dots or spaces: its phases are NAME.rise, NAME.peak and NAME.decay")
            } else {
                None
            };
            if let Some(msg) = bad_name {
                issues.push(Issue::at(mp.clone(), msg).on_key());
            }
            if m.rise.0.is_zero() {
                issues.push(
                    Issue::at(
                        mp.key("rise"),
                        "`rise` must be longer than 0s: it is the climb to the peak",
                    )
                    .help("the 2020 Tmall peak came 26s after 00:00: rise: 26s"),
                );
            }
            if m.peak.0 < c.base.0 {
                issues.push(
                    Issue::at(
                        mp.key("peak"),
                        format!(
                            "the peak ({}) is below the base rate ({})",
                            format_rate(m.peak.0),
                            format_rate(c.base.0)
                        ),
                    )
                    .help("a moment's peak is the rate at the top of its spike, the base included"),
                );
            }
            let at = offset(issues, mp.key("at"), &m.at);
            if let (Some(at), Some(until)) = (at, until) {
                let end = at + (m.rise.0 + m.hold.0 + m.decay.0).as_secs_f64();
                if end > until + 1e-9 {
                    issues.push(
                        Issue::at(mp.clone(), format!(
                            "the moment `{name}` ends {} after {} (at + rise + hold + decay), after `until` ({})",
                            fmt(std::time::Duration::from_secs_f64(end)),
                            if from.is_some() { "`from`" } else { "the start" },
                            fmt(std::time::Duration::from_secs_f64(until.max(0.0)))
                        ))
                        .on_key()
                        .help(format!("move `until` to {} or later, or shorten the decay", fmt(std::time::Duration::from_secs_f64(end)))),
                    );
                }
            }
        }
    }

    fn phase_names(&self) -> Vec<String> {
        phase_names(self)
    }

    fn phase_groups(&self) -> Vec<String> {
        self.moments.keys().cloned().collect()
    }

    fn instants(&self) -> Vec<String> {
        self.moments.keys().cloned().collect()
    }

    fn compile(&self, opts: &PlanOptions) -> Result<Shaped, String> {
        compile(self, opts)
    }
}

/// Seconds from `from` as written (before `--time-scale`).
fn offset(key: &str, at: &At, from: Option<DateTime<FixedOffset>>) -> Result<f64, String> {
    match (at, from) {
        (At::Offset(d), _) => Ok(d.as_secs_f64()),
        (At::Instant(i), Some(from)) => {
            let ms = (*i - from).num_milliseconds();
            if ms < 0 {
                Err(format!(
                    "load.calendar.{key}: {} comes {} before `from` ({}): the calendar starts at `from`",
                    i.to_rfc3339(),
                    format_secs(-ms as f64 / 1000.0),
                    from.to_rfc3339()
                ))
            } else {
                Ok(ms as f64 / 1000.0)
            }
        }
        (At::Instant(i), None) => Err(format!(
            "load.calendar.{key}: {} is an instant, but the calendar has no `from`: add \
             `from: <RFC 3339 instant>` (what run time 0 stands for) or write an offset like 4h5m",
            i.to_rfc3339()
        )),
    }
}

/// The calendar's `from`, if it has one and it is an instant.
pub fn from_instant(c: &Calendar) -> Result<Option<DateTime<FixedOffset>>, String> {
    match c.from {
        None => Ok(None),
        Some(At::Instant(i)) => Ok(Some(i)),
        Some(At::Offset(d)) => Err(format!(
            "load.calendar.from is an offset ({}): it must be an RFC 3339 instant like \
             2026-11-10T19:55:00+08:00, the wall-clock time run time 0 stands for",
            format_duration(d.0)
        )),
    }
}

/// One moment's spike, in run seconds (after `--time-scale`).
struct Spike {
    at: f64,
    rise_end: f64,
    hold_end: f64,
    end: f64,
    /// Height above the base (after `--scale`).
    gap: f64,
    tau: f64,
}

/// What a spike is doing in `[t0, t1)`, an interval that no cut divides.
enum State {
    Off,
    Rise,
    Peak,
    Decay,
}

impl Spike {
    fn state(&self, t0: f64) -> State {
        if t0 < self.at || t0 >= self.end {
            State::Off
        } else if t0 < self.rise_end {
            State::Rise
        } else if t0 < self.hold_end {
            State::Peak
        } else {
            State::Decay
        }
    }

    /// The spike's height at `t` during its rise.
    fn rising(&self, t: f64) -> f64 {
        self.gap * (t - self.at) / (self.rise_end - self.at)
    }
}

pub(crate) fn compile(c: &Calendar, opts: &PlanOptions) -> Result<Shaped, String> {
    let from = from_instant(c)?;
    let ts = opts.time_scale;
    let until = offset("until", &c.until, from)? * ts;
    if until <= 0.0 {
        return Err(
            "load.calendar.until: the calendar lasts no time: `until` must come after `from`"
                .into(),
        );
    }
    if c.moments.is_empty() {
        return Err("load.calendar.moments is empty: add a moment like `sale: { at: 5m, peak: 6000/s, rise: 26s, hold: 1m, decay: 30m }`".into());
    }
    let base = c.base.0 * opts.scale;
    let mut spikes = Vec::with_capacity(c.moments.len());
    let mut moments = Vec::with_capacity(c.moments.len());
    for (name, m) in &c.moments {
        let key = format!("moments.{name}");
        let written = offset(&format!("{key}.at"), &m.at, from)?;
        let at = written * ts;
        let rise = m.rise.as_secs_f64() * ts;
        if rise <= 0.0 {
            return Err(format!(
                "load.calendar.{key}.rise must be longer than 0s: it is the climb to the peak"
            ));
        }
        if m.peak.0 < c.base.0 {
            return Err(format!(
                "load.calendar.{key}.peak is below the base rate: a moment's peak is the rate at \
                 the top of its spike, the base included"
            ));
        }
        let rise_end = at + rise;
        let hold_end = rise_end + m.hold.as_secs_f64() * ts;
        let decay = m.decay.as_secs_f64() * ts;
        let end = hold_end + decay;
        if end > until + 1e-9 {
            return Err(format!(
                "load.calendar.{key} ends at {} (at + rise + hold + decay), after `until` ({}): \
                 move `until` to {} or later",
                format_secs(end / ts),
                format_secs(until / ts),
                format_secs(end / ts)
            ));
        }
        spikes.push(Spike {
            at,
            rise_end,
            hold_end,
            end,
            gap: (m.peak.0 - c.base.0) * opts.scale,
            tau: decay / DECAY_TIME_CONSTANTS,
        });
        moments.push(Moment {
            name: name.clone(),
            at_s: at,
            peak_s: rise_end,
            hold_end_s: hold_end,
            end_s: end,
            peak_rate: m.peak.0 * opts.scale,
            instant: from
                .map(|f| f + chrono::Duration::milliseconds((written * 1000.0).round() as i64)),
        });
    }

    // Every instant where some spike changes form.
    let mut cuts: Vec<f64> = vec![0.0, until];
    for s in &spikes {
        cuts.extend([s.at, s.rise_end, s.hold_end, s.end]);
    }
    cuts.retain(|t| *t >= 0.0 && *t <= until);
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();

    let names: Vec<&String> = c.moments.keys().collect();
    let mut pieces = Vec::with_capacity(cuts.len());
    let mut phases: Vec<Phase> = Vec::with_capacity(cuts.len());
    for w in cuts.windows(2) {
        let (t0, t1) = (w[0], w[1]);
        if t1 <= t0 {
            continue;
        }
        let (mut v0, mut v1) = (base, base);
        let mut decays = Vec::new();
        // The latest started moment whose spike is not over owns the time.
        let mut owner: Option<(usize, f64)> = None;
        for (i, s) in spikes.iter().enumerate() {
            let state = s.state(t0);
            match state {
                State::Off => continue,
                State::Rise => {
                    v0 += s.rising(t0);
                    v1 += s.rising(t1);
                }
                State::Peak => {
                    v0 += s.gap;
                    v1 += s.gap;
                }
                State::Decay => decays.push(Decay {
                    gap: s.gap * (-(t0 - s.hold_end) / s.tau).exp(),
                    tau: s.tau,
                }),
            }
            if owner.is_none_or(|(_, at)| s.at >= at) {
                owner = Some((i, s.at));
            }
        }
        let name = match owner {
            None => BASE.to_string(),
            Some((i, _)) => {
                let part = match spikes[i].state(t0) {
                    State::Rise => "rise",
                    State::Peak => "peak",
                    _ => "decay",
                };
                format!("{}.{part}", names[i])
            }
        };
        pieces.push(Piece {
            t0,
            t1,
            shape: Shape::layered(v0, v1, decays),
        });
        match phases.last_mut() {
            Some(last) if last.name == name => last.end = t1,
            _ => phases.push(phase(name, t0, t1)),
        }
    }
    Ok(Shaped {
        model: Model::Open,
        pieces,
        phases,
        sale_start: None,
        drill: None,
        moments,
        ..Shaped::default()
    })
}

#[cfg(test)]
mod tests {
    use super::{Calendar, CalendarMoment as Moment};
    use crate::plan::{Plan, PlanOptions, Segment};
    use crate::scenario::model::{Arrivals, At, Load};
    use crate::scenario::units::{Dur, Rate};
    use chrono::{DateTime, TimeZone, Utc};
    use indexmap::IndexMap;
    use std::time::Duration;

    fn d(s: f64) -> Dur {
        Dur(Duration::from_secs_f64(s))
    }

    fn moment(at: f64, peak: f64, rise: f64, hold: f64, decay: f64) -> Moment {
        Moment {
            at: At::Offset(d(at)),
            peak: Rate(peak),
            rise: d(rise),
            hold: d(hold),
            decay: d(decay),
        }
    }

    fn load(base: f64, until: f64, moments: Vec<(&str, Moment)>) -> Load {
        Load {
            calendar: Some(Calendar {
                from: None,
                until: At::Offset(d(until)),
                base: Rate(base),
                moments: moments
                    .into_iter()
                    .map(|(n, m)| (n.to_string(), m))
                    .collect::<IndexMap<_, _>>(),
            }),
            arrivals: Arrivals::Uniform,
            seed: Some(3),
            ..Load::default()
        }
    }

    fn compile(l: &Load) -> Plan {
        Plan::compile(l, &PlanOptions::default()).unwrap()
    }

    fn phases(p: &Plan) -> Vec<(&str, f64, f64)> {
        p.phases
            .iter()
            .map(|ph| (ph.name.as_str(), ph.start, ph.end))
            .collect()
    }

    /// Three moments apart: presale at 10 s, sale at 40 s, balance at 70 s, 100 s in all.
    fn three() -> Load {
        load(
            10.0,
            100.0,
            vec![
                ("presale", moment(10.0, 110.0, 4.0, 6.0, 10.0)),
                ("sale", moment(40.0, 210.0, 2.0, 8.0, 10.0)),
                ("balance", moment(70.0, 60.0, 5.0, 5.0, 10.0)),
            ],
        )
    }

    #[test]
    fn calendar_phases_follow_the_moments() {
        let p = compile(&three());
        assert_eq!(
            phases(&p),
            [
                ("base", 0.0, 10.0),
                ("presale.rise", 10.0, 14.0),
                ("presale.peak", 14.0, 20.0),
                ("presale.decay", 20.0, 30.0),
                ("base", 30.0, 40.0),
                ("sale.rise", 40.0, 42.0),
                ("sale.peak", 42.0, 50.0),
                ("sale.decay", 50.0, 60.0),
                ("base", 60.0, 70.0),
                ("balance.rise", 70.0, 75.0),
                ("balance.peak", 75.0, 80.0),
                ("balance.decay", 80.0, 90.0),
                ("base", 90.0, 100.0),
            ]
        );
        assert_eq!(p.duration, 100.0);
        let m: Vec<(&str, f64, f64, f64)> = p
            .moments()
            .iter()
            .map(|m| (m.name.as_str(), m.at_s, m.peak_s, m.end_s))
            .collect();
        assert_eq!(
            m,
            [
                ("presale", 10.0, 14.0, 30.0),
                ("sale", 40.0, 42.0, 60.0),
                ("balance", 70.0, 75.0, 90.0),
            ]
        );
        assert_eq!(p.moment("sale").map(|m| m.peak_rate), Some(210.0));
        assert_eq!(p.wait_instant("sale"), Some(40.0));
        assert_eq!(p.wait_instant("sale-start"), None);
        assert_eq!(p.wait_instant("nothing"), None);
    }

    #[test]
    fn calendar_peaks_at_each_moment_plus_rise() {
        let p = compile(&three());
        assert_eq!(p.peak(), (210.0, 42.0));
        for (at, rise, peak) in [(10.0, 4.0, 110.0), (40.0, 2.0, 210.0), (70.0, 5.0, 60.0)] {
            assert_eq!(
                p.value_at(at),
                10.0,
                "the spike starts from the base at {at}"
            );
            assert_eq!(p.value_at(at + rise), peak);
            assert!(p.value_at(at + rise - 0.01) < peak);
            // Halfway up the rise: halfway between base and peak.
            assert!((p.value_at(at + rise / 2.0) - (10.0 + peak) / 2.0).abs() < 1e-9);
        }
        // The sale decays from 200/s above the base with τ = 2 s.
        assert!((p.value_at(52.0) - (10.0 + 200.0 * (-1.0f64).exp())).abs() < 1e-9);
        assert_eq!(p.value_at(65.0), 10.0);
    }

    #[test]
    fn calendar_arrivals_per_phase_are_the_integrals() {
        let p = compile(&three());
        let e = |name: &str| -> f64 {
            p.phases
                .iter()
                .filter(|ph| ph.name == name)
                .map(|ph| p.expected_arrivals(ph.start, ph.end))
                .sum()
        };
        // Base: 40 s at 10/s.
        assert_eq!(e("base"), 400.0);
        // A rise is a trapezoid from base to peak.
        assert_eq!(e("presale.rise"), 4.0 * (10.0 + 110.0) / 2.0);
        assert_eq!(e("sale.rise"), 2.0 * (10.0 + 210.0) / 2.0);
        assert_eq!(e("balance.rise"), 5.0 * (10.0 + 60.0) / 2.0);
        assert_eq!(e("sale.peak"), 8.0 * 210.0);
        // A decay: base·len + gap·τ·(1 − e^−5).
        let decay = |gap: f64| 10.0 * 10.0 + gap * 2.0 * (1.0 - (-5.0f64).exp());
        assert!((e("presale.decay") - decay(100.0)).abs() < 1e-9);
        assert!((e("sale.decay") - decay(200.0)).abs() < 1e-9);
        // Uniform arrivals land in whole phases exactly as the integral says.
        let mut counts: IndexMap<String, u64> = IndexMap::new();
        for a in p.arrivals(Segment::WHOLE) {
            *counts
                .entry(p.phases[p.phase_index_at(a.t)].name.clone())
                .or_default() += 1;
        }
        assert_eq!(counts["base"], 400);
        assert_eq!(counts["presale.rise"], 240);
        assert_eq!(counts["sale.rise"], 220);
        assert_eq!(counts["sale.peak"], 1680);
        assert_eq!(counts["balance.peak"], 300);
    }

    #[test]
    fn overlapping_spikes_add_up() {
        // The sale starts 4 s into the presale's decay: the presale's tail rides on top.
        let l = load(
            10.0,
            40.0,
            vec![
                ("presale", moment(0.0, 110.0, 2.0, 2.0, 10.0)),
                ("sale", moment(8.0, 210.0, 2.0, 2.0, 10.0)),
            ],
        );
        let p = compile(&l);
        let tail = |t: f64| 100.0 * (-(t - 4.0) / 2.0f64).exp();
        for t in [8.0, 9.0, 10.0, 11.5, 12.0, 13.0, 14.0, 21.9] {
            let sale = if t < 10.0 {
                200.0 * (t - 8.0) / 2.0
            } else if t < 12.0 {
                200.0
            } else {
                200.0 * (-(t - 12.0) / 2.0f64).exp()
            };
            let want = 10.0 + sale + if t < 14.0 { tail(t) } else { 0.0 };
            assert!(
                (p.value_at(t) - want).abs() < 1e-9,
                "at {t}: {} vs {want}",
                p.value_at(t)
            );
        }
        // The sale's peak sits on the presale's tail: higher than 210/s, at the rise's end.
        let (peak, at) = p.peak();
        assert_eq!(at, 10.0);
        assert!((peak - (210.0 + tail(10.0))).abs() < 1e-9, "{peak}");
        // The latest started moment owns the time; the presale's decay never comes back.
        assert_eq!(
            phases(&p),
            [
                ("presale.rise", 0.0, 2.0),
                ("presale.peak", 2.0, 4.0),
                ("presale.decay", 4.0, 8.0),
                ("sale.rise", 8.0, 10.0),
                ("sale.peak", 10.0, 12.0),
                ("sale.decay", 12.0, 22.0),
                ("base", 22.0, 40.0),
            ]
        );
        // Overlapping integrals add: the total is the base plus each spike's own area.
        let spike = |gap: f64| gap * 2.0 / 2.0 + gap * 2.0 + gap * 2.0 * (1.0 - (-5.0f64).exp());
        let total = 10.0 * 40.0 + spike(100.0) + spike(200.0);
        assert!((p.expected_arrivals(0.0, 40.0) - total).abs() < 1e-9);
        assert_eq!(p.arrivals(Segment::WHOLE).count(), total.ceil() as usize);
    }

    #[test]
    fn a_decay_interrupted_by_a_shorter_moment_resumes_its_phase() {
        // Balance starts during the sale's long decay and is over before it.
        let l = load(
            5.0,
            60.0,
            vec![
                ("sale", moment(0.0, 105.0, 1.0, 1.0, 40.0)),
                ("balance", moment(10.0, 55.0, 1.0, 1.0, 3.0)),
            ],
        );
        let p = compile(&l);
        let names: Vec<&str> = p.phases.iter().map(|ph| ph.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sale.rise",
                "sale.peak",
                "sale.decay",
                "balance.rise",
                "balance.peak",
                "balance.decay",
                "sale.decay",
                "base"
            ]
        );
        assert_eq!(p.phases[6].start, 15.0);
        assert_eq!(p.phases[6].end, 42.0);
    }

    #[test]
    fn instants_are_offsets_from_from_and_time_scale_compresses_them() {
        let inst = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        let mut l = load(
            300.0,
            0.0,
            vec![
                ("presale", moment(0.0, 3000.0, 30.0, 120.0, 600.0)),
                ("sale", moment(0.0, 6000.0, 26.0, 60.0, 1800.0)),
                ("balance", moment(0.0, 2500.0, 10.0, 300.0, 1200.0)),
            ],
        );
        let c = l.calendar.as_mut().unwrap();
        c.from = Some(At::Instant(inst("2026-11-10T19:55:00+08:00")));
        c.until = At::Instant(inst("2026-11-11T01:30:00+08:00"));
        c.moments["presale"].at = At::Instant(inst("2026-11-10T20:00:00+08:00"));
        c.moments["sale"].at = At::Instant(inst("2026-11-11T00:00:00+08:00"));
        c.moments["balance"].at = At::Offset(d(16500.0));
        let p = compile(&l);
        let m: Vec<(&str, f64)> = p
            .moments()
            .iter()
            .map(|m| (m.name.as_str(), m.at_s))
            .collect();
        assert_eq!(
            m,
            [("presale", 300.0), ("sale", 14700.0), ("balance", 16500.0)]
        );
        assert_eq!(p.duration, 20100.0);
        // Listed in the offset of `from`, as the author wrote it.
        let sale = p.moments()[1].instant.unwrap();
        assert_eq!(sale.to_rfc3339(), "2026-11-11T00:00:00+08:00");
        assert_eq!(
            p.moments()[2].instant.unwrap().to_rfc3339(),
            "2026-11-11T00:30:00+08:00"
        );
        assert_eq!(p.peak(), (6000.0, 14726.0));

        let scaled = Plan::compile(
            &l,
            &PlanOptions {
                time_scale: 0.1,
                scale: 0.5,
                ..PlanOptions::default()
            },
        )
        .unwrap();
        let m: Vec<f64> = scaled.moments().iter().map(|m| m.at_s).collect();
        assert_eq!(m, [30.0, 1470.0, 1650.0]);
        assert_eq!(scaled.duration, 2010.0);
        let (peak, at) = scaled.peak();
        assert_eq!(peak, 3000.0);
        assert!((at - 1472.6).abs() < 1e-9, "{at}");
        // The wall-clock instant stays what the calendar says; only run time compresses.
        assert_eq!(scaled.moments()[1].instant, p.moments()[1].instant);
        // Compressing time by 10 and halving rates divides every count by 20.
        let whole = p.expected_arrivals(0.0, p.duration);
        assert!(
            (scaled.expected_arrivals(0.0, scaled.duration) * 20.0 - whole).abs() < 1e-6 * whole
        );
    }

    #[test]
    fn calendar_mistakes_are_errors_naming_the_key() {
        let mut l = three();
        l.calendar.as_mut().unwrap().until = At::Offset(d(85.0));
        let e = Plan::compile(&l, &PlanOptions::default()).unwrap_err();
        assert!(e.contains("moments.balance") && e.contains("1m30s"), "{e}");

        let mut l = three();
        l.calendar.as_mut().unwrap().moments["sale"].at =
            At::Instant(Utc.with_ymd_and_hms(2026, 11, 11, 0, 0, 0).unwrap().into());
        let e = Plan::compile(&l, &PlanOptions::default()).unwrap_err();
        assert!(
            e.contains("moments.sale.at") && e.contains("no `from`"),
            "{e}"
        );

        let mut l = three();
        l.calendar.as_mut().unwrap().moments["sale"].peak = Rate(5.0);
        let e = Plan::compile(&l, &PlanOptions::default()).unwrap_err();
        assert!(e.contains("below the base"), "{e}");

        let mut l = three();
        l.calendar.as_mut().unwrap().from = Some(At::Instant(
            Utc.with_ymd_and_hms(2026, 11, 11, 0, 0, 0).unwrap().into(),
        ));
        l.calendar.as_mut().unwrap().moments["sale"].at = At::Instant(
            Utc.with_ymd_and_hms(2026, 11, 10, 23, 59, 0)
                .unwrap()
                .into(),
        );
        let e = Plan::compile(&l, &PlanOptions::default()).unwrap_err();
        assert!(e.contains("1m before `from`"), "{e}");
    }

    #[test]
    fn calendar_segments_add_up_to_the_whole() {
        let mut l = three();
        for arrivals in [Arrivals::Uniform, Arrivals::Poisson] {
            l.arrivals = arrivals;
            let p = compile(&l);
            let whole: Vec<_> = p.arrivals(Segment::WHOLE).collect();
            for n in [2u32, 3, 7] {
                let mut all: Vec<_> = (0..n)
                    .flat_map(|i| p.arrivals(Segment::new(i, n).unwrap()))
                    .collect();
                all.sort_by_key(|a| a.index);
                assert_eq!(all, whole, "{arrivals:?} n = {n}");
            }
        }
    }

    #[test]
    fn calendar_phase_names_list_what_can_happen() {
        let mut l = three();
        l.calendar.as_mut().unwrap().moments["balance"].hold = d(0.0);
        let names = super::phase_names(l.calendar.as_ref().unwrap());
        assert_eq!(
            names,
            [
                "base",
                "presale.rise",
                "presale.peak",
                "presale.decay",
                "sale.rise",
                "sale.peak",
                "sale.decay",
                "balance.rise",
                "balance.decay"
            ]
        );
    }
}
