//! One function per subcommand. Each returns the process exit code or a `Failure`.

mod capacity;
mod compare;
mod import;
mod merge;
pub mod new;
mod plan;
mod report;
mod run;
mod shop;
mod validate;
mod watch;

use crate::cli::{Cli, Command};
use std::fmt;

/// Why a command failed, and the exit code that says so.
#[derive(Debug)]
pub enum Failure {
    /// Bad input: CLI flags, scenario, files. Exit 2.
    BadInput(String),
    /// The run was aborted or interrupted, or the target was unreachable at start. Exit 3.
    Aborted(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => 2,
            Failure::Aborted(_) => 3,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::BadInput(m) | Failure::Aborted(m) => f.write_str(m.trim_end()),
        }
    }
}

pub type Outcome = Result<u8, Failure>;

pub fn dispatch(cli: Cli) -> Outcome {
    match cli.command {
        Command::Import(a) => import::import(a),
        Command::Validate(a) => validate::validate(a),
        Command::Plan(a) => plan::plan(a),
        Command::Run(a) => run::run(*a),
        Command::Demo(a) => run::demo(a),
        Command::Shop(a) => shop::shop(a),
        Command::Report(a) => report::report(a),
        Command::Compare(a) => compare::compare(a),
        Command::Capacity(a) => capacity::capacity(a),
        Command::Merge(a) => merge::merge(a),
        Command::New(a) => new::new(a),
        Command::Watch(a) => watch::watch(a),
    }
}
