//! `flashcrowd capacity RUN_DIR --target-peak 583000/s [--instances N] [--headroom 30%] [--growth 1.07]`.

use super::{Failure, Outcome};
use crate::capacity;
use crate::cli::CapacityArgs;

fn bad(m: String) -> Failure {
    Failure::BadInput(m)
}

pub fn capacity(a: CapacityArgs) -> Outcome {
    let target = crate::scenario::units::parse_rate(&a.target_peak)
        .map_err(|e| bad(format!("--target-peak: {e}")))?;
    if target <= 0.0 {
        return Err(bad("--target-peak: must be above 0/s".into()));
    }
    let headroom =
        capacity::parse_headroom(&a.headroom).map_err(|e| bad(format!("--headroom: {e}")))?;
    if a.instances == 0 {
        return Err(bad("--instances: must be at least 1".into()));
    }
    if let Some(g) = a.growth {
        if g <= 0.0 || !g.is_finite() {
            return Err(bad("--growth: a factor above 0, like 1.07".into()));
        }
    }
    let run = crate::report::load(&a.run_dir).map_err(|e| bad(format!("{e:#}")))?;
    let rep = &run.report;
    let (rate, measured) = match rep.capacity.as_ref().and_then(|c| c.capacity_rate) {
        Some(r) => (r, true),
        None => {
            let good = rep.totals.rate * (1.0 - rep.totals.error_rate);
            if rep.capacity.is_some() {
                eprintln!("flashcrowd: no step of this drill met its SLO; using the achieved rate");
            }
            (good, false)
        }
    };
    if rate <= 0.0 {
        return Err(bad(format!(
            "{}: the run achieved no successful request, so it says nothing about capacity",
            a.run_dir.display()
        )));
    }
    println!(
        "\n  {} ({}): {} {}\n",
        rep.scenario.name,
        a.run_dir.display(),
        if measured {
            "measured capacity"
        } else {
            "achieved rate"
        },
        capacity::fmt_rate(rate)
    );
    if let Some(c) = &rep.capacity {
        println!("  {}\n", capacity::summary_line(c));
    }
    let p = capacity::project(rate, measured, a.instances, target, headroom, a.growth);
    print!("{}", capacity::render_projection(&p));
    Ok(0)
}
