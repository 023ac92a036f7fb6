//! `.env` import (`vault-run` and the client's `import_env`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use agentsecretstore::wire::parse_dotenv;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let pairs = parse_dotenv(s);
    for (i, (k, v)) in pairs.iter().enumerate() {
        assert!(!k.is_empty(), "no empty keys");
        assert!(!k.contains(['\n', '=']), "{k:?}");
        assert!(!v.expose().contains('\n'));
        assert!(pairs[..i].iter().all(|(other, _)| other != k), "later lines replace earlier ones");
    }
});
