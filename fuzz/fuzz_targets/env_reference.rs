//! References as they come from `-e`, the mapping file and `ass://`/`vault://` variables:
//! single references, glob references, secret paths, scopes and the wildcard matcher.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_run::parsers::{parse_glob_reference, parse_reference, AssGlob};
use agentsecretstore::path::{wildcard_match, Action, Scope, SecretPath};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = parse_reference(s) {
        // What parses prints to something that parses to the same reference.
        let shown = r.to_string();
        assert_eq!(parse_reference(&shown).as_ref(), Ok(&r), "{s:?} -> {shown:?}");
        // An Agent Secret Store reference's rest is a secret path.
        if r.scheme() == "ass" {
            let p: SecretPath = r.rest().parse().expect("an ass reference holds a valid path");
            assert!(p.scope(Action::Read).reaches(Action::Read, &p));
            let _ = p.url_path();
        }
    }
    let glob = parse_glob_reference(s).ok().filter(|g| g.scheme() == "ass");
    if let Some(g) = glob.and_then(|g| AssGlob::new(g.rest()).ok()) {
        assert!(!g.prefix().is_empty() && !g.prefix().contains(['*', '?', '[']));
        // Any path the glob matches is inside its scope.
        let (_, tail) = s.split_once('\n').unwrap_or((s, "a/b"));
        if let Ok(p) = tail.parse::<SecretPath>() {
            if g.matches(&p) {
                assert!(g.scope().covers(&p.scope(Action::Read)), "{} vs {p}", g.pattern());
                assert!(p.to_string().starts_with(&format!("{}/", g.prefix())));
            }
        }
    }
    if let Ok(p) = s.parse::<SecretPath>() {
        assert_eq!(p.to_string().parse::<SecretPath>().as_ref(), Ok(&p));
        assert!(Scope::new(Action::Read, format!("{}/*", p.namespace())).covers(&p.scope(Action::Read)));
    }
    if let Ok(scope) = s.parse::<Scope>() {
        assert!(scope.covers(&scope), "{scope} covers itself");
        assert_eq!(scope.to_string().parse::<Scope>().as_ref(), Ok(&scope));
    }
    if let Some((pattern, text)) = s.split_once('\n') {
        let _ = wildcard_match(pattern, text);
    }
});
