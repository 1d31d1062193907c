//! The threshold, abort-rule and stop_when parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = flashcrowd::gate::parse_threshold(text);
    let _ = flashcrowd::gate::parse_abort(text);
    let _ = flashcrowd::gate::parse_stop_when(text);
});
