//! The run directory: where it goes (`reports/<scenario>/<UTC timestamp>/` unless `--out`), and
//! how files land in it — written to a temporary name and renamed, so a reader never sees half
//! a report.

use std::path::{Path, PathBuf};

/// `reports/<scenario-name>/<YYYYMMDDTHHMMSSZ>/`, with the name made filesystem-safe.
pub fn default_dir(scenario: &str, at: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("reports")
        .join(if safe.is_empty() {
            "scenario".into()
        } else {
            safe
        })
        .join(at.format("%Y%m%dT%H%M%SZ").to_string())
}

/// Where a run directory goes when its own place cannot be written:
/// `$TMPDIR/flashcrowd-<scenario>-<YYYYMMDDTHHMMSSZ>-<pid>/`.
pub fn fallback_dir(scenario: &str, at: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let dir = default_dir(scenario, at);
    let name = dir
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".into());
    std::env::temp_dir().join(format!(
        "flashcrowd-{name}-{}-{}",
        at.format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    ))
}

/// Writes `bytes` to `dir/name` atomically: a temporary file in the same directory, flushed to
/// disk, then renamed over the name. A reader sees the old file or the whole new one, never a
/// truncated one; on failure (a full disk) the temporary file is removed.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable (best effort: not every filesystem allows it).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// The scenario text as run, with secrets removed: values of Authorization, Cookie and
/// Proxy-Authorization keys, and every literal secret value given (e.g. expanded `${env:…}`).
pub fn redact_scenario(source: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let lower = line.to_ascii_lowercase();
        let sensitive = SENSITIVE_HEADERS.iter().find_map(|k| {
            lower
                .find(&format!("{k}:"))
                .or_else(|| lower.find(&format!("{k}\":")))
                .map(|i| i + k.len())
        });
        match sensitive {
            Some(i) => {
                let colon = line[i..].find(':').map(|c| i + c + 1).unwrap_or(line.len());
                out.push_str(&line[..colon]);
                out.push_str(" \"[redacted]\"");
                // Keep a closing brace of a flow mapping so the YAML stays readable.
                if line.trim_end().ends_with('}') {
                    out.push_str(" }");
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for s in secrets {
        if s.len() >= 3 {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    redact_url_userinfo(&out)
}

/// `scheme://user:password@host…` → `scheme://[redacted]@host…`, for every URL in `text`.
pub fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first of these; user-info is what precedes its last '@'.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>' | '\\')
                    || c.is_whitespace()
                    || c.is_control()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("[redacted]");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Removes every secret a run knows of from text bound for an output: substituted `${env:…}`
/// values, the values of `Authorization`, `Cookie` and `Proxy-Authorization` headers (defaults,
/// clients and steps), and URL user-info.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    literals: Vec<String>,
}

const SENSITIVE_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
];

impl Redactor {
    pub fn new(loaded: &crate::scenario::Loaded) -> Redactor {
        let sc = &loaded.scenario;
        let mut literals: Vec<String> = loaded.secrets.clone();
        let mut headers = |h: &crate::scenario::model::Headers| {
            for (k, v) in h {
                if SENSITIVE_HEADERS.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                    literals.push(v.clone());
                    // `Bearer abc`: the credential alone, in case the scheme is printed apart.
                    if let Some((_, cred)) = v.split_once(' ') {
                        literals.push(cred.trim().to_string());
                    }
                }
            }
        };
        headers(&sc.defaults.headers);
        for c in sc.clients.values() {
            headers(&c.headers);
        }
        for j in sc.journeys.values() {
            for st in &j.steps {
                headers(&st.headers);
            }
        }
        // Short values ("1", "on") would redact ordinary text and protect nothing.
        literals.retain(|l| l.len() >= 4);
        // Longest first, so a value containing another is removed whole.
        literals.sort_by_key(|l| std::cmp::Reverse(l.len()));
        literals.dedup();
        Redactor { literals }
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = redact_url_userinfo(text);
        for l in &self.literals {
            if out.contains(l.as_str()) {
                out = out.replace(l.as_str(), "[redacted]");
            }
        }
        out
    }

    /// `apply` for file contents: UTF-8 text is redacted, other bytes (images) pass unchanged.
    pub fn apply_bytes<'a>(&self, bytes: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        match std::str::from_utf8(bytes) {
            Ok(t) => {
                let r = self.apply(t);
                if r == t {
                    std::borrow::Cow::Borrowed(bytes)
                } else {
                    std::borrow::Cow::Owned(r.into_bytes())
                }
            }
            Err(_) => std::borrow::Cow::Borrowed(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_and_cookie_values_are_redacted() {
        let src = "defaults:\n  headers:\n    Authorization: Bearer abc123\n    X-Load-Test: flashcrowd\n  cookie: \"s=1\"\n";
        let out = redact_scenario(src, &["flashcrowd".into()]);
        assert!(!out.contains("abc123"));
        assert!(!out.contains("s=1"));
        assert!(out.contains("Authorization: \"[redacted]\""));
        assert!(out.contains("X-Load-Test: [redacted]"));
    }

    #[test]
    fn url_userinfo_is_redacted_everywhere() {
        assert_eq!(
            redact_url_userinfo("target: http://u:p@127.0.0.1:80/x and \"https://tok@h\""),
            "target: http://[redacted]@127.0.0.1:80/x and \"https://[redacted]@h\""
        );
        assert_eq!(redact_url_userinfo("http://h:1/a@b"), "http://h:1/a@b");
        assert_eq!(redact_url_userinfo("no urls, a@b"), "no urls, a@b");
        let out = redact_scenario("target: http://me:s3cret@10.0.0.1\n", &[]);
        assert!(!out.contains("s3cret"), "{out}");
    }

    #[test]
    fn default_dir_is_safe_and_timestamped() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-11T00:00:26Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            default_dir("双11 countdown/x", at),
            PathBuf::from("reports/双11_countdown_x/20261111T000026Z")
        );
    }
}
