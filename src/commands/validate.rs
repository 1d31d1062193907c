//! `flashcrowd validate FILE...`: parses and checks each scenario and prints `ok: FILE (name)` for
//! a good one or its located diagnostics for a bad one; `--threshold EXPR` checks command-line
//! thresholds against each scenario as `run` would. Exit code 2 when any file is bad.
//!
//! All the checking lives in `scenario`; this command only reports. It sends no traffic.

use super::{Failure, Outcome};

pub fn validate(a: crate::cli::ValidateArgs) -> Outcome {
    let mut bad = 0;
    for path in &a.scenarios {
        match crate::scenario::load(path, &a.opts.all_sets()) {
            Ok(l) => {
                let problems: Vec<String> = a
                    .thresholds
                    .iter()
                    .filter_map(|t| crate::scenario::check_threshold(&l, t).err())
                    .collect();
                if problems.is_empty() {
                    println!("ok: {} ({})", path.display(), l.scenario.name);
                    // What the plan does with its waits (at --scale 1), when it has any.
                    let waits = l.scenario.journeys.values().any(|j| {
                        j.steps
                            .iter()
                            .any(|s| s.wait.is_some() || s.rendezvous.is_some())
                    });
                    let opts = crate::plan::PlanOptions::for_scenario(&l);
                    let plan = waits
                        .then(|| crate::plan::Plan::compile(&l.scenario.load, &opts).ok())
                        .flatten();
                    if let Some(plan) = plan {
                        for w in super::plan::wait_warnings(&l, &plan) {
                            eprintln!("{w}");
                        }
                    }
                } else {
                    for p in problems {
                        eprintln!("error: --threshold {p}\n  --> {}", path.display());
                    }
                    bad += 1;
                }
            }
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
