//! `flashcrowd run` and `flashcrowd demo`.

use super::{Failure, Outcome};

pub fn run(_a: crate::cli::RunArgs) -> Outcome {
    Err(Failure::BadInput("run: not built yet".into()))
}

pub fn demo(_a: crate::cli::DemoArgs) -> Outcome {
    Err(Failure::BadInput("demo: not built yet".into()))
}
