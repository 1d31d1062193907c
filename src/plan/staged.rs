//! The stage arithmetic `stages` (arrival rates) and `users` (user counts) share: a list of
//! jumps, ramps and holds becomes contiguous curve pieces and one phase per stage.

use super::curve::{Piece, Shape};
use super::{phase, Model, Shaped};

/// One stage, normalized: `{rate|users, for}` → Jump(value, seconds), `{to, over}` →
/// Ramp(value, seconds) from the previous value (0 before the first stage), `{hold}` →
/// Hold(seconds) at the previous value.
pub(crate) enum Form {
    Jump(f64, f64),
    Ramp(f64, f64),
    Hold(f64),
}

/// Lays stages end to end; a stage without a name is `stage-N` (1-based).
pub(crate) fn staged(model: Model, stages: Vec<(Form, Option<String>)>) -> Shaped {
    let mut pieces = Vec::with_capacity(stages.len());
    let mut phases = Vec::with_capacity(stages.len());
    let (mut t, mut prev) = (0.0, 0.0);
    for (i, (form, name)) in stages.into_iter().enumerate() {
        let (len, shape, next) = match form {
            Form::Jump(v, len) => (len, Shape::Const { v }, v),
            Form::Ramp(v1, len) => (len, Shape::Linear { v0: prev, v1 }, v1),
            Form::Hold(len) => (len, Shape::Const { v: prev }, prev),
        };
        let name = name.unwrap_or_else(|| format!("stage-{}", i + 1));
        pieces.push(Piece {
            t0: t,
            t1: t + len,
            shape,
        });
        phases.push(phase(name, t, t + len));
        t += len;
        prev = next;
    }
    Shaped {
        model,
        pieces,
        phases,
        sale_start: None,
        drill: None,
        moments: Vec::new(),
    }
}
