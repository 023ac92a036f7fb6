//! Bad input, as properties: scope matching, glob expansion, durations and `.env` parsing hold
//! their laws for any input proptest can think of; and malformed command lines end in a usage
//! error, never a panic and never a started child.

mod common;

use std::time::Duration;

use agentsecretstore::duration::HumanDuration;
use agentsecretstore::path::{wildcard_match, Action, Scope, SecretPath};
use agentsecretstore::wire::parse_dotenv;
use proptest::prelude::*;
use vault_run::parsers::{parse_glob_reference, AssGlob};

// ---------------------------------------------------------------------------------------------
// Reference implementations, written for clarity rather than speed.

/// `*` matches any run of characters (including `/` and `*`), everything else itself: the
/// anchored regex `^` + escape(pattern).replace("\*", ".*") + `$`, as a dynamic programme.
fn regex_like(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // m[i][j]: p[..i] matches t[..j].
    let mut m = vec![vec![false; t.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        for j in 0..=t.len() {
            m[i][j] = if p[i - 1] == '*' {
                m[i - 1][j] || (j > 0 && m[i][j - 1])
            } else {
                j > 0 && m[i - 1][j - 1] && p[i - 1] == t[j - 1]
            };
        }
    }
    m[p.len()][t.len()]
}

/// Segment-wise glob: same number of `/`-separated segments, and in each `*` matches any run of
/// characters and `?` exactly one (neither crosses `/`).
fn segment_glob(pattern: &str, path: &str) -> bool {
    fn seg(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => seg(&p[1..], t) || (!t.is_empty() && seg(p, &t[1..])),
            (Some('?'), Some(_)) => seg(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => seg(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let ps: Vec<&str> = pattern.split('/').collect();
    let ts: Vec<&str> = path.split('/').collect();
    ps.len() == ts.len()
        && ps
            .iter()
            .zip(&ts)
            .all(|(p, t)| seg(&p.chars().collect::<Vec<_>>(), &t.chars().collect::<Vec<_>>()))
}

// ---------------------------------------------------------------------------------------------
// Strategies. Small alphabets, so that matches are common and edge cases (stars next to each
// other, a star against a literal star, multi-byte characters) come up often.

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![Just(Action::Read), Just(Action::Write), Just(Action::Delete), Just(Action::Any)]
}

/// A scope pattern: may hold `*` anywhere.
fn scope_pattern() -> impl Strategy<Value = String> {
    "[ab/*é:]{1,10}"
}

fn scope() -> impl Strategy<Value = Scope> {
    (action(), scope_pattern()).prop_map(|(a, p)| Scope::new(a, p))
}

/// A path segment as secrets have them: no `*`, no `/`, no control characters, and not `.` or
/// `..` (refused: a URL would resolve them into another API path).
fn segment() -> impl Strategy<Value = String> {
    "[a-c0-9_.é-]{1,5}".prop_filter("not a dot segment", |s| s != "." && s != "..")
}

fn secret_path() -> impl Strategy<Value = SecretPath> {
    prop::collection::vec(segment(), 2..5).prop_map(|segs| segs.join("/").parse().expect("valid path"))
}

/// A glob segment with wildcards (`*`, `?`) among literal characters.
fn meta_segment() -> impl Strategy<Value = String> {
    // `**` is glob's recursive wildcard (or invalid inside a segment): not part of the contract.
    "[ab_*?]{1,5}".prop_filter("one wildcard, not **", |s| s.contains(['*', '?']) && !s.contains("**"))
}

/// An Agent Secret Store glob: literal namespace segments, then optional wildcard segments,
/// and a wildcard last segment.
fn ass_glob() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[ab_]{1,3}", 1..3),
        prop::collection::vec(prop_oneof![meta_segment(), "[ab_]{1,3}".prop_map(String::from)], 0..2),
        meta_segment(),
    )
        .prop_map(|(lit, mid, last)| {
            let mut all = lit;
            all.extend(mid);
            all.push(last);
            all.join("/")
        })
}

/// A path that the glob must match: every `*` replaced by a (possibly empty) run of
/// characters and every `?` by one character; a segment left empty (only `*`s, all filled
/// with nothing) becomes `x`, which it matches too. Valid by construction, so it must parse.
fn instance_of(glob: &str, fills: &[String]) -> SecretPath {
    let mut fill = fills.iter().cycle();
    let segs: Vec<String> = glob
        .split('/')
        .map(|s| {
            s.chars()
                .map(|c| match c {
                    '*' => fill.next().unwrap().clone(),
                    '?' => fill.next().unwrap().chars().next().unwrap_or('x').to_string(),
                    c => c.to_string(),
                })
                .collect::<String>()
        })
        .map(|seg| if seg.is_empty() { "x".to_owned() } else { seg })
        .collect();
    let path = segs.join("/");
    path.parse().unwrap_or_else(|e| panic!("{path} (an instance of {glob}) was rejected: {e}"))
}

/// `cases` cases, and no regression files written into the tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Scope matching.

proptest! {
    #![proptest_config(config(2000))]

    /// `covers` is exactly the anchored regex of the granted scope string, `*` as `.*`.
    #[test]
    fn covers_agrees_with_the_regex_rule(granted in scope(), requested in scope()) {
        let want = regex_like(&granted.to_string(), &requested.to_string());
        prop_assert_eq!(granted.covers(&requested), want, "{} vs {}", granted, requested);
    }

    /// `wildcard_match` on raw strings agrees with the regex rule as well (it is also what the
    /// dev server enforces), including `*` alone.
    #[test]
    fn wildcard_match_agrees_with_the_regex_rule(p in "[ab/*é]{0,8}", t in "[ab/*é]{0,12}") {
        let want = p == "*" || regex_like(&p, &t);
        prop_assert_eq!(wildcard_match(&p, &t), want);
    }

    /// `*` alone (and `secrets:*:*`) covers every scope.
    #[test]
    fn star_covers_everything(requested in scope()) {
        let star: Scope = "*".parse().unwrap();
        prop_assert!(star.covers(&requested));
        let all: Scope = "secrets:*:*".parse().unwrap();
        prop_assert!(all.covers(&requested));
    }

    /// A scope covers itself, stars and all.
    #[test]
    fn a_scope_covers_itself(s in scope()) {
        prop_assert!(s.covers(&s));
        // And survives its own string form.
        let back: Scope = s.to_string().parse().unwrap();
        prop_assert_eq!(back, s);
    }

    /// The exact scope of a secret is covered by its namespace's `ns/*` for the same action,
    /// never by another action's, and `other/*` covers it only if it is an ancestor namespace.
    #[test]
    fn namespace_scope_covers_its_secrets(path in secret_path(), other in prop::collection::vec(segment(), 1..3)) {
        let exact = path.scope(Action::Read);
        let ns = Scope::new(Action::Read, format!("{}/*", path.namespace()));
        prop_assert!(ns.covers(&exact), "{} should cover {}", ns, exact);
        let any_ns = Scope::new(Action::Any, format!("{}/*", path.namespace()));
        prop_assert!(any_ns.covers(&exact), "{} should cover {}", any_ns, exact);
        prop_assert!(!ns.covers(&path.scope(Action::Write)));
        prop_assert!(exact.covers(&exact));
        prop_assert!(path.scope(Action::Read).reaches(Action::Read, &path));

        let other = other.join("/");
        let scope = Scope::new(Action::Read, format!("{other}/*"));
        let under = path.to_string().starts_with(&format!("{other}/"));
        prop_assert_eq!(scope.covers(&exact), under, "{} vs {}", scope, exact);
    }
}

#[test]
fn hostile_scope_patterns_stay_linear() {
    // Backtracking only to the last star: this would take ages with a naive matcher.
    let pattern = format!("secrets:read:{}b", "*a".repeat(200));
    let text = format!("secrets:read:{}", "a".repeat(20_000));
    let started = std::time::Instant::now();
    assert!(!Scope::new(Action::Read, &pattern[13..]).covers(&Scope::new(Action::Read, &text[13..])));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Glob expansion.

/// The pattern as a glob entry's reference, then as the store's backend compiles it.
fn compile(pattern: &str) -> AssGlob {
    match parse_glob_reference(pattern) {
        Ok(g) if g.scheme() == "ass" => AssGlob::new(g.rest()).unwrap(),
        other => panic!("{pattern}: {other:?}"),
    }
}

const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

proptest! {
    #![proptest_config(config(2000))]

    /// `matches` is `glob::Pattern` with `*`/`?` not crossing `/`, and the same as matching
    /// segment by segment.
    #[test]
    fn glob_matches_like_glob_pattern(pattern in ass_glob(), path in "[ab_]{1,3}(/[ab_]{1,4}){1,3}") {
        let g = compile(&pattern);
        let p: SecretPath = path.parse().unwrap();
        let by_glob = glob::Pattern::new(&pattern).unwrap().matches_with(&path, GLOB_OPTIONS);
        prop_assert_eq!(g.matches(&p), by_glob, "{} vs {}", pattern, path);
        prop_assert_eq!(g.matches(&p), segment_glob(&pattern, &path), "{} vs {}", pattern, path);
    }

    /// Character classes too, against `glob::Pattern` itself.
    #[test]
    fn glob_classes_like_glob_pattern(
        ns in "[ab]{1,3}",
        class in "\\[!?[abc]{1,3}\\]",
        rest in "[ab*]{0,3}",
        key in "[abcd]{1,4}",
    ) {
        let pattern = format!("{ns}/{class}{rest}");
        // `**` inside a segment is the one invalid form this strategy can produce; every other
        // pattern is valid by construction and must be accepted.
        if rest.contains("**") {
            prop_assert!(parse_glob_reference(&pattern).is_err(), "{} accepted", pattern);
            return Ok(());
        }
        let g = compile(&pattern);
        let path = format!("{ns}/{key}");
        let by_glob = glob::Pattern::new(&pattern).unwrap().matches_with(&path, GLOB_OPTIONS);
        prop_assert_eq!(g.matches(&path.parse().unwrap()), by_glob, "{} vs {}", pattern, path);
    }

    /// Whatever a glob matches lies under `prefix()` (the namespace listed), and the glob's
    /// one scope covers the read scope of every match: the token asked for is enough.
    #[test]
    fn every_match_is_under_the_prefix_and_covered_by_the_scope(
        pattern in ass_glob(),
        fills in prop::collection::vec("[a-c0-9_é]{0,4}", 1..6),
    ) {
        let g = compile(&pattern);
        prop_assert!(!g.prefix().contains(['*', '?', '[']), "{}", g.prefix());
        prop_assert_eq!(g.scope_pattern(), format!("{}/*", g.prefix()));
        let path = instance_of(&pattern, &fills);
        prop_assert!(g.matches(&path), "{} should match {}", pattern, path);
        prop_assert!(path.to_string().starts_with(&format!("{}/", g.prefix())), "{} not under {}", path, g.prefix());
        let ns_under = path.namespace() == g.prefix() || path.namespace().starts_with(&format!("{}/", g.prefix()));
        prop_assert!(ns_under, "{} not under {}", path.namespace(), g.prefix());
        prop_assert!(g.scope().covers(&path.scope(Action::Read)), "{} vs {}", g.scope(), path);
        prop_assert!(Scope::new(Action::Read, g.scope_pattern()).reaches(Action::Read, &path));
    }

    /// Any path at all: a match is under the prefix and covered by the scope.
    #[test]
    fn no_match_escapes_the_scope(pattern in ass_glob(), path in secret_path()) {
        let g = compile(&pattern);
        if g.matches(&path) {
            prop_assert!(path.to_string().starts_with(&format!("{}/", g.prefix())), "{} vs {}", path, pattern);
            prop_assert!(g.scope().covers(&path.scope(Action::Read)));
        }
    }

    /// `**` (glob's recursive wildcard, which crosses `/`) is accepted as a whole segment; what
    /// it matches still stays under the prefix and inside the scope.
    #[test]
    fn recursive_wildcard_stays_inside_the_scope(ns in "[ab]{1,2}", tail in "(/[ab_*]{1,3}){0,1}", path in secret_path()) {
        let pattern = format!("{ns}/**{tail}");
        // Valid by construction unless the tail segment (the key) has no wildcard, or `**`
        // inside a longer segment.
        let tail_seg = tail.trim_start_matches('/');
        let valid = tail.is_empty() || (tail_seg.contains('*') && (tail_seg == "**" || !tail_seg.contains("**")));
        if !valid {
            prop_assert!(parse_glob_reference(&pattern).is_err(), "{} accepted", pattern);
            return Ok(());
        }
        let g = compile(&pattern);
        if g.matches(&path) {
            prop_assert!(path.to_string().starts_with(&format!("{}/", g.prefix())), "{} vs {}", pattern, path);
            prop_assert!(g.scope().covers(&path.scope(Action::Read)), "{} vs {}", pattern, path);
        }
    }

    /// Parsing a glob reference never panics, whatever the input.
    #[test]
    fn glob_parsing_never_panics(s in "\\PC{0,24}") {
        if let Some(g) = parse_glob_reference(&s).ok().filter(|g| g.scheme() == "ass") {
            let g = AssGlob::new(g.rest()).unwrap();
            prop_assert!(!g.prefix().is_empty());
            prop_assert!(!g.prefix().contains(['*', '?', '[']));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Durations.

proptest! {
    #![proptest_config(config(2000))]

    /// Display then FromStr gives back the same duration, for every millisecond count.
    #[test]
    fn durations_round_trip(ms in any::<u64>()) {
        let d = HumanDuration(Duration::from_millis(ms));
        let shown = d.to_string();
        prop_assert_eq!(shown.parse::<HumanDuration>().unwrap(), d, "{}", shown);
    }

    /// Whole units round-trip in their short form.
    #[test]
    fn whole_units_round_trip(n in 1u64..1_000_000, unit in prop::sample::select(vec!["s", "m", "h", "d"])) {
        let d: HumanDuration = format!("{n}{unit}").parse().unwrap();
        prop_assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
        let secs = n * match unit { "s" => 1, "m" => 60, "h" => 3600, _ => 86_400 };
        prop_assert_eq!(d.as_secs(), secs);
    }

    /// Whatever parses prints to something that parses to the same value; nothing panics.
    #[test]
    fn duration_parsing_is_total(s in "[0-9smhd ]{0,12}|\\PC{0,16}") {
        if let Ok(d) = s.parse::<HumanDuration>() {
            prop_assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `.env` parsing.

/// Applies the "later lines win, first position kept" rule to `pairs`.
fn last_wins(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs {
        match out.iter_mut().find(|(ok, _)| ok == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

fn parsed(text: &str) -> Vec<(String, String)> {
    parse_dotenv(text).into_iter().map(|(k, v)| (k, v.expose().to_owned())).collect()
}

proptest! {
    #![proptest_config(config(1000))]

    /// Never panics, whatever the bytes (as text).
    #[test]
    fn dotenv_never_panics(text in "(\\PC|[\r\n\t\"'=#])*") {
        for (k, v) in parse_dotenv(&text) {
            prop_assert!(!k.is_empty() && !k.contains('\n') && !v.expose().contains('\n'));
        }
    }

    /// Simple `K=V` lines (values without quotes or surrounding blanks) come back as written.
    #[test]
    fn dotenv_round_trips_simple_lines(
        pairs in prop::collection::vec(("[A-Z_][A-Z0-9_]{0,8}", "([a-zA-Z0-9_=:/.#-]([a-zA-Z0-9 _=:/.#-]{0,12}[a-zA-Z0-9_=:/.#-])?)?"), 0..12),
        export in any::<bool>(),
    ) {
        let text: String = pairs
            .iter()
            .map(|(k, v)| format!("{}{k}={v}\n", if export { "export " } else { "" }))
            .collect();
        prop_assert_eq!(parsed(&text), last_wins(&pairs), "{:?}", text);
    }

    /// Quoted values keep their inner blanks; comments and blank lines are skipped.
    #[test]
    fn dotenv_quotes_comments_and_blanks(
        pairs in prop::collection::vec(("[A-Z_][A-Z0-9_]{0,8}", "[a-z =#]{0,10}"), 0..8),
        double in any::<bool>(),
    ) {
        let q = if double { '"' } else { '\'' };
        let text: String = pairs
            .iter()
            .map(|(k, v)| format!("# comment {k}\n\n  {k} = {q}{v}{q}  \n"))
            .collect();
        prop_assert_eq!(parsed(&text), last_wins(&pairs), "{:?}", text);
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed command lines.

/// Runs vault-run with `args` and no server it could reach; returns (code, stdout, stderr).
fn cli(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = common::output_within(
        common::bare_vault_run(dir.path())
            .env("ASS_BASE_URL", format!("http://{closed}"))
            .env("ASS_AGENT_KEY", "ass_cli_test_key")
            .env("RUST_BACKTRACE", "1")
            .args(args),
        Duration::from_secs(30),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_command_lines_are_usage_errors() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let started = "echo CHILD-STARTED";
    #[rustfmt::skip]
    let table: &[&[&str]] = &[
        &["--ttl"],
        &["--ttl", "5x", "--", "sh", "-c", started],
        &["--ttl", "-5s", "--", "sh", "-c", started],
        &["--ttl", "1.5x", "--", "sh", "-c", started],
        &["--deadline", "soon", "--", "sh", "-c", started],
        &["--deadline", "18446744073709551615", "--", "sh", "-c", started],
        &["--watch", "--watch-interval", "18446744073709551615", "--", "sh", "-c", started],
        &["--timeout", "", "--", "sh", "-c", started],
        &["--retries", "-1", "--", "sh", "-c", started],
        &["--retries", "many", "--", "sh", "-c", started],
        &["--retries", "99999999999", "--", "sh", "-c", started],
        &["--concurrency", "-3", "--", "sh", "-c", started],
        &["--concurrency", "x", "--", "sh", "-c", started],
        &["--log-format", "xml", "--", "sh", "-c", started],
        &["--bogus-flag", "--", "sh", "-c", started],
        &["-Z", "--", "sh", "-c", started],
        &["-q", "-v", "--", "sh", "-c", started],
        &["--watch-interval", "5s", "--", "sh", "-c", started],
        &["--watch", "--watch-interval", "0s", "--", "sh", "-c", started],
        &["--watch", "--restart-signal", "SIGNOPE", "--", "sh", "-c", started],
        &["-f"],
        &["-e"],
        &[],
        &["--"],
        &["check", "--", "sh", "-c", started],
        &["check", "extra"],
        &["check", "--ttl", "5x"],
        &["dev", "--listen", "not-an-address"],
        &["dev", "--rate-limit", "0/s"],
        &["dev", "--fault-rate", "2"],
        &["dev", "--fault-status", "200"],
    ];
    let mut cases: Vec<Vec<&OsStr>> =
        table.iter().map(|args| args.iter().map(OsStr::new).collect()).collect();
    // Not UTF-8 where text is expected.
    let bad_utf8 = OsStr::from_bytes(b"A=prod/app/\xff\xfe");
    cases.push(vec![OsStr::new("-e"), bad_utf8, OsStr::new("--"), OsStr::new("true")]);
    cases.push(vec![OsStr::new("--ttl"), OsStr::from_bytes(b"5\xffm"), OsStr::new("--"), OsStr::new("true")]);

    for args in &cases {
        let (code, stdout, stderr) = cli(args);
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("stack backtrace"), "{args:?}: {stderr}");
        let errors = stderr.lines().filter(|l| l.starts_with("error:")).count();
        assert_eq!(errors, 1, "{args:?}: one usage error: {stderr}");
        assert!(!stdout.contains("CHILD-STARTED"), "{args:?}: the child must not start");
    }
}

/// Out-of-range flag values and `-e` without `=` are usage errors (64); a bad reference or
/// setting is a mapping/configuration error (78, as when it comes from the file). One line,
/// before any request, and a mistyped `-e` value is never echoed.
#[test]
fn out_of_range_and_malformed_values_end_in_one_line() {
    use std::ffi::OsStr;
    let started = "echo CHILD-STARTED";
    #[rustfmt::skip]
    let table: &[(&[&str], &str, i32)] = &[
        (&["--concurrency", "0", "-e", "A=prod/app/A", "--", "sh", "-c", started], "--concurrency", 64),
        (&["--ttl", "0", "-e", "A=prod/app/A", "--", "sh", "-c", started], "--ttl", 64),
        (&["--timeout", "0s", "-e", "A=prod/app/A", "--", "sh", "-c", started], "--timeout", 64),
        (&["--deadline", "0", "-e", "A=prod/app/A", "--", "sh", "-c", started], "--deadline", 64),
        (&["-e", "NOEQUALS", "--", "sh", "-c", started], "NAME=REF", 64),
        (&["-e", "sk_live_mistyped_value", "--", "sh", "-c", started], "NAME=REF", 64),
        (&["-e", "=prod/app/A", "--", "sh", "-c", started], "-e #1", 78),
        (&["-e", "A=", "--", "sh", "-c", started], "-e #1", 78),
        (&["-e", "A=foo://x/y", "--", "sh", "-c", started], "foo", 78),
        (&["-e", "A=prod/app/A", "-e", "A=prod/app/B", "--", "sh", "-c", started], "A", 78),
        (&["-e", "A=prod/app/A", "--base-url", "ftp://127.0.0.1/", "--", "sh", "-c", started], "base URL", 78),
    ];
    for (args, says, want) in table {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let (code, stdout, stderr) = cli(&args);
        assert_eq!(code, Some(*want), "{args:?}: {stderr}");
        // clap follows its one error line with a hint to try --help.
        assert_eq!(stderr.lines().filter(|l| l.contains("error")).count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {says:?} in {stderr}");
        assert!(!stderr.contains("sk_live_mistyped_value"), "a mistyped flag is not quoted: {stderr}");
        assert!(!stdout.contains("CHILD-STARTED"));
    }
}

// ---------------------------------------------------------------------------------------------
// `${VAR}` expansion (issue 14).

proptest! {
    /// Expansion never panics; text without `${` is returned as it is; with every variable set
    /// to `x`, no `${NAME}` form survives unless it was escaped or malformed.
    #[test]
    fn expansion_is_total(s in "[a-z/$]{0,8}(\\$\\{[A-Z_]{0,4}(:-[a-z]{0,3})?\\}?)?[a-z/$]{0,8}|\\PC{0,24}") {
        use vault_run::parsers::{expand, expand_placeholders};
        let none = |_: &str| Ok(None);
        let x = |_: &str| Ok(Some("x".to_owned()));
        if !s.contains("${") {
            prop_assert_eq!(expand(&s, &none).unwrap(), s.as_str());
        }
        if let Ok(out) = expand(&s, &x) {
            if !s.contains("$${") {
                prop_assert!(!out.contains("${"), "{s:?} -> {out:?}");
            }
        }
        let _ = expand_placeholders(&s, &x);
    }
}
