//! `load.countdown`: the Double-11 shape, an open model in five phases.
//!
//! - `before`: from the run start to `sale_start`, at the `before` rate;
//! - `rise`: `rise` long, linear from `before` to `peak`, so the peak is reached exactly at
//!   `sale_start + rise`;
//! - `peak`: `hold` long at `peak`;
//! - `decay`: `decay` long, exponential from `peak` towards `after`,
//!   r(t) = after + (peak − after)·e^(−t/τ) with τ = decay/5, so at the end of the phase the rate
//!   is within 0.7 % (e^−5 ≈ 0.67 %) of the gap above `after`; then it steps to `after`;
//! - `after`: at the `after` rate until `end`.
//!
//! A phase of zero length is left out. Offsets (`2m`) count from the run start and are multiplied
//! by `--time-scale` like every other duration; RFC 3339 instants are wall-clock times resolved
//! against `PlanOptions::start` and are not scaled (the sale starts when the clock says so).
//! `wait: sale-start` holds a user until the sale starts.

use super::curve::{Piece, Shape};
use super::source::LoadSource;
use super::{phase, secs, Model, PlanOptions, Shaped};
use crate::scenario::model::At;
use crate::scenario::spans::KeyPath;
use crate::scenario::units::{format_duration, format_secs, Dur, Rate};
use crate::scenario::Issue;
use serde::{Deserialize, Serialize};

/// The phases of a countdown, in time order.
pub const PHASES: [&str; 5] = ["before", "rise", "peak", "decay", "after"];

/// The Double-11 shape: before → rise → peak → decay → after.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Countdown {
    pub sale_start: At,
    pub before: Rate,
    pub peak: Rate,
    pub rise: Dur,
    pub hold: Dur,
    pub decay: Dur,
    pub after: Rate,
    pub end: At,
}

impl LoadSource for Countdown {
    fn key(&self) -> &'static str {
        "countdown"
    }

    fn check(&self, p: &KeyPath, issues: &mut Vec<Issue>) {
        let c = self;
        if c.rise.0.is_zero() {
            issues.push(
                Issue::at(
                    p.key("rise"),
                    "`rise` must be longer than 0s: it is the climb to the peak",
                )
                .help("the 2020 Tmall peak came 26s after 00:00: rise: 26s"),
            );
        }
        let need = c.rise.0 + c.hold.0 + c.decay.0;
        let fmt = format_duration;
        match (c.sale_start, c.end) {
            (At::Offset(s), At::Offset(e)) => {
                if s.0 + need > e.0 {
                    issues.push(
                        Issue::at(p.key("end"), format!(
                            "`end` ({}) comes before the countdown is over: sale_start + rise + hold + decay = {}",
                            fmt(e.0),
                            fmt(s.0 + need)
                        ))
                        .help(format!("set end to at least {}", fmt(s.0 + need))),
                    );
                }
            }
            (At::Instant(s), At::Instant(e)) => {
                let span = (e - s).to_std().unwrap_or_default();
                if e < s || span < need {
                    issues.push(
                        Issue::at(p.key("end"), format!(
                            "`end` comes before the countdown is over: it must be at least rise + hold + decay = {} after sale_start",
                            fmt(need)
                        )),
                    );
                }
            }
            _ => issues.push(
                Issue::at(p.key("end"), "`sale_start` and `end` must both be offsets (like 2m) or both RFC 3339 instants")
                    .help("mixing them makes the run length depend on when it starts"),
            ),
        }
    }

    fn phase_names(&self) -> Vec<String> {
        PHASES.map(String::from).to_vec()
    }

    fn instants(&self) -> Vec<String> {
        vec!["sale-start".into()]
    }

    fn compile(&self, opts: &PlanOptions) -> Result<Shaped, String> {
        compile(self, opts)
    }
}

/// The decay's time constant is its length divided by this.
pub const DECAY_TIME_CONSTANTS: f64 = 5.0;

fn resolve(key: &str, at: &At, opts: &PlanOptions) -> Result<f64, String> {
    match at {
        At::Offset(d) => Ok(secs(*d, opts)),
        At::Instant(i) => {
            let ms = i.signed_duration_since(opts.start).num_milliseconds();
            if ms < 0 {
                Err(format!(
                    "load.countdown.{key}: {} is in the past ({} before the start at {}): \
                     give a later instant or an offset like 2m",
                    i.to_rfc3339(),
                    format_secs(-ms as f64 / 1000.0),
                    opts.start.to_rfc3339()
                ))
            } else {
                Ok(ms as f64 / 1000.0)
            }
        }
    }
}

pub(crate) fn compile(c: &Countdown, opts: &PlanOptions) -> Result<Shaped, String> {
    let sale = resolve("sale_start", &c.sale_start, opts)?;
    let end = resolve("end", &c.end, opts)?;
    let (before, peak, after) = (
        c.before.0 * opts.scale,
        c.peak.0 * opts.scale,
        c.after.0 * opts.scale,
    );
    let rise_end = sale + secs(c.rise, opts);
    let peak_end = rise_end + secs(c.hold, opts);
    let decay_len = secs(c.decay, opts);
    let decay_end = peak_end + decay_len;
    if end < decay_end {
        return Err(format!(
            "load.countdown.end ({}) comes before the decay ends ({} = sale_start + rise + hold + decay): \
             move `end` to {} or later",
            format_secs(end),
            format_secs(decay_end),
            format_secs(decay_end)
        ));
    }
    let mut pieces = vec![
        Piece {
            t0: 0.0,
            t1: sale,
            shape: Shape::Const { v: before },
        },
        Piece {
            t0: sale,
            t1: rise_end,
            shape: Shape::Linear {
                v0: before,
                v1: peak,
            },
        },
        Piece {
            t0: rise_end,
            t1: peak_end,
            shape: Shape::Const { v: peak },
        },
    ];
    if decay_len > 0.0 {
        pieces.push(Piece {
            t0: peak_end,
            t1: decay_end,
            shape: Shape::Exp {
                base: after,
                gap: peak - after,
                tau: decay_len / DECAY_TIME_CONSTANTS,
            },
        });
    }
    pieces.push(Piece {
        t0: decay_end,
        t1: end,
        shape: Shape::Const { v: after },
    });
    let bounds = [0.0, sale, rise_end, peak_end, decay_end, end];
    let phases = PHASES
        .iter()
        .enumerate()
        .map(|(i, name)| phase(*name, bounds[i], bounds[i + 1]))
        .collect();
    Ok(Shaped {
        model: Model::Open,
        pieces,
        phases,
        sale_start: Some(sale),
        drill: None,
        ..Shaped::default()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::plan::Countdown;
    use crate::plan::{Plan, PlanOptions, Segment};
    use crate::scenario::model::{Arrivals, At, Load};
    use crate::scenario::units::{Dur, Rate};
    use chrono::{TimeZone, Utc};
    use std::time::Duration;

    fn d(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    /// The design's countdown: sale at 2m, 300/s before, 6000/s peak after a 26 s rise, held
    /// 1 m, decaying over 3 m to 1000/s, ending at 8 m.
    pub(crate) fn design_countdown(arrivals: Arrivals) -> Load {
        Load {
            countdown: Some(Countdown {
                sale_start: At::Offset(d(120)),
                before: Rate(300.0),
                peak: Rate(6000.0),
                rise: d(26),
                hold: d(60),
                decay: d(180),
                after: Rate(1000.0),
                end: At::Offset(d(480)),
            }),
            max_users: Some(50000),
            arrivals,
            seed: Some(11),
            ..Load::default()
        }
    }

    fn plan() -> Plan {
        Plan::compile(
            &design_countdown(Arrivals::Uniform),
            &PlanOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn countdown_phases_have_the_design_instants() {
        let p = plan();
        let got: Vec<(&str, f64, f64)> = p
            .phases
            .iter()
            .map(|ph| (ph.name.as_str(), ph.start, ph.end))
            .collect();
        assert_eq!(
            got,
            [
                ("before", 0.0, 120.0),
                ("rise", 120.0, 146.0),
                ("peak", 146.0, 206.0),
                ("decay", 206.0, 386.0),
                ("after", 386.0, 480.0),
            ]
        );
        assert_eq!(p.duration, 480.0);
        assert_eq!(p.sale_start, Some(120.0));
        assert_eq!(p.seed, 11);
        assert_eq!(p.max_users, Some(50000));
    }

    #[test]
    fn countdown_peak_reached_at_rise_end() {
        let p = plan();
        assert_eq!(p.peak(), (6000.0, 146.0));
        assert_eq!(p.value_at(146.0), 6000.0);
        assert_eq!(p.value_at(120.0), 300.0);
        // Halfway up the rise: (300 + 6000)/2.
        assert_eq!(p.value_at(133.0), 3150.0);
        assert!(p.value_at(145.999) < 6000.0);
    }

    #[test]
    fn countdown_decays_exponentially_towards_after() {
        let p = plan();
        let gap = 5000.0;
        // τ = 180 s / 5 = 36 s: one τ into the decay the gap is e^−1 of what it was.
        let at = |s: f64| 1000.0 + gap * (-s / 36.0f64).exp();
        for s in [0.0, 36.0, 90.0, 179.0] {
            assert!(
                (p.value_at(206.0 + s) - at(s)).abs() < 1e-9,
                "decay at +{s}s"
            );
        }
        assert!((p.value_at(242.0) - 2839.397205857212).abs() < 1e-9);
        // At the end of the decay the rate is within 0.7 % of the gap above `after`…
        let last = p.curve().value_before(386.0);
        assert!((last - 1000.0) / gap < 0.007, "{last}");
        assert!((last - 1033.689735).abs() < 1e-6, "{last}");
        // …then steps to `after`.
        assert_eq!(p.value_at(386.0), 1000.0);
        assert_eq!(p.value_at(479.0), 1000.0);
    }

    #[test]
    fn countdown_expected_sessions_per_phase() {
        let p = plan();
        let e = |i: usize| p.expected_arrivals(p.phases[i].start, p.phases[i].end);
        assert_eq!(e(0), 36000.0);
        assert_eq!(e(1), 81900.0);
        assert_eq!(e(2), 360000.0);
        // 1000·180 + 5000·36·(1 − e^−5)
        assert!((e(3) - 358787.1695).abs() < 1e-3, "{}", e(3));
        assert_eq!(e(4), 94000.0);
        let total = p.expected_arrivals(0.0, 480.0);
        assert!((total - 930687.1695).abs() < 1e-3, "{total}");
        // Uniform arrivals: the integral, rounded up at its fractional end.
        assert_eq!(p.arrivals(Segment::WHOLE).count(), 930688);
    }

    #[test]
    fn countdown_uniform_arrivals_in_whole_phases_equal_the_integral() {
        let p = plan();
        let mut per_phase = [0u64; 5];
        for a in p.arrivals(Segment::WHOLE) {
            per_phase[p.phase_index_at(a.t)] += 1;
        }
        assert_eq!(per_phase[0], 36000);
        assert_eq!(per_phase[1], 81900);
        assert_eq!(per_phase[2], 360000);
    }

    #[test]
    fn countdown_zero_length_phases_are_left_out() {
        let mut l = design_countdown(Arrivals::Uniform);
        let c = l.countdown.as_mut().unwrap();
        c.sale_start = At::Offset(d(0));
        c.end = At::Offset(d(266));
        let p = Plan::compile(&l, &PlanOptions::default()).unwrap();
        let names: Vec<&str> = p.phases.iter().map(|ph| ph.name.as_str()).collect();
        assert_eq!(names, ["rise", "peak", "decay"]);
        assert_eq!(p.phases[0].start, 0.0);
        assert_eq!(p.value_at(0.0), 300.0);
    }

    #[test]
    fn countdown_end_before_decay_end_is_an_error() {
        let mut l = design_countdown(Arrivals::Uniform);
        l.countdown.as_mut().unwrap().end = At::Offset(d(300));
        let e = Plan::compile(&l, &PlanOptions::default()).unwrap_err();
        assert!(e.contains("6m26s"), "{e}");
    }

    #[test]
    fn countdown_instants_resolve_against_the_start() {
        let start = Utc.with_ymd_and_hms(2026, 11, 10, 15, 58, 0).unwrap();
        let mut l = design_countdown(Arrivals::Uniform);
        let c = l.countdown.as_mut().unwrap();
        c.sale_start = At::Instant(Utc.with_ymd_and_hms(2026, 11, 10, 16, 0, 0).unwrap().into());
        c.end = At::Instant(Utc.with_ymd_and_hms(2026, 11, 10, 16, 6, 0).unwrap().into());
        let opts = PlanOptions {
            start,
            ..PlanOptions::default()
        };
        let p = Plan::compile(&l, &opts).unwrap();
        assert_eq!(p.sale_start, Some(120.0));
        assert_eq!(p.duration, 480.0);

        let late = PlanOptions {
            start: Utc.with_ymd_and_hms(2026, 11, 10, 16, 0, 1).unwrap(),
            ..PlanOptions::default()
        };
        let e = Plan::compile(&l, &late).unwrap_err();
        assert!(e.contains("sale_start") && e.contains("in the past"), "{e}");
    }

    #[test]
    fn countdown_scale_and_time_scale() {
        let opts = PlanOptions {
            scale: 0.01,
            time_scale: 0.5,
            ..PlanOptions::default()
        };
        let p = Plan::compile(&design_countdown(Arrivals::Uniform), &opts).unwrap();
        assert_eq!(p.sale_start, Some(60.0));
        assert_eq!(p.duration, 240.0);
        assert_eq!(p.peak(), (60.0, 73.0));
        assert_eq!(p.max_users, Some(500));
        // before: 3/s for 60 s
        assert_eq!(p.expected_arrivals(0.0, 60.0), 180.0);
        let total = p.expected_arrivals(0.0, 240.0);
        assert!((total - 930687.1695 * 0.005).abs() < 1e-5, "{total}");
    }
}
