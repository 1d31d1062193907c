//! Secrets never reach an output. Each test plants fresh random secrets — an `Authorization`
//! header, a `Cookie` header, a `${env:…}` value used in a header, URL user-info in the target,
//! and a `Set-Cookie` the server returns — then greps every file of the run directory, stdout
//! and stderr for each of them.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::hostile::{refused_port, run_with_env, HostileServer};
use support::Finished;

fn secret(what: &str) -> String {
    format!("{what}{:016x}", rand::random::<u64>())
}

struct Secrets {
    bearer: String,
    step_bearer: String,
    cookie: String,
    env_token: String,
    user: String,
    pass: String,
    set_cookie: String,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets {
            bearer: secret("bearer"),
            step_bearer: secret("stepbearer"),
            cookie: secret("cookie"),
            env_token: secret("envtoken"),
            user: secret("user"),
            pass: secret("pass"),
            set_cookie: secret("setcookie"),
        }
    }

    fn all(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("Authorization", &self.bearer),
            ("step Authorization", &self.step_bearer),
            ("Cookie", &self.cookie),
            ("${env:FC_SECRET_TOKEN}", &self.env_token),
            ("URL user", &self.user),
            ("URL password", &self.pass),
            ("Set-Cookie", &self.set_cookie),
        ]
    }

    fn scenario(&self, port: u16, extra: &str) -> String {
        format!(
            r#"
name: secrets
description: plants secrets and checks none leaks
target: http://{user}:{pass}@127.0.0.1:{port}
defaults:
  timeout: 1s
  headers:
    Authorization: "Bearer {bearer}"
    X-Api-Key: "${{env:FC_SECRET_TOKEN}}"
    X-Load-Test: flashcrowd
clients:
  app:
    share: 100%
    headers: {{ Cookie: "session={cookie}" }}
journeys:
  read:
    share: 100%
    steps:
      - get: /private
        expect: {{ status: 200 }}
      - get: /private/{{{{ env(FC_SECRET_TOKEN) }}}}
        headers: {{ Authorization: "Bearer {step}" }}
load:
  stages:
    - {{ rate: 10/s, for: 1s }}
  arrivals: uniform
thresholds:
  - errors < 1%
  - p99 < 1ms
{extra}"#,
            user = self.user,
            pass = self.pass,
            bearer = self.bearer,
            cookie = self.cookie,
            step = self.step_bearer,
        )
    }

    /// Fails naming every secret found in `text` (from `place`).
    fn assert_absent(&self, place: &str, text: &str, found: &mut Vec<String>) {
        for (what, s) in self.all() {
            if text.contains(s) {
                let line = text.lines().find(|l| l.contains(s)).unwrap_or_default();
                found.push(format!("{what} in {place}: {}", line.trim()));
            }
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn check_outputs(s: &Secrets, done: &Finished, dirs: &[&Path]) -> Vec<String> {
    let mut found = Vec::new();
    s.assert_absent("stdout", &done.stdout, &mut found);
    s.assert_absent("stderr", &done.stderr, &mut found);
    for d in dirs {
        for f in files_under(d) {
            let bytes = std::fs::read(&f).unwrap();
            s.assert_absent(
                &f.display().to_string(),
                &String::from_utf8_lossy(&bytes),
                &mut found,
            );
        }
    }
    found
}

#[test]
fn no_secret_appears_in_the_run_directory_or_the_terminal() {
    let s = Secrets::new();
    let server = HostileServer::set_cookie(&format!("sid={}; HttpOnly; Path=/", s.set_cookie));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.yaml");
    std::fs::write(&file, s.scenario(server.addr.port(), "")).unwrap();
    let out = dir.path().join("run");
    let target = format!("http://{}:{}@{}", s.user, s.pass, server.addr);
    let done = run_with_env(
        &[
            "run",
            file.to_str().unwrap(),
            "--target",
            &target,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &[("FC_SECRET_TOKEN", &s.env_token)],
        Duration::from_secs(30),
    );
    // `p99 < 1ms` may fail on a loaded machine: 0 or 1, never a crash or bad input.
    assert!(matches!(done.code, Some(0) | Some(1)), "{}", done.output());
    // The secrets really were used: they went to the target.
    let heads = server.heads().join("\n");
    assert!(heads.contains(&s.bearer), "{heads}");
    assert!(heads.contains(&s.cookie), "{heads}");
    assert!(heads.contains(&s.env_token), "{heads}");
    assert!(out.join("report.json").exists(), "{}", done.output());
    let found = check_outputs(&s, &done, &[&out]);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

#[test]
fn no_secret_appears_when_the_target_is_unreachable() {
    let s = Secrets::new();
    let port = refused_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.yaml");
    std::fs::write(&file, s.scenario(port, "")).unwrap();
    let done = run_with_env(
        &["run", file.to_str().unwrap(), "--quiet"],
        &[("FC_SECRET_TOKEN", &s.env_token)],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(3), "{}", done.output());
    let found = check_outputs(&s, &done, &[]);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

#[test]
fn no_secret_appears_in_validation_errors() {
    let s = Secrets::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.yaml");
    // The env value lands where it is invalid (a rate) and the error quotes that line.
    let text = s
        .scenario(9, "")
        .replace("rate: 10/s", "rate: \"${env:FC_SECRET_TOKEN}\"");
    std::fs::write(&file, text).unwrap();
    for cmd in ["validate", "plan", "run"] {
        let done = run_with_env(
            &[cmd, file.to_str().unwrap()],
            &[("FC_SECRET_TOKEN", &s.env_token)],
            Duration::from_secs(30),
        );
        assert_eq!(done.code, Some(2), "{cmd}\n{}", done.output());
        let found = check_outputs(&s, &done, &[]);
        assert!(
            found.is_empty(),
            "`{cmd}` leaked secrets:\n{}",
            found.join("\n")
        );
    }
}
