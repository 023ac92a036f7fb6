//! Templates: `postgres://app:{{ production/db/PASSWORD }}@db/app`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_run::parsers::{Template, TemplatePart};
use agentsecretstore::secret::SecretString;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match Template::parse(s) {
        Ok(t) => {
            assert!(t.refs().count() >= 1, "a template has at least one placeholder");
            let value = SecretString::from("V");
            let rendered = t.render(|_| &value);
            let literal: usize = t
                .parts()
                .iter()
                .map(|p| match p {
                    TemplatePart::Literal(l) => l.len(),
                    TemplatePart::Ref(_) => 1,
                })
                .sum();
            assert_eq!(rendered.len(), literal, "render = literals + one value per placeholder");
            let _ = t.to_string();
        }
        Err(e) => {
            if let Some(offset) = e.offset() {
                assert!(offset <= s.len(), "error offset {offset} past the end ({})", s.len());
            }
            let _ = e.to_string();
        }
    }
});
