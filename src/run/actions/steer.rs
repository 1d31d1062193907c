//! `steer:` actions: the live-control verbs (`pause`, `resume`, `stop`, `{ rate: 0.5 }`),
//! applied through the same path as `/control/...` and the keyboard, so they land in the
//! timeline as control events too (source `action NAME`).

use super::{ActionKind, Ctx, Done};
use crate::ops::Command;
use crate::scenario::model::SteerSpec;

pub struct SteerAction {
    spec: SteerSpec,
}

impl SteerAction {
    pub fn new(spec: SteerSpec) -> SteerAction {
        SteerAction { spec }
    }

    fn command(&self) -> Command {
        match self.spec {
            SteerSpec::Pause => Command::Pause,
            SteerSpec::Resume => Command::Resume,
            SteerSpec::Stop => Command::Stop,
            SteerSpec::Rate(f) => Command::Factor(f),
        }
    }
}

impl ActionKind for SteerAction {
    fn kind(&self) -> &'static str {
        "steer"
    }

    fn describe(&self) -> String {
        match self.spec {
            SteerSpec::Pause => "steer pause".into(),
            SteerSpec::Resume => "steer resume".into(),
            SteerSpec::Stop => "steer stop".into(),
            SteerSpec::Rate(f) => format!("steer rate {}", crate::ops::fmt_num(f)),
        }
    }

    fn perform(&self, ctx: &Ctx) -> Done {
        match ctx
            .steer
            .apply(self.command(), &format!("action {}", ctx.name))
        {
            Ok(detail) => Done {
                ok: true,
                result: detail,
            },
            Err(e) => Done {
                ok: false,
                result: e,
            },
        }
    }
}
