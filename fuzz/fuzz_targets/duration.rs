//! Durations (`--ttl`, `--deadline`, the mapping file, the wire) and the dev server's rates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use agentsecretstore_dev::Rate;
use agentsecretstore::duration::HumanDuration;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(d) = s.parse::<HumanDuration>() {
        let shown = d.to_string();
        assert_eq!(shown.parse::<HumanDuration>(), Ok(d), "{s:?} -> {shown:?}");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<HumanDuration>(&json).unwrap(), d);
    } else if let Err(e) = s.parse::<HumanDuration>() {
        assert!(!e.to_string().contains('\n') || s.contains('\n'));
    }
    let _ = serde_json::from_slice::<HumanDuration>(data);
    if let Ok(r) = s.parse::<Rate>() {
        assert!(r.per_sec().is_finite() && r.per_sec() > 0.0, "{s:?}");
    }
});
