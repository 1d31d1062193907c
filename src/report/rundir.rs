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

/// Redaction lives with the scenario, which knows its secrets (kept here for callers).
pub use crate::scenario::redact::{redact_scenario, redact_url_userinfo, Redactor};

#[cfg(test)]
mod tests {
    use super::*;

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
