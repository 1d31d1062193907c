//! The template compiler: `{{ }}` strings, and JSON bodies compiled from YAML values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = flashcrowd::template::Template::compile(text);
    if let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(text) {
        let _ = flashcrowd::template::JsonBody::compile(&value);
    }
});
