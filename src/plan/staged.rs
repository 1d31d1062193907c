//! The stage arithmetic `stages` (arrival rates) and `users` (user counts) share: a list of
//! jumps, ramps and holds becomes contiguous curve pieces and one phase per stage; the rules a
//! list of stages follows, and its phase names.

use super::curve::{Piece, Shape};
use super::source::LoadSource;
use super::{phase, Model, PlanOptions, Shaped};
use crate::scenario::spans::KeyPath;
use crate::scenario::Issue;
use std::collections::HashMap;

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
        ..Shaped::default()
    }
}

/// A stage of `stages` (rates) or `users` (user counts): what the shared rules need.
pub trait StageKind: Sized {
    /// The key under `load:`.
    const KEY: &'static str;
    /// The key of the level: `rate` or `users`.
    const LEVEL: &'static str;
    /// A level stage, for messages.
    const EXAMPLE: &'static str;
    fn form(&self) -> StageForm;
    fn compile(stages: &[Self], opts: &PlanOptions) -> Result<Shaped, String>;
}

impl<T: StageKind> LoadSource for Vec<T> {
    fn key(&self) -> &'static str {
        T::KEY
    }

    fn check(&self, at: &KeyPath, issues: &mut Vec<Issue>) {
        let forms: Vec<StageForm> = self.iter().map(T::form).collect();
        check_forms(at, T::LEVEL, T::EXAMPLE, &forms, issues);
    }

    fn phase_names(&self) -> Vec<String> {
        staged_names(self.iter().map(|s| s.form().name))
    }

    fn compile(&self, opts: &PlanOptions) -> Result<Shaped, String> {
        T::compile(self, opts)
    }
}

/// Phase names of stages: each stage's `name`, else `stage-N` (N counts stages from 1).
fn staged_names(names: impl Iterator<Item = Option<String>>) -> Vec<String> {
    names
        .enumerate()
        .map(|(i, n)| n.unwrap_or_else(|| format!("stage-{}", i + 1)))
        .collect()
}

/// The shape of one stage, whatever its model (rates or users).
pub struct StageForm {
    /// `rate` (stages) or `users` (users) is set.
    pub level: bool,
    pub for_: Option<std::time::Duration>,
    pub to: bool,
    pub over: Option<std::time::Duration>,
    pub hold: Option<std::time::Duration>,
    pub name: Option<String>,
}

/// Each stage is exactly one form, lasts longer than 0s and has a unique name; the first is not
/// a hold.
fn check_forms(
    p: &KeyPath,
    level_key: &str,
    example: &str,
    forms: &[StageForm],
    issues: &mut Vec<Issue>,
) {
    if forms.is_empty() {
        issues.push(
            Issue::at(p.clone(), "the list of stages is empty")
                .help(format!("add a stage like {example}")),
        );
        return;
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, f) in forms.iter().enumerate() {
        let sp = p.index(i);
        let groups: Vec<&str> = [
            ("level", f.level || f.for_.is_some()),
            ("ramp", f.to || f.over.is_some()),
            ("hold", f.hold.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect();
        let forms_help =
            format!("a stage is one of {example}, {{ to, over }} (a linear ramp) or {{ hold }}");
        match groups.as_slice() {
            [] => {
                issues.push(Issue::at(sp.clone(), "this stage is empty").help(forms_help));
                continue;
            }
            [_] => {}
            _ => {
                issues.push(Issue::at(sp.clone(), "this stage mixes stage forms").help(forms_help));
                continue;
            }
        }
        let zero = |d: Option<std::time::Duration>| d.is_some_and(|d| d.is_zero());
        match groups[0] {
            "level" if !f.level => issues.push(
                Issue::at(sp.key("for"), format!("`for` needs `{level_key}`"))
                    .on_key()
                    .help(forms_help),
            ),
            "level" if f.for_.is_none() => issues.push(
                Issue::at(
                    sp.key(level_key),
                    format!("`{level_key}` needs `for`: how long to keep it"),
                )
                .on_key()
                .help(forms_help),
            ),
            "ramp" if !f.to => issues.push(
                Issue::at(sp.key("over"), "`over` needs `to`: the value to ramp to")
                    .on_key()
                    .help(forms_help),
            ),
            "ramp" if f.over.is_none() => issues.push(
                Issue::at(sp.key("to"), "`to` needs `over`: how long the ramp takes")
                    .on_key()
                    .help(forms_help),
            ),
            "hold" if i == 0 => issues.push(
                Issue::at(
                    sp.key("hold"),
                    "the first stage cannot be { hold }: there is nothing to hold yet",
                )
                .on_key()
                .help(format!(
                    "start with {example} or a ramp from 0 like {{ to: …, over: 10s }}"
                )),
            ),
            _ => {}
        }
        for (key, d) in [("for", f.for_), ("over", f.over), ("hold", f.hold)] {
            if zero(d) {
                issues.push(Issue::at(
                    sp.key(key),
                    format!("`{key}` must be longer than 0s"),
                ));
            }
        }
        if let Some(n) = &f.name {
            if let Some(first) = names.get(n.as_str()) {
                issues.push(
                    Issue::at(
                        sp.key("name"),
                        format!(
                            "the stage name `{n}` is already used by stage {}",
                            first + 1
                        ),
                    )
                    .help("phase names must be unique: thresholds and `during` refer to them"),
                );
            } else {
                names.insert(n, i);
            }
        }
    }
}
