//! `flashcrowd new NAME [--template T]`: writes a commented, runnable scenario to start from
//! and says how to run it against the embedded shop.
//!
//! The templates live in `assets/templates/` (one file each); every one is validated here
//! before it is written, so what a newcomer gets always passes `flashcrowd validate`.

use super::{Failure, Outcome};
use crate::cli::{NewArgs, Template};
use std::path::PathBuf;

/// The template's text, with `{{NAME}}` and `{{FILE}}` still to fill.
pub fn template_text(t: Template) -> &'static str {
    match t {
        Template::Smoke => include_str!("../../assets/templates/smoke.yaml"),
        Template::Countdown => include_str!("../../assets/templates/countdown.yaml"),
        Template::Drill => include_str!("../../assets/templates/drill.yaml"),
        Template::Calendar => include_str!("../../assets/templates/calendar.yaml"),
        Template::Replay => include_str!("../../assets/templates/replay.yaml"),
    }
}

pub fn new(a: NewArgs) -> Outcome {
    let name = a.name.strip_suffix(".yaml").unwrap_or(&a.name).to_string();
    let base = std::path::Path::new(&name)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base.is_empty()
        || !base
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(Failure::BadInput(format!(
            "`{}` is not a scenario name: use letters, digits, `-` and `_`, like `sale-smoke`",
            a.name
        )));
    }
    let path = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}.yaml")));
    if path.exists() && !a.force {
        return Err(Failure::BadInput(format!(
            "{} already exists: choose another name, or --force to overwrite it",
            path.display()
        )));
    }
    let file = path.display().to_string();
    // The replay template comes with a sample log beside the scenario, so it runs as written.
    let log =
        (a.template == Template::Replay).then(|| path.with_file_name(format!("{base}.access.log")));
    if let Some(log) = log.as_ref().filter(|l| l.exists() && !a.force) {
        return Err(Failure::BadInput(format!(
            "{} already exists: choose another name, or --force to overwrite it",
            log.display()
        )));
    }
    let log_name = log
        .as_ref()
        .and_then(|l| l.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = template_text(a.template)
        .replace("{{NAME}}", &base)
        .replace("{{FILE}}", &file)
        .replace("{{LOG}}", &log_name);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::BadInput(format!("cannot create {}: {e}", dir.display())))?;
    }
    if let Some(log) = &log {
        std::fs::write(log, sample_access_log())
            .map_err(|e| Failure::BadInput(format!("cannot write {}: {e}", log.display())))?;
    }
    // What is written must validate; a template that does not is a bug, said as such.
    let base_dir = dir.unwrap_or(std::path::Path::new("."));
    let env = |n: &str| std::env::var(n).ok();
    if let Err(d) = crate::scenario::load_str_in(&file, &text, base_dir, &[], &env) {
        if let Some(log) = &log {
            let _ = std::fs::remove_file(log);
        }
        return Err(Failure::BadInput(format!(
            "internal error: the {:?} template does not validate:\n{d}",
            a.template
        )));
    }
    if let Some(log) = &log {
        println!("wrote {} (a sample access log to replay).", log.display());
    }
    std::fs::write(&path, text)
        .map_err(|e| Failure::BadInput(format!("cannot write {file}: {e}")))?;
    println!("wrote {file} (template {}).", a.template.name());
    println!();
    println!("Run it against the embedded demo shop:");
    match a.template {
        Template::Drill => println!("  flashcrowd shop --capacity 16 --service-us 4000 &"),
        _ => println!("  flashcrowd shop &"),
    }
    println!("  flashcrowd validate {file}      # check it, no traffic");
    println!("  flashcrowd plan {file}          # the load it will send");
    println!("  flashcrowd run {file}");
    println!();
    println!("Then point `target:` (or --target URL) at your own system; docs/scenario.md explains every key.");
    Ok(0)
}

/// A 30-second combined access log in the shape of a flash crowd: 10 requests a second, rising
/// to 80 at second 10, decaying back over the next 15. Item lists and item pages from phones
/// and PCs, the same bytes every time.
pub fn sample_access_log() -> String {
    use std::fmt::Write;
    let agents = [
        "ShopApp-iOS/10.4 (iPhone; iOS 17.1)",
        "ShopApp-Android/10.4 okhttp/4.12",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
    ];
    let mut x: u64 = 11;
    let mut next = move |n: u64| {
        // A 64-bit linear congruential generator (Knuth's MMIX constants): deterministic noise.
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let mut out = String::new();
    for sec in 0..30u64 {
        let rate = match sec {
            0..=9 => 10,
            10..=14 => 80,
            s => 10 + 70 * (29 - s) / 15,
        };
        let (h, m, s) = (23, 59, 30 + sec);
        let (h, m, s) = if s >= 60 { (0, 0, s - 60) } else { (h, m, s) };
        let day = if h == 23 { 10 } else { 11 };
        for _ in 0..rate {
            let agent = agents[match next(100) {
                0..=59 => 0,
                60..=79 => 1,
                _ => 2,
            }];
            let path = if next(3) == 0 {
                format!("/api/items?page={}", 1 + next(50))
            } else {
                format!("/api/items/{}", 1 + next(1000))
            };
            let _ = writeln!(
                out,
                "10.{}.{}.{} - - [{day:02}/Nov/2026:{h:02}:{m:02}:{s:02} +0800] \"GET {path} HTTP/1.1\" 200 {} \"-\" \"{agent}\"",
                next(8),
                next(256),
                next(256),
                800 + next(2500),
            );
        }
    }
    out
}
