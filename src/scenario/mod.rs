//! The scenario language: reading a YAML file into a checked `Scenario`, with every problem
//! reported at its file, line and column.
//!
//! This layer owns parsing, units and validation. It sends no traffic and compiles no plan.
//!
//! API CONTRACT: `load(path, sets)` and `load_str(name, text, sets)` return a `Loaded` or
//! `Diagnostics` (all problems found; rendered with the offending line and a caret).

pub mod model;
pub mod units;

pub use model::Scenario;

use std::fmt;
use std::path::{Path, PathBuf};

/// A scenario that parsed and validated, with what later stages need to know about its file.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scenario: Scenario,
    /// The file as given (for messages and reports).
    pub file: PathBuf,
    /// Directory that relative paths (CSV, CA files) resolve against.
    pub base_dir: PathBuf,
    /// The raw text, as read.
    pub source: String,
    /// sha256 of the raw text, hex.
    pub sha256: String,
}

/// One problem in a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem has no place in the file (e.g. an unreadable file).
    pub line: usize,
    /// 1-based.
    pub column: usize,
    pub message: String,
    /// A hint: a did-you-mean or how to fix it.
    pub help: Option<String>,
    /// The offending source line, if known.
    pub snippet: Option<String>,
}

/// All problems found in one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            writeln!(f, "error: {}", self.message)?;
            writeln!(f, "  --> {}:{}:{}", self.file, self.line, self.column)?;
            if let Some(s) = &self.snippet {
                let num = self.line.to_string();
                writeln!(f, "{} |", " ".repeat(num.len()))?;
                writeln!(f, "{num} | {s}")?;
                writeln!(
                    f,
                    "{} | {}^",
                    " ".repeat(num.len()),
                    " ".repeat(self.column.saturating_sub(1))
                )?;
            }
        } else {
            writeln!(f, "error: {}: {}", self.file, self.message)?;
        }
        if let Some(h) = &self.help {
            writeln!(f, "  = help: {h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Reads, parses and validates a scenario file. `sets` are `--set key.path=value` overrides.
pub fn load(path: &Path, sets: &[String]) -> Result<Loaded, Diagnostics> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: name.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the scenario: {e}"),
            help: None,
            snippet: None,
        }])
    })?;
    let mut loaded = load_str(&name, &text, sets)?;
    loaded.base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(loaded)
}

/// Parses and validates scenario text. `name` is used in messages.
pub fn load_str(name: &str, text: &str, _sets: &[String]) -> Result<Loaded, Diagnostics> {
    use sha2::Digest;
    let scenario: Scenario = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        Diagnostics(vec![Diagnostic {
            file: name.to_string(),
            line,
            column,
            message: e.to_string(),
            help: None,
            snippet: text.lines().nth(line.saturating_sub(1)).map(str::to_string),
        }])
    })?;
    Ok(Loaded {
        scenario,
        file: PathBuf::from(name),
        base_dir: PathBuf::from("."),
        source: text.to_string(),
        sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
    })
}
