//! The scenario parser and validator on arbitrary text: errors are fine, panics and hangs are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An optional `--set` override on the first line: `#set KEY=VALUE`.
    let (sets, text) = match text.strip_prefix("#set ") {
        Some(rest) => {
            let (set, body) = rest.split_once('\n').unwrap_or((rest, ""));
            (vec![set.to_string()], body)
        }
        None => (vec![], text),
    };
    if let Ok(loaded) = flashcrowd::scenario::load_str("fuzz.yaml", text, &sets) {
        // What `run` does next with a valid scenario, short of sending traffic.
        for t in &loaded.scenario.thresholds {
            let _ = flashcrowd::gate::parse_threshold(t);
        }
        for a in &loaded.scenario.abort {
            let _ = flashcrowd::gate::parse_abort(a);
        }
    }
});
