//! Malformed scenarios, run through the real binary: each must exit 2 with a located message
//! (file:line:column, the offending line, a caret) that says what was expected, and never panic.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A valid countdown scenario; the tests break one line of it at a time.
const BASE: &str = "\
name: t
target: http://127.0.0.1:8080
clients:
  mobile:
    share: 80%
  pc:
    share: 20%
journeys:
  buy:
    share: 100%
    steps:
      - post: /api/cart
        json: { sku: 1, qty: 1 }
        capture: { cart_id: $.cart.id }
      - post: /api/orders
        name: create-order
        json: { cart: \"{{ cart_id }}\" }
load:
  countdown:
    sale_start: 10s
    before: 10/s
    peak: 100/s
    rise: 5s
    hold: 5s
    decay: 5s
    after: 10/s
    end: 1m
thresholds:
  - create-order p99 < 300ms during peak
";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn validate(dir: &Path, file: &str, extra: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_flashcrowd"))
        .arg("validate")
        .arg(file)
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("run flashcrowd");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "flashcrowd panicked:\n{}",
        run.stderr
    );
    run
}

/// Writes `bytes` as `bad.yaml` in a fresh directory and validates it.
fn validate_bytes(bytes: &[u8]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), bytes).unwrap();
    validate(dir.path(), "bad.yaml", &[])
}

/// BASE with `from` replaced by `to` (which must occur exactly once).
fn broken(from: &str, to: &str) -> Run {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` must occur once");
    validate_bytes(BASE.replace(from, to).as_bytes())
}

/// Asserts exit code 2, the location, the offending line under it, and every word in `words`.
fn assert_located(run: &Run, line: usize, column: usize, words: &[&str]) {
    assert_eq!(run.code, 2, "exit code; stderr:\n{}", run.stderr);
    let at = format!("--> bad.yaml:{line}:{column}\n");
    assert!(
        run.stderr.contains(&at),
        "expected `{at}` in:\n{}",
        run.stderr
    );
    let caret = format!("| {}^\n", " ".repeat(column - 1));
    assert!(
        run.stderr.contains(&caret),
        "expected a caret at column {column}:\n{}",
        run.stderr
    );
    for w in words {
        assert!(run.stderr.contains(w), "expected `{w}` in:\n{}", run.stderr);
    }
}

#[test]
fn the_base_scenario_is_valid() {
    let run = validate_bytes(BASE.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "ok: bad.yaml (t)\n");
}

#[test]
fn misspelt_key_gets_a_did_you_mean() {
    let run = broken("    share: 80%", "    shrae: 80%");
    assert_located(
        &run,
        5,
        5,
        &["unknown key `shrae`", "did you mean `share`?"],
    );
    assert!(
        !run.stderr.contains("missing key"),
        "no follow-on error:\n{}",
        run.stderr
    );
}

#[test]
fn client_shares_summing_to_90_percent() {
    let run = broken("    share: 20%", "    share: 10%");
    assert_located(
        &run,
        3,
        1,
        &[
            "client shares add up to 90%, not 100%",
            "mobile 80% + pc 10%",
        ],
    );
}

#[test]
fn rise_written_in_words() {
    let run = broken("rise: 5s", "rise: 26 seconds");
    assert_located(
        &run,
        23,
        11,
        &[
            "`26 seconds` has an unknown unit `seconds`",
            "like 250ms, 26s, 2m",
        ],
    );
}

#[test]
fn peak_without_a_unit() {
    let run = broken("peak: 100/s", "peak: 6000");
    assert_located(&run, 22, 11, &["`6000` has no unit", "300/s or 18000/min"]);
}

#[test]
fn template_naming_an_unknown_capture() {
    let run = broken("{{ cart_id }}", "{{ cart_idd }}");
    assert_located(
        &run,
        17,
        27,
        &["unknown capture `cart_idd`", "did you mean `cart_id`?"],
    );
}

#[test]
fn bad_threshold_operator() {
    let run = broken("p99 < 300ms", "p99 <> 300ms");
    assert_located(
        &run,
        29,
        22,
        &["bad threshold", "<>", "[SELECTOR] METRIC OP VALUE"],
    );
}

#[test]
fn threshold_naming_an_unknown_request() {
    let run = broken("  - create-order p99", "  - create-ordr p99");
    assert_located(
        &run,
        29,
        5,
        &[
            "unknown request `create-ordr`",
            "did you mean `create-order`?",
        ],
    );
}

#[test]
fn tab_indentation() {
    let run = broken("    hold: 5s", "\thold: 5s");
    assert_located(
        &run,
        24,
        1,
        &["tabs are not allowed for indentation; use spaces"],
    );
}

#[test]
fn empty_file() {
    for text in ["", "# nothing here yet\n"] {
        let run = validate_bytes(text.as_bytes());
        assert_eq!(run.code, 2);
        assert!(run.stderr.contains("--> bad.yaml:1:1\n"), "{}", run.stderr);
        assert!(run.stderr.contains("the file is empty"), "{}", run.stderr);
    }
}

#[test]
fn non_utf8_file() {
    let mut bytes = b"name: t\ndescription: caf".to_vec();
    bytes.push(0xE9); // é in Latin-1
    bytes.extend_from_slice(b"\n");
    let run = validate_bytes(&bytes);
    assert_located(
        &run,
        2,
        17,
        &[
            "not UTF-8",
            "byte 0xE9 at byte offset 24",
            "save the file as UTF-8",
        ],
    );
}

#[test]
fn yaml_alias_bomb_fails_fast() {
    let mut text =
        String::from("name: bomb\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..20 {
        let prev = format!("*a{}", i - 1);
        text += &format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", "));
    }
    let start = Instant::now();
    let run = validate_bytes(text.as_bytes());
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_located(&run, 7, 10, &["alias bomb"]);
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!(
        "name: t\njourneys: {}{}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let run = validate_bytes(text.as_bytes());
    assert_located(&run, 2, 74, &["nested more than 64 levels deep"]);
}

#[test]
fn very_deep_nesting_is_refused_without_a_stack_overflow() {
    let text = format!(
        "name: t\njourneys: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let run = validate_bytes(text.as_bytes());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--> bad.yaml:2:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nested more than 64 levels deep"),
        "{}",
        run.stderr
    );
}

#[test]
fn multiple_documents_are_refused() {
    let run = validate_bytes(format!("{BASE}---\n{BASE}").as_bytes());
    assert_located(&run, 30, 1, &["more than one YAML document"]);
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = BASE
        .replace("    share: 20%", "    share: 10%")
        .replace("{{ cart_id }}", "{{ cart_idd }}")
        .replace("during peak", "during peek");
    let run = validate_bytes(text.as_bytes());
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.matches("error: ").count(), 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown phase `peek`"),
        "{}",
        run.stderr
    );
}

#[test]
fn type_errors_are_all_reported_without_follow_on_errors() {
    let text = BASE
        .replace(
            "  pc:\n    share: 20%",
            "  pc:\n    share: 20%\n    http: h3\n    think: { uniform: 1s }",
        )
        .replace("    share: 100%", "    share: all")
        .replace("name: t\n", "");
    let run = validate_bytes(text.as_bytes());
    assert_eq!(run.code, 2);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(
        errors,
        [
            "error: unknown value `h3`: expected one of `h1`, `h2`",
            "error: expected a list, found the string `1s`",
            "error: `all` is not a share: expected a percentage like 80%",
            "error: missing key `name`",
        ],
        "{}",
        run.stderr
    );
}

#[test]
fn set_with_an_unknown_path_suggests_a_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.yaml"), BASE).unwrap();
    let run = validate(dir.path(), "s.yaml", &["--set", "clients.pc-web.share=20%"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--set clients.pc-web.share=20%: there is no `pc-web` in `clients`"),
        "{}",
        run.stderr
    );
    let run = validate(dir.path(), "s.yaml", &["--set", "load.countdown.peek=50/s"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown key `peek`"), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `peak`?"),
        "{}",
        run.stderr
    );
    let run = validate(dir.path(), "s.yaml", &["--set", "load.countdown.peak=50/s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn one_bad_file_among_good_ones_fails_the_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), BASE).unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flashcrowd"))
        .args(["validate", "good.yaml", "bad.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok: good.yaml (t)\n");
}

#[test]
fn a_missing_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = validate(dir.path(), "nope.yaml", &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cannot read the scenario"),
        "{}",
        run.stderr
    );
}

// The YAML pitfalls a newcomer hits: each error carries a help line with the fix.

#[test]
fn flow_style_jsonpath_says_to_quote_it() {
    let run = broken(
        "capture: { cart_id: $.cart.id }",
        "capture: { cart_id: $.items[0].id }",
    );
    assert_located(
        &run,
        14,
        36,
        &["help: inside `{ }` or `[ ]`, `[` in an unquoted value is read as YAML syntax; quote it: `\"$.items[0].id\"`"],
    );
}

#[test]
fn colon_space_inside_braces_says_to_quote_it() {
    let run = broken("json: { sku: 1, qty: 1 }", "json: { sku: a: b, qty: 1 }");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("quote it: `\"a: b\"`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_leading_star_says_it_is_an_alias() {
    let run = broken("json: { sku: 1, qty: 1 }", "json: { sku: *1, qty: 1 }");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("help: a value that starts with `*` is read as an alias; quote it: `\"*1\"`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_comment_inside_braces_says_to_quote_it() {
    let run = broken("json: { sku: 1, qty: 1 }", "json: { sku: red #1, qty: 1 }");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("` #` starts a comment, which cuts the line and its closing bracket; quote the value: `\"red #1\"`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_comment_that_swallows_the_closing_brace_is_shown_on_its_own_line() {
    let from = "json: { sku: 1, qty: 1 }";
    let to = "json: { sku: 1, qty: 1   # one of each }";
    let run = broken(from, to);
    // The parser notices only on a later line; the error points at the comment.
    let line = 1 + BASE.lines().position(|l| l.contains(from)).unwrap();
    let text = BASE.lines().nth(line - 1).unwrap().replace(from, to);
    let column = text.find(" #").unwrap() + 2;
    assert_located(
        &run,
        line,
        column,
        &[
            "a comment cuts this line's braces short (the parser noticed on line",
            "end the braces before the comment: `json: { sku: 1, qty: 1 }   # one of each`",
        ],
    );
}

#[test]
fn tab_indentation_says_to_use_spaces() {
    let run = broken("    hold: 5s", "\thold: 5s");
    assert_located(
        &run,
        24,
        1,
        &["help: YAML indents with spaces only: replace the tab with spaces"],
    );
}

#[test]
fn missing_space_after_a_colon_in_flow_style() {
    let run = broken(
        "json: { sku: 1, qty: 1 }",
        "json: { sku: 1, qty: 1 }\n        expect: {status:200}",
    );
    assert_located(
        &run,
        14,
        18,
        &[
            "unknown key `status:200`",
            "help: YAML needs a space after the colon: `status: 200`",
        ],
    );
}

#[test]
fn missing_space_after_a_colon_in_block_style() {
    let run = broken(
        "json: { sku: 1, qty: 1 }",
        "json: { sku: 1, qty: 1 }\n        expect:\n          status:200",
    );
    assert_located(
        &run,
        15,
        11,
        &[
            "found the string `status:200`",
            "help: YAML needs a space after the colon: `status: 200`",
        ],
    );
}

#[test]
fn a_duplicate_key_names_both_lines_and_points_at_the_second() {
    let run = broken("    rise: 5s", "    rise: 5s\n    rise: 6s");
    assert_located(
        &run,
        24,
        5,
        &[
            "duplicate entry with key \"rise\"",
            "help: `rise` is given twice in one mapping (lines 23 and 24)",
        ],
    );
}

#[test]
fn a_rate_in_rps_suggests_the_unit() {
    let run = broken("    peak: 100/s", "    peak: 8000 rps");
    assert_located(
        &run,
        22,
        11,
        &["`8000 rps` is not a rate flashcrowd reads: write it as `8000/s`"],
    );
}

#[test]
fn a_threshold_with_two_mistakes_reports_both_and_the_unit() {
    let run = broken(
        "  - create-order p99 < 300ms during peak",
        "  - creat-order p99 < 300 during peek",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    for w in [
        "`300` has no unit",
        "unknown request `creat-order`",
        "did you mean `create-order`?",
        "unknown phase `peek`",
        "did you mean `peak`?",
    ] {
        assert!(run.stderr.contains(w), "expected `{w}` in:\n{}", run.stderr);
    }
}

#[test]
fn validate_checks_command_line_thresholds_before_a_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), BASE).unwrap();
    let good = validate(
        dir.path(),
        "bad.yaml",
        &["--threshold", "create-order p99 < 300ms during peak"],
    );
    assert_eq!(good.code, 0, "{}", good.stderr);
    let bad = validate(
        dir.path(),
        "bad.yaml",
        &["--threshold", "creat-order p99 < 300 during peek"],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(!bad.stdout.contains("ok:"), "{}", bad.stdout);
    for w in [
        "--threshold `creat-order p99 < 300 during peek`",
        "`300` has no unit",
        "did you mean `create-order`?",
        "did you mean `peak`?",
    ] {
        assert!(bad.stderr.contains(w), "expected `{w}` in:\n{}", bad.stderr);
    }
}
