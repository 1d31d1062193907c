//! `flashcrowd compare BASE_DIR NEW_DIR [--fail-on EXPR]... [--out DIR] [--verbose]`.

use super::{Failure, Outcome};
use crate::cli::CompareArgs;
use crate::compare;

pub fn compare(a: CompareArgs) -> Outcome {
    let conds = a
        .fail_on
        .iter()
        .map(|s| compare::parse_fail_on(s).map_err(|e| Failure::BadInput(format!("--fail-on {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let base = compare::load(&a.base).map_err(|e| Failure::BadInput(format!("base run: {e:#}")))?;
    let new = compare::load(&a.new).map_err(|e| Failure::BadInput(format!("new run: {e:#}")))?;
    let mut c = compare::compare(&base, &new);
    compare::apply_fail_on(&mut c, &conds).map_err(|e| Failure::BadInput(format!("{e:#}")))?;
    let out = a.out.clone().unwrap_or_else(|| a.new.join("compare"));
    let written = compare::write(&c, &base, &new, &out)
        .map_err(|e| Failure::BadInput(format!("cannot write the comparison: {e:#}")))?;
    print!("{}", compare::render_text(&c, a.verbose));
    if !a.quiet {
        for p in written {
            println!("  wrote {}", p.display());
        }
    }
    Ok(if c.fail_on.iter().any(|f| f.holds) {
        1
    } else {
        0
    })
}
