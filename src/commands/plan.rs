//! `flashcrowd plan`: print a scenario's load plan.

use super::{Failure, Outcome};

pub fn plan(_a: crate::cli::PlanArgs) -> Outcome {
    Err(Failure::BadInput("plan: not built yet".into()))
}
