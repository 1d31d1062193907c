//! `flashcrowd validate FILE...`: parses and checks each scenario and prints `ok: FILE (name)` for
//! a good one or its located diagnostics for a bad one. Exit code 2 when any file is bad.
//!
//! All the checking lives in `scenario`; this command only reports. It sends no traffic.

use super::{Failure, Outcome};

pub fn validate(a: crate::cli::ValidateArgs) -> Outcome {
    let mut bad = 0;
    for path in &a.scenarios {
        match crate::scenario::load(path, &a.opts.sets) {
            Ok(l) => println!("ok: {} ({})", path.display(), l.scenario.name),
            Err(d) => {
                eprint!("{d}");
                bad += 1;
            }
        }
    }
    match bad {
        0 => Ok(0),
        1 if a.scenarios.len() == 1 => Err(Failure::BadInput("the scenario has errors".into())),
        _ => Err(Failure::BadInput(format!(
            "{bad} of {} scenarios have errors",
            a.scenarios.len()
        ))),
    }
}
