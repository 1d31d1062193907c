//! The piecewise curve every load shape compiles into: constant pieces, linear ramps,
//! exponential decays and sums of them (a calendar's overlapping spikes), each with a closed-form
//! value and integral, and the inverse of the cumulative integral that places arrivals.
//!
//! This file owns the calculus only. It knows nothing about phases, scenarios, segments or
//! random numbers; `mod.rs` builds arrivals on top of `Curve::inverse`.

/// The shape of one piece between its start `t0` and end `t1` (seconds from the run start).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `v` throughout.
    Const { v: f64 },
    /// Linear from `v0` at `t0` to `v1` at `t1`.
    Linear { v0: f64, v1: f64 },
    /// `base + gap·e^(−(t−t0)/tau)`: starts at `base + gap` and decays towards `base`.
    Exp { base: f64, gap: f64, tau: f64 },
    /// `v0 + (v1 − v0)·(t−t0)/len + Σ gapₖ·e^(−(t−t0)/tauₖ)`: a ramp with decays on top, where
    /// spikes overlap. Every `gap` is non-negative, so the value is convex and peaks at an end.
    Layered {
        v0: f64,
        v1: f64,
        decays: Vec<Decay>,
    },
}

/// One exponential term of a `Layered` piece: `gap·e^(−s/tau)`, `s` seconds into the piece.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decay {
    pub gap: f64,
    pub tau: f64,
}

impl Shape {
    /// The simplest shape for a ramp from `v0` to `v1` with `decays` on top: `Const`, `Linear`,
    /// `Exp` (one decay over a level), else `Layered`. Decays with no gap are dropped.
    pub fn layered(v0: f64, v1: f64, mut decays: Vec<Decay>) -> Shape {
        decays.retain(|d| d.gap != 0.0);
        match decays.as_slice() {
            [] if v0 == v1 => Shape::Const { v: v0 },
            [] => Shape::Linear { v0, v1 },
            [d] if v0 == v1 => Shape::Exp {
                base: v0,
                gap: d.gap,
                tau: d.tau,
            },
            _ => Shape::Layered { v0, v1, decays },
        }
    }
}

/// One piece of a curve: `[t0, t1)` and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub t0: f64,
    pub t1: f64,
    pub shape: Shape,
}

impl Piece {
    pub fn len(&self) -> f64 {
        self.t1 - self.t0
    }

    /// The value `s` seconds into the piece.
    pub fn value(&self, s: f64) -> f64 {
        match self.shape {
            Shape::Const { v } => v,
            Shape::Linear { v0, v1 } => v0 + (v1 - v0) * s / self.len(),
            Shape::Exp { base, gap, tau } => base + gap * (-s / tau).exp(),
            Shape::Layered { v0, v1, ref decays } => {
                v0 + (v1 - v0) * s / self.len()
                    + decays
                        .iter()
                        .map(|d| d.gap * (-s / d.tau).exp())
                        .sum::<f64>()
            }
        }
    }

    /// The integral of the value over the first `s` seconds of the piece.
    pub fn integral(&self, s: f64) -> f64 {
        match self.shape {
            Shape::Const { v } => v * s,
            // The trapezoid s·(v0 + v(s))/2; written with s/len so a whole piece is exact.
            Shape::Linear { v0, v1 } => s * (2.0 * v0 + (v1 - v0) * (s / self.len())) / 2.0,
            // ∫ base + gap·e^(−u/τ) du = base·s + gap·τ·(1 − e^(−s/τ)); expm1 keeps it exact near 0.
            Shape::Exp { base, gap, tau } => base * s - gap * tau * (-s / tau).exp_m1(),
            Shape::Layered { v0, v1, ref decays } => {
                s * (2.0 * v0 + (v1 - v0) * (s / self.len())) / 2.0
                    - decays
                        .iter()
                        .map(|d| d.gap * d.tau * (-s / d.tau).exp_m1())
                        .sum::<f64>()
            }
        }
    }

    /// The `s` in `[0, len]` where `integral(s) == y`, for `0 <= y <= integral(len)`.
    pub fn inverse(&self, y: f64) -> f64 {
        if y <= 0.0 {
            return 0.0;
        }
        let len = self.len();
        let s = match self.shape {
            Shape::Const { v } => y / v,
            Shape::Linear { v0, v1 } => {
                // a·s² + b·s = y with a = (v1 − v0)/(2·len), b = v0. The form 2y/(b + √(b² + 4ay))
                // avoids cancellation for both rising and falling ramps.
                let a = (v1 - v0) / (2.0 * len);
                let b = v0;
                if a == 0.0 {
                    y / b
                } else {
                    let disc = (b * b + 4.0 * a * y).max(0.0);
                    2.0 * y / (b + disc.sqrt())
                }
            }
            Shape::Exp { .. } | Shape::Layered { .. } => self.inverse_newton(y),
        };
        s.clamp(0.0, len)
    }

    /// Safeguarded Newton: the integral is monotone (its derivative is the non-negative value),
    /// so a bracket `[lo, hi]` always holds the root and bisection takes over when Newton strays.
    fn inverse_newton(&self, y: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, self.len());
        let v0 = self.value(0.0);
        let mut s = if v0 > 0.0 { (y / v0).min(hi) } else { hi / 2.0 };
        for _ in 0..100 {
            let f = self.integral(s) - y;
            if f == 0.0 {
                return s;
            }
            if f > 0.0 {
                hi = s;
            } else {
                lo = s;
            }
            let d = self.value(s);
            let mut next = if d > 0.0 { s - f / d } else { f64::NAN };
            if !(next > lo && next < hi) {
                next = 0.5 * (lo + hi);
            }
            if (next - s).abs() <= 1e-13 * self.t1.abs().max(1.0) {
                return next;
            }
            s = next;
        }
        s
    }
}

/// Contiguous pieces covering `[0, duration)`, with the cumulative integral at each piece start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curve {
    pieces: Vec<Piece>,
    /// `cum[i]` = integral from 0 to `pieces[i].t0`; one more entry for the end.
    cum: Vec<f64>,
}

impl Curve {
    /// Builds a curve from pieces laid end to end, starting at 0. Zero-length pieces are dropped.
    pub fn new(pieces: Vec<Piece>) -> Curve {
        let pieces: Vec<Piece> = pieces.into_iter().filter(|p| p.t1 > p.t0).collect();
        let mut cum = Vec::with_capacity(pieces.len() + 1);
        let mut acc = 0.0;
        cum.push(acc);
        for p in &pieces {
            acc += p.integral(p.len());
            cum.push(acc);
        }
        Curve { pieces, cum }
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    pub fn duration(&self) -> f64 {
        self.pieces.last().map_or(0.0, |p| p.t1)
    }

    /// The integral over the whole curve.
    pub fn total(&self) -> f64 {
        *self.cum.last().unwrap_or(&0.0)
    }

    fn piece_at(&self, t: f64) -> Option<usize> {
        if !(t >= 0.0 && t < self.duration()) {
            return None;
        }
        // The first piece whose end lies beyond t.
        Some(self.pieces.partition_point(|p| p.t1 <= t))
    }

    /// The value at `t`; 0 outside `[0, duration)`.
    pub fn value_at(&self, t: f64) -> f64 {
        match self.piece_at(t) {
            Some(i) => {
                let p = &self.pieces[i];
                p.value(t - p.t0)
            }
            None => 0.0,
        }
    }

    /// The value just before `t` (the left limit), used for the end of a phase.
    pub fn value_before(&self, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        let t = t.min(self.duration());
        let i = self.pieces.partition_point(|p| p.t1 < t);
        match self.pieces.get(i) {
            Some(p) => p.value(t - p.t0),
            None => 0.0,
        }
    }

    /// The cumulative integral Λ(t) from 0 to `t`, clamped to `[0, duration]`.
    pub fn cumulative(&self, t: f64) -> f64 {
        if t <= 0.0 || self.pieces.is_empty() {
            return 0.0;
        }
        if t >= self.duration() {
            return self.total();
        }
        let i = self.pieces.partition_point(|p| p.t1 <= t);
        let p = &self.pieces[i];
        self.cum[i] + p.integral(t - p.t0)
    }

    /// The first instant where Λ passes `y` with a positive value (pieces that add nothing are
    /// skipped), for `0 <= y < total()`. `cursor` is a piece index to start searching from; it is
    /// advanced so that increasing `y`s cost O(1) each.
    pub fn inverse(&self, y: f64, cursor: &mut usize) -> Option<f64> {
        if *cursor > 0 && self.cum[*cursor] > y {
            *cursor = 0; // y went backwards: search from the start
        }
        while *cursor < self.pieces.len() && self.cum[*cursor + 1] <= y {
            *cursor += 1;
        }
        let p = self.pieces.get(*cursor)?;
        Some((p.t0 + p.inverse(y - self.cum[*cursor])).min(p.t1))
    }

    /// The curve as a polyline for drawing: both ends of every piece (so steps stay vertical) and
    /// `exp_samples` points inside each exponential piece.
    pub fn outline(&self, exp_samples: usize) -> Vec<(f64, f64)> {
        let mut pts = Vec::new();
        for p in &self.pieces {
            pts.push((p.t0, p.value(0.0)));
            if let Shape::Exp { .. } | Shape::Layered { .. } = p.shape {
                for k in 1..exp_samples {
                    let s = p.len() * k as f64 / exp_samples as f64;
                    pts.push((p.t0 + s, p.value(s)));
                }
            }
            pts.push((p.t1, p.value(p.len())));
        }
        pts
    }

    /// The highest value and the first instant it is reached.
    pub fn peak(&self) -> (f64, f64) {
        let mut best = (0.0, 0.0);
        for p in &self.pieces {
            let (v, t) = match p.shape {
                Shape::Const { v } => (v, p.t0),
                Shape::Linear { v0, v1 } if v1 > v0 => (v1, p.t1),
                Shape::Linear { v0, .. } => (v0, p.t0),
                Shape::Exp { base, gap, .. } if gap >= 0.0 => (base + gap, p.t0),
                Shape::Exp { .. } => (p.value(p.len()), p.t1),
                // Convex: the highest value is at one end.
                Shape::Layered { .. } => {
                    let (a, b) = (p.value(0.0), p.value(p.len()));
                    if a >= b {
                        (a, p.t0)
                    } else {
                        (b, p.t1)
                    }
                }
            };
            if v > best.0 {
                best = (v, t);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(shape: Shape, len: f64) -> Piece {
        Piece {
            t0: 0.0,
            t1: len,
            shape,
        }
    }

    #[test]
    fn linear_ramp_integral_and_inverse_are_exact() {
        let p = one(
            Shape::Linear {
                v0: 0.0,
                v1: 1000.0,
            },
            10.0,
        );
        assert_eq!(p.integral(10.0), 5000.0);
        assert_eq!(p.integral(5.0), 1250.0);
        assert_eq!(p.inverse(1250.0), 5.0);
        assert_eq!(p.inverse(5000.0), 10.0);
    }

    #[test]
    fn falling_ramp_inverse_round_trips() {
        let p = one(
            Shape::Linear {
                v0: 900.0,
                v1: 100.0,
            },
            8.0,
        );
        assert_eq!(p.integral(8.0), 4000.0);
        for s in [0.0, 0.5, 3.0, 7.9, 8.0] {
            let back = p.inverse(p.integral(s));
            assert!((back - s).abs() < 1e-9, "{s} -> {back}");
        }
    }

    #[test]
    fn exponential_integral_is_closed_form_and_inverse_round_trips() {
        let p = one(
            Shape::Exp {
                base: 1000.0,
                gap: 5000.0,
                tau: 36.0,
            },
            180.0,
        );
        let expected = 1000.0 * 180.0 + 5000.0 * 36.0 * (1.0 - (-5.0f64).exp());
        assert!((p.integral(180.0) - expected).abs() < 1e-6);
        for s in [0.0, 1e-6, 0.25, 36.0, 100.0, 179.999, 180.0] {
            let back = p.inverse(p.integral(s));
            assert!((back - s).abs() < 1e-9, "{s} -> {back}");
        }
    }

    #[test]
    fn inverse_skips_pieces_that_add_nothing() {
        let c = Curve::new(vec![
            Piece {
                t0: 0.0,
                t1: 10.0,
                shape: Shape::Const { v: 0.0 },
            },
            Piece {
                t0: 10.0,
                t1: 12.0,
                shape: Shape::Const { v: 4.0 },
            },
        ]);
        let mut cur = 0;
        assert_eq!(c.inverse(0.0, &mut cur), Some(10.0));
        assert_eq!(c.inverse(2.0, &mut cur), Some(10.5));
        assert_eq!(c.inverse(8.0, &mut cur), None);
    }

    #[test]
    fn value_before_is_the_left_limit() {
        let c = Curve::new(vec![
            Piece {
                t0: 0.0,
                t1: 10.0,
                shape: Shape::Linear { v0: 0.0, v1: 100.0 },
            },
            Piece {
                t0: 10.0,
                t1: 20.0,
                shape: Shape::Const { v: 5.0 },
            },
        ]);
        assert_eq!(c.value_before(10.0), 100.0);
        assert_eq!(c.value_at(10.0), 5.0);
        assert_eq!(c.value_before(20.0), 5.0);
        assert_eq!(c.value_at(20.0), 0.0);
    }
}
