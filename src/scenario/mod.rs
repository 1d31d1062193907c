//! The scenario language: reading a YAML file into a checked `Scenario`, with every problem
//! reported at its file, line and column.
//!
//! This layer owns parsing, units and validation. It sends no traffic and compiles no plan.
//!
//! API CONTRACT: `load(path, sets)` and `load_str(name, text, sets)` return a `Loaded` or
//! `Diagnostics` (all problems found; rendered with the offending line and a caret).
//!
//! The stages, in order: bytes → UTF-8 text (`load`) → span index and hostile-input checks
//! (`spans`) → a `serde_yaml::Value` tree → `--set` and `${env:…}` (`overrides`) → typed reading
//! with key paths (`de`) → rules beyond types (`validate`). Every problem carries a key path that
//! the span index turns into a line and column.

pub mod de;
pub mod model;
pub mod network;
pub mod overrides;
mod pitfalls;
pub mod redact;
pub mod series;
pub mod spans;
pub mod units;
pub mod validate;

pub use validate::{check_threshold, phase_names, request_name};

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
    /// The raw text, as read (`${env:…}` references unexpanded).
    pub source: String,
    /// sha256 of the raw text, hex.
    pub sha256: String,
    /// Values substituted for `${env:…}` references: reports redact them.
    pub secrets: Vec<String>,
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

/// A problem found after parsing, placed by key path; the loader turns it into a `Diagnostic`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: spans::KeyPath,
    /// Point at the key rather than its value.
    pub on_key: bool,
    /// A byte offset inside the string value at `path` (a template or expression error), with
    /// that string, so that the caret can point into it when the file writes it plainly.
    pub within: Option<(String, usize)>,
    pub message: String,
    pub help: Option<String>,
}

impl Issue {
    pub fn at(path: spans::KeyPath, message: impl Into<String>) -> Issue {
        Issue {
            path,
            on_key: false,
            within: None,
            message: message.into(),
            help: None,
        }
    }

    pub fn on_key(mut self) -> Issue {
        self.on_key = true;
        self
    }

    pub fn help(mut self, h: impl Into<String>) -> Issue {
        self.help = Some(h.into());
        self
    }

    pub fn help_opt(mut self, h: Option<String>) -> Issue {
        self.help = h;
        self
    }

    pub fn within(mut self, text: &str, offset: usize) -> Issue {
        self.within = Some((text.to_string(), offset));
        self
    }
}

/// "did you mean `x`?" for the candidate closest to `word`, if one is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Reads, parses and validates a scenario file. `sets` are `--set key.path=value` overrides.
pub fn load(path: &Path, sets: &[String]) -> Result<Loaded, Diagnostics> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: name.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the scenario: {e}"),
            help: None,
            snippet: None,
        }])
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let text = decode(&name, &bytes)?;
    load_text(&name, &text, &base_dir, sets, &|n| std::env::var(n).ok())
}

/// Parses and validates scenario text. `name` is used in messages; relative paths (CSV files)
/// resolve against the current directory.
pub fn load_str(name: &str, text: &str, sets: &[String]) -> Result<Loaded, Diagnostics> {
    load_text(name, text, Path::new("."), sets, &|n| std::env::var(n).ok())
}

/// Like `load_str`, with relative paths resolved against `base_dir` and environment variables
/// read through `env` (tests pass a fixed map).
pub fn load_str_in(
    name: &str,
    text: &str,
    base_dir: &Path,
    sets: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Diagnostics> {
    load_text(name, text, base_dir, sets, env)
}

/// The bytes as UTF-8 text, or a diagnostic saying where they stop being UTF-8.
fn decode(name: &str, bytes: &[u8]) -> Result<String, Diagnostics> {
    let one = |line, column, message: String, help: &str, snippet| {
        Diagnostics(vec![Diagnostic {
            file: name.to_string(),
            line,
            column,
            message,
            help: Some(help.to_string()),
            snippet,
        }])
    };
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(one(
            1,
            1,
            "the file is UTF-16 text; scenarios are UTF-8".into(),
            "save the file as UTF-8",
            None,
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(t) => Ok(t.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            let good = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let line = good.matches('\n').count() + 1;
            let line_start = good.rfind('\n').map(|i| i + 1).unwrap_or(0);
            let column = good[line_start..].chars().count() + 1;
            let line_end = bytes[at..]
                .iter()
                .position(|b| *b == b'\n')
                .map(|i| at + i)
                .unwrap_or(bytes.len());
            let snippet = String::from_utf8_lossy(&bytes[line_start..line_end]).into_owned();
            Err(one(
                line,
                column,
                format!(
                    "the file is not UTF-8 text: byte 0x{:02X} at byte offset {at} (line {line}, column {column}) is not valid UTF-8",
                    bytes[at]
                ),
                "save the file as UTF-8 (iconv -f LATIN1 -t UTF-8, or your editor's \"save with encoding\")",
                Some(snippet),
            ))
        }
    }
}

/// Turns key paths into file positions and renders problems as diagnostics.
struct Locator<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    spans: &'a spans::SpanIndex,
    /// Paths set by `--set`, with the argument that set them.
    sets: Vec<(spans::KeyPath, String)>,
    secrets: &'a [String],
}

impl Locator<'_> {
    fn diag(&self, issue: Issue) -> Diagnostic {
        let redact = |s: String| {
            self.secrets
                .iter()
                .filter(|x| x.len() >= 3)
                .fold(s, |acc, x| acc.replace(x.as_str(), "<redacted>"))
        };
        let Issue {
            path,
            on_key,
            within,
            mut message,
            help,
        } = issue;
        if let Some((_, arg)) = self.sets.iter().find(|(p, _)| path.starts_with(p)) {
            return Diagnostic {
                file: self.file.to_string(),
                line: 0,
                column: 0,
                message: redact(format!("{message} (at `{path}`, from --set {arg})")),
                help: help.map(redact),
                snippet: None,
            };
        }
        let (line, column) = match self.spans.nearest(&path) {
            Some((span, exact)) => {
                let base = if on_key && exact {
                    span.key.unwrap_or(span.value)
                } else {
                    span.value
                };
                let mut col = base.column;
                if let (true, Some((text, offset))) = (exact && !on_key, &within) {
                    col = self.column_within(span, text, *offset).unwrap_or(col);
                }
                if !exact {
                    message = format!("{message} (in `{path}`)");
                }
                (base.line, col)
            }
            None => (1, 1),
        };
        Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message: redact(message),
            help: help.map(redact),
            snippet: self.lines.get(line.wrapping_sub(1)).map(|s| s.to_string()),
        }
    }

    /// The column of byte `offset` of the string `text` written at `span`, when the file writes it
    /// on one line without escapes; None otherwise.
    fn column_within(&self, span: &spans::Span, text: &str, offset: usize) -> Option<usize> {
        let quote = match span.style {
            spans::Style::Plain => 0,
            spans::Style::SingleQuoted | spans::Style::DoubleQuoted => 1,
            _ => return None,
        };
        let line = self.lines.get(span.value.line.checked_sub(1)?)?;
        let start: usize = line
            .char_indices()
            .nth(span.value.column - 1 + quote)
            .map(|(i, _)| i)?;
        let prefix = text.get(..offset)?;
        if !line[start..].starts_with(prefix) {
            return None;
        }
        Some(span.value.column + quote + prefix.chars().count())
    }
}

fn de_issue(e: de::DeError) -> Issue {
    let path = e.path.clone().unwrap_or_default();
    let where_ = if path.0.len() <= 1 {
        "at the top level".to_string()
    } else {
        format!(
            "in `{}`",
            spans::KeyPath(path.0[..path.0.len() - 1].to_vec())
        )
    };
    match &e.unknown {
        Some((word, expected)) if e.on_key => {
            let help = pitfalls::missing_space_help(word, expected)
                .or_else(|| did_you_mean(word, expected.iter().copied()))
                .unwrap_or_else(|| {
                    format!(
                        "the keys allowed here are {}",
                        expected
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            Issue::at(path, format!("{} {where_}", e.message))
                .on_key()
                .help(help)
        }
        Some((word, expected)) => Issue::at(path, e.message.clone())
            .help_opt(did_you_mean(word, expected.iter().copied())),
        None => Issue {
            on_key: e.on_key,
            help: pitfalls::string_for_mapping_help(&e.message),
            ..Issue::at(path, e.message.clone())
        },
    }
}

/// The message for a flow collection cut short by a comment: what is wrong on the line shown,
/// and what the parser said where it noticed.
fn cut_flow_message(noticed: usize, parser: &str) -> String {
    let parser = parser.split(" at line ").next().unwrap_or(parser);
    format!(
        "a comment cuts this line's braces short (the parser noticed on line {noticed}: {parser})"
    )
}

/// A help line for a YAML syntax error at `line`:`column` (1-based): a value to quote on that
/// line, or a comment inside a flow collection that cut it short. The parser notices a flow
/// collection cut by a comment only on a later line, so the place to fix is returned as well when
/// it is another line: the line and column of the ` #`.
fn syntax_help(
    lines: &[&str],
    line: usize,
    column: usize,
) -> Option<(String, Option<(usize, usize)>)> {
    let here = lines.get(line.wrapping_sub(1));
    if let Some(h) = here.and_then(|l| pitfalls::syntax_help(l, column)) {
        return Some((h, None));
    }
    if let Some(h) = here.and_then(|l| pitfalls::comment_in_flow_help(l)) {
        return Some((h, None));
    }
    // The lines above, nearest first, up to the start of the block the error is in.
    (1..line.min(6)).find_map(|back| {
        let l = lines.get(line - back - 1)?;
        let h = pitfalls::comment_in_flow_help(l)?;
        let hash = l
            .find(" #")
            .map(|b| l[..b].chars().count() + 2)
            .unwrap_or(1);
        Some((h, Some((line - back, hash))))
    })
}

/// Removes the deepest mapping key on `path` so that reading can go on past a type error.
fn remove_for_retry(tree: &mut serde_yaml::Value, path: &spans::KeyPath) -> Option<spans::KeyPath> {
    let last_key = path
        .0
        .iter()
        .rposition(|s| matches!(s, spans::Seg::Key(_)))?;
    let mut cur = tree;
    for seg in &path.0[..last_key] {
        cur = match seg {
            spans::Seg::Key(k) => cur.as_mapping_mut()?.get_mut(k.as_str())?,
            spans::Seg::Index(i) => cur.as_sequence_mut()?.get_mut(*i)?,
        };
    }
    let spans::Seg::Key(k) = &path.0[last_key] else {
        return None;
    };
    let m = cur.as_mapping_mut()?;
    let key = m.keys().find(|x| de::key_text(x) == *k)?.clone();
    m.remove(&key)?;
    Some(spans::KeyPath(path.0[..=last_key].to_vec()))
}

/// Most type errors reported for one file before giving up.
const MAX_TYPE_ERRORS: usize = 20;

fn load_text(
    name: &str,
    raw: &str,
    base_dir: &Path,
    sets: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Diagnostics> {
    use sha2::Digest;
    let text = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let lines: Vec<&str> = text.lines().collect();
    let single = |line: usize, column: usize, message: String, help: Option<String>| {
        Diagnostics(vec![Diagnostic {
            file: name.to_string(),
            line,
            column,
            message,
            help,
            snippet: lines.get(line.wrapping_sub(1)).map(|s| s.to_string()),
        }])
    };
    let tab_error = |upto: usize| {
        spans::tab_in_indentation(text, upto).map(|p| {
            single(
                p.line,
                p.column,
                "tabs are not allowed for indentation; use spaces".into(),
                Some("YAML indents with spaces only: replace the tab with spaces".into()),
            )
        })
    };

    let index = match spans::index(text) {
        Ok(i) => i,
        Err(e) => {
            // A scanner may report a tab at the end of the line before it.
            if let Some(d) = tab_error(e.pos.line + 1) {
                return Err(d);
            }
            let (mut line, mut column) = (e.pos.line, e.pos.column);
            let help = match e.help {
                Some(h) => Some(h),
                None => syntax_help(&lines, line, column).map(|(h, at)| {
                    if let Some((l, c)) = at {
                        (line, column) = (l, c);
                    }
                    h
                }),
            };
            let message = match line == e.pos.line {
                true => e.message,
                false => {
                    let said = e.message.trim_start_matches("this is not valid YAML: ");
                    format!(
                        "this is not valid YAML: {}",
                        cut_flow_message(e.pos.line, said)
                    )
                }
            };
            return Err(single(line, column, message, help));
        }
    };
    let mut tree: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            if let Some(d) = tab_error(line + 1) {
                return Err(d);
            }
            let message = e.to_string();
            let mut line = line;
            let mut column = column;
            let help = if message.contains("duplicate entry with key") {
                pitfalls::duplicate_key_help(&lines, line, &message).map(|(help, second)| {
                    if let Some(l) = second {
                        // Point at the second appearance: that is the line to fix.
                        line = l;
                        column = lines[l - 1].len() - lines[l - 1].trim_start().len() + 1;
                    }
                    help
                })
            } else {
                syntax_help(&lines, line, column).map(|(h, at)| {
                    if let Some((l, c)) = at {
                        (line, column) = (l, c);
                    }
                    h
                })
            };
            let noticed = e.location().map(|l| l.line()).unwrap_or(line);
            let message = match line == noticed {
                true => format!("this is not valid YAML: {message}"),
                false => format!(
                    "this is not valid YAML: {}",
                    cut_flow_message(noticed, &message)
                ),
            };
            return Err(single(line, column, message, help));
        }
    };

    let mut problems: Vec<Issue> = Vec::new();
    let mut set_diags = Vec::new();
    let mut set_paths = Vec::new();
    for arg in sets {
        match overrides::apply_set(&mut tree, arg) {
            Ok(p) => set_paths.push((p, arg.clone())),
            Err(e) => set_diags.push(Diagnostic {
                file: name.to_string(),
                line: 0,
                column: 0,
                message: e.message,
                help: e.help,
                snippet: None,
            }),
        }
    }
    let secrets = match overrides::substitute_env(&mut tree, env) {
        Ok(s) => s,
        Err(errs) => {
            for e in errs {
                problems.push(Issue::at(e.path.unwrap_or_default(), e.message).help_opt(e.help));
            }
            Vec::new()
        }
    };
    let locator = Locator {
        file: name,
        lines: lines.clone(),
        spans: &index,
        sets: set_paths,
        secrets: &secrets,
    };
    let fail = |problems: Vec<Issue>, mut set_diags: Vec<Diagnostic>| {
        set_diags.extend(problems.into_iter().map(|i| locator.diag(i)));
        Diagnostics(set_diags)
    };
    // A `--set` that could not be applied left the tree as it was: reading goes on, so that the
    // other problems are reported with it.
    if !problems.is_empty() {
        return Err(fail(problems, set_diags));
    }

    // Typed reading. serde stops at the first error; to report more than one, the offending
    // key is removed and the tree read again, until it reads or an error is a consequence of a
    // removal (a required key now missing).
    let mut removed: Vec<spans::KeyPath> = Vec::new();
    let scenario = loop {
        match de::from_value::<Scenario>(&tree) {
            Ok(s) => break Some(s),
            Err(e) => {
                let path = e.path.clone().unwrap_or_default();
                // An error about a mapping from which a key was removed (a required key
                // missing, most likely the one misspelt; an empty distribution) is a consequence
                // of the removal: say nothing more about it, drop the mapping and go on.
                let missing = e.message.starts_with("missing key `");
                let caused_by_removal = removed.iter().any(|r| {
                    r.starts_with(&path)
                        && if missing {
                            r.0.len() == path.0.len() + 1
                        } else {
                            r.0.len() > path.0.len()
                        }
                });
                if !caused_by_removal {
                    problems.push(de_issue(e));
                }
                if problems.len() >= MAX_TYPE_ERRORS {
                    break None;
                }
                match remove_for_retry(&mut tree, &path) {
                    Some(p) => removed.push(p),
                    None => break None,
                }
            }
        }
    };
    let scenario = match scenario {
        Some(s) if problems.is_empty() => s,
        _ => return Err(fail(problems, set_diags)),
    };

    let loaded = Loaded {
        scenario,
        file: PathBuf::from(name),
        base_dir: base_dir.to_path_buf(),
        source: raw.to_string(),
        sha256: hex::encode(sha2::Sha256::digest(raw.as_bytes())),
        secrets: secrets.clone(),
    };
    let issues = validate::check(&loaded, &|n| env(n));
    if !issues.is_empty() || !set_diags.is_empty() {
        return Err(fail(issues, set_diags));
    }
    Ok(loaded)
}
