//! `run:` actions: a program and its arguments (`run: ["./drills/kill.sh", "shop-2"]`), no
//! shell. Refused before any load unless `--allow-run` is given: a scenario from someone else
//! must not execute programs. Its stdout and stderr go to `actions/NAME.log` in the run
//! directory, secrets redacted; a non-zero exit or a timeout fails the action.

use super::{ActionKind, Ctx, Done, Permissions};
use std::io::Read;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

pub struct Command {
    argv: Vec<String>,
}

impl Command {
    pub fn new(argv: &[String], perms: &Permissions) -> Result<Command, String> {
        if argv.is_empty() || argv[0].trim().is_empty() {
            return Err(
                "run: give the program and its arguments, like `run: [\"./drills/kill-instance.sh\", \"shop-2\"]`"
                    .into(),
            );
        }
        if !perms.allow_run {
            return Err(format!(
                "run: `{}` would execute a program; refusing without --allow-run \
                 (a scenario must not run programs unless the person running it says so). \
                 Nothing was executed and no load was sent.",
                argv.join(" ")
            ));
        }
        Ok(Command {
            argv: argv.to_vec(),
        })
    }
}

/// A file name from an action name: letters, digits, `-`, `_` and `.` kept.
fn log_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.log", safe.trim_start_matches('.'))
}

impl ActionKind for Command {
    fn kind(&self) -> &'static str {
        "run"
    }

    fn describe(&self) -> String {
        format!("run {}", self.argv.join(" "))
    }

    fn perform(&self, ctx: &Ctx) -> Done {
        let fail = |result: String| Done { ok: false, result };
        let mut child = match Process::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return fail(format!("cannot start `{}`: {e}", self.argv[0])),
        };
        // Read both pipes on their own threads so a chatty program never blocks.
        let pipe = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = pipe(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = pipe(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let began = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if began.elapsed() >= ctx.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break None,
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        let log = format!(
            "$ {}\n--- stdout\n{}--- stderr\n{}",
            self.argv.join(" "),
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
        if let Some(dir) = &ctx.log_dir {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(log_name(&ctx.name)), ctx.redactor.apply(&log));
        }
        match status {
            Some(s) if s.success() => Done {
                ok: true,
                result: "exit 0".into(),
            },
            Some(s) => fail(match s.code() {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".into(),
            }),
            None => fail(format!(
                "timed out after {} (killed)",
                crate::scenario::units::format_duration(ctx.timeout)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_actions_are_refused_without_allow_run() {
        let argv = vec!["/bin/true".to_string()];
        let no = Permissions {
            allow_run: false,
            untagged_ok: false,
        };
        let e = Command::new(&argv, &no).err().unwrap();
        assert!(e.contains("--allow-run"), "{e}");
        let yes = Permissions {
            allow_run: true,
            untagged_ok: false,
        };
        assert!(Command::new(&argv, &yes).is_ok());
        assert_eq!(log_name("db/failover"), "db_failover.log");
    }
}
