//! The mapping stage: a mapping file (TOML), `-e NAME=REF` flags and inherited env references.
//! Input: the file text, then optionally NUL-separated flags, then after a second NUL
//! `NAME=VALUE` lines as the inherited environment.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vault_run::parsers::Mapping;

/// Marks inherited values that are not references: no error may ever quote one.
const CANARY: &str = "zzINHERITEDzz";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\0');
    let file = parts.next().unwrap_or_default();
    let flags: Vec<String> =
        parts.next().map(|f| f.split('\n').map(str::to_owned).collect()).unwrap_or_default();
    let inherited: Vec<(String, String)> = parts
        .next()
        .map(|e| {
            e.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| {
                    let is_ref = v.starts_with("ass://") || v.starts_with("vault://");
                    (k.to_owned(), if is_ref { v.to_owned() } else { format!("{CANARY}{v}") })
                })
                .collect()
        })
        .unwrap_or_default();
    match Mapping::build(Some((Path::new("fuzz.toml"), file)), &flags, &inherited) {
        Ok(mapping) => {
            let _ = mapping.check_names(&[]);
            let _ = mapping.is_empty();
            for e in &mapping.entries {
                // Every entry displays without panicking (messages and the check table use these).
                let _ = (e.target().to_string(), e.source(), e.origin.to_string());
            }
        }
        Err(e) => {
            // Errors render, and never quote an inherited value that is not a reference.
            let message = e.to_string();
            let _ = e.origin();
            let planted = file.contains(CANARY)
                || flags.iter().any(|f| f.contains(CANARY))
                || inherited
                    .iter()
                    .any(|(k, v)| k.contains(CANARY) || (!v.starts_with(CANARY) && v.contains(CANARY)));
            assert!(planted || !message.contains(CANARY), "an inherited value was quoted: {message}");
        }
    }
});
