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
    let text = template_text(a.template)
        .replace("{{NAME}}", &base)
        .replace("{{FILE}}", &file);
    // What is written must validate; a template that does not is a bug, said as such.
    if let Err(d) = crate::scenario::load_str(&file, &text, &[]) {
        return Err(Failure::BadInput(format!(
            "internal error: the {:?} template does not validate:\n{d}",
            a.template
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::BadInput(format!("cannot create {}: {e}", dir.display())))?;
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
