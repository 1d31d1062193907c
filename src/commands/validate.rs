//! `flashcrowd validate`.

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
    if bad > 0 {
        Err(Failure::BadInput(format!("{bad} scenario(s) have errors")))
    } else {
        Ok(0)
    }
}
