//! Tests of [`Mapping::build`]: file forms, flags, environment references and every message.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::backend::reference::{examples, glob_examples, ReferenceError};
use crate::backend::vault::reference::VaultRef;
use agentsecretstore::path::PathError;

const FILE: &str = "vault-run.toml";

fn build(text: &str) -> Result<Mapping, MappingError> {
    Mapping::build(Some((Path::new(FILE), text)), &[], &[])
}

fn err(text: &str) -> String {
    build(text).unwrap_err().to_string()
}

fn flags(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| s.to_string()).collect()
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn at(line: usize, column: usize) -> Origin {
    Origin::File { path: FILE.into(), line, column }
}

fn ass(s: &str) -> Reference {
    let r = parse_reference(s).unwrap();
    assert_eq!(r.scheme(), "ass", "{s}");
    r
}

fn name(e: &Entry) -> String {
    e.target().to_string()
}

/// What an entry reads, as one value to compare.
#[derive(Debug, PartialEq)]
enum Src<'a> {
    Single(&'a Reference),
    Glob(&'a GlobRef),
    Template(&'a Template),
}

fn source(e: &Entry) -> Src<'_> {
    match &e.kind {
        EntryKind::Single { reference, .. } => Src::Single(reference),
        EntryKind::Glob { pattern, .. } => Src::Glob(pattern),
        EntryKind::Template { template, .. } => Src::Template(template),
    }
}

/// Whether a missing secret (or a glob matching nothing) is fine.
fn optional(e: &Entry) -> bool {
    matches!(
        e.kind,
        EntryKind::Single { requirement: Requirement::Optional | Requirement::Default(_), .. }
            | EntryKind::Glob { requirement: MatchRequirement::Optional, .. }
    )
}

fn default(e: &Entry) -> Option<&SecretString> {
    match &e.kind {
        EntryKind::Single { requirement: Requirement::Default(d), .. } => Some(d),
        _ => None,
    }
}

/// The part after the scheme of a single or glob entry's reference.
fn source_rest(e: &Entry) -> &str {
    match source(e) {
        Src::Single(r) => r.rest(),
        Src::Glob(g) => g.rest(),
        Src::Template(_) => panic!("a template"),
    }
}

fn glob(s: &str) -> GlobRef {
    parse_glob_reference(s).unwrap()
}

const SPEC: &str = r#"[store]                     # optional; flags and env win
base_url = "https://api.agentsecretstore.com"
ttl = "5m"

[env]
GEMINI_API_KEY = "production/gemini/GEMINI_API_KEY"              # required
SENTRY_DSN     = { path = "production/sentry/DSN", optional = true }
LOG_LEVEL      = { path = "production/app/LOG_LEVEL", default = "info" }
DATABASE_URL   = { template = "postgres://app:{{ production/db/PASSWORD }}@db:5432/app" }
TLS_KEY_FILE   = { path = "production/tls/KEY", as = "file" }
"STRIPE_*"     = "production/stripe/*"
"DB_*"         = "vault://secret/app/db#*"
PG_PASS        = "vault://secret/app/db#password"
"#;

/// The entries of `SPEC`, in order.
const SPEC_NAMES: &[&str] = &[
    "GEMINI_API_KEY",
    "SENTRY_DSN",
    "LOG_LEVEL",
    "DATABASE_URL",
    "TLS_KEY_FILE",
    "STRIPE_*",
    "DB_*",
    "PG_PASS",
];

#[test]
fn the_spec_example() {
    let m = build(SPEC).unwrap();
    assert_eq!(
        m.settings.options.text(&crate::backend::ass::BASE_URL),
        Some("https://api.agentsecretstore.com")
    );
    assert_eq!(m.settings.tuning.ttl, Some(HumanDuration::from_secs(300)));
    let names: Vec<String> = m.entries.iter().map(name).collect();
    assert_eq!(names, SPEC_NAMES);
    let e = &m.entries;

    assert_eq!(source(&e[0]), Src::Single(&ass("production/gemini/GEMINI_API_KEY")));
    assert!(!optional(&e[0]) && default(&e[0]).is_none() && e[0].delivery == Delivery::Env);
    assert_eq!(e[0].origin, at(6, 1));
    assert_eq!(e[0].origin.to_string(), "vault-run.toml:6:1");

    assert!(optional(&e[1]) && default(&e[1]).is_none());
    assert_eq!(source(&e[1]), Src::Single(&ass("production/sentry/DSN")));

    assert!(optional(&e[2]), "a default implies optional");
    assert_eq!(default(&e[2]).map(|d| d.expose()), Some("info"));

    let Src::Template(t) = &source(&e[3]) else { panic!("{:?}", source(&e[3])) };
    assert_eq!(t.refs().cloned().collect::<Vec<_>>(), [ass("production/db/PASSWORD")]);
    assert_eq!(e[3].source(), "…{{ production/db/PASSWORD }}…");
    assert!(!optional(&e[3]));

    assert_eq!(e[4].delivery, Delivery::File);

    let Target::Glob(g) = &e[5].target() else { panic!() };
    assert_eq!(g.name_for("SECRET_KEY"), "STRIPE_SECRET_KEY");
    let Src::Glob(pattern) = source(&e[5]) else { panic!() };
    assert_eq!(pattern.scheme(), "ass");
    let compiled = AssGlob::new(pattern.rest()).unwrap();
    assert_eq!(compiled.prefix(), "production/stripe");
    assert_eq!(compiled.scope().to_string(), "secrets:read:production/stripe/*");
    assert!(compiled.matches(&"production/stripe/SECRET_KEY".parse().unwrap()));
    assert_eq!(e[5].origin, at(11, 1));

    assert_eq!(source(&e[6]), Src::Glob(&glob("vault://secret/app/db#*")));
    assert_eq!(crate::backend::vault::reference::parse_fields("", source_rest(&e[6])), Ok("secret/app/db"));
    assert_eq!(e[6].source(), "vault://secret/app/db#*");
    assert_eq!(source(&e[7]), Src::Single(&parse_reference("vault://secret/app/db#password").unwrap()));
    assert_eq!(
        crate::backend::vault::reference::parse("", source_rest(&e[7])),
        Ok(VaultRef { path: "secret/app/db".into(), field: "password".into() })
    );
}

#[test]
fn no_file_and_empty_file() {
    assert_eq!(Mapping::build(None, &[], &[]).unwrap(), Mapping::default());
    assert!(build("").unwrap().is_empty());
    assert!(build("[env]\n").unwrap().is_empty());
}

#[test]
fn other_entry_forms() {
    let m = build(
        "[env]\nA = \"ass://prod/app/A\"\nB = { path = \"prod/app/B\", optional = false }\n\
         C = { path = \"prod/app/C\", default = \"x\", optional = true }\n\
         \"STRIPE_*\" = { path = \"prod/stripe/*\", optional = true, as = \"file\" }\n\
         E = { path = \"vault://kv/app#e\", as = \"env\" }\n\
         [env.F]\npath = \"prod/app/F\"\noptional = true\n",
    )
    .unwrap();
    let e = &m.entries;
    assert_eq!(source(&e[0]), Src::Single(&ass("prod/app/A")));
    assert!(!optional(&e[1]));
    assert!(optional(&e[2]) && default(&e[2]).is_some());
    assert!(optional(&e[3]) && e[3].delivery == Delivery::File && matches!(e[3].target(), Target::Glob(_)));
    assert_eq!(e[4].delivery, Delivery::Env);
    assert_eq!(name(&e[5]), "F");
    assert!(optional(&e[5]));
    assert_eq!(e[5].origin, at(7, 6));
}

#[test]
fn dotted_keys_make_tables() {
    let m = build("[env]\nFOO.path = \"a/b\"\nFOO.optional = true\n").unwrap();
    assert!(optional(&m.entries[0]));
    assert_eq!(m.entries[0].origin, at(2, 1));
    assert_eq!(
        err("[env]\nFOO.path.x = 1\n"),
        "vault-run.toml:2:10: a table cannot be used here; write a string, boolean or number"
    );
}

#[test]
fn vault_settings() {
    let m = build(
        "[vault]\nbase_url = \"http://127.0.0.1:8200\"\nttl = 600\ntimeout = \"30s\"\ndeadline = \"2m\"\n\
         approval_timeout = \"1h\"\nretries = 0\nconcurrency = 8\n",
    )
    .unwrap();
    assert_eq!(m.settings.options.text(&crate::backend::ass::BASE_URL), Some("http://127.0.0.1:8200"));
    let s = m.settings.tuning;
    assert_eq!(s.ttl.map(HumanDuration::get), Some(Duration::from_secs(600)));
    assert_eq!(s.timeout, Some(HumanDuration::from_secs(30)));
    assert_eq!(s.deadline, Some(HumanDuration::from_secs(120)));
    assert_eq!(s.approval_timeout, Some(HumanDuration::from_secs(3600)));
    assert_eq!((s.retries, s.concurrency), (Some(0), Some(8)));
}

#[test]
fn store_table_and_its_old_name() {
    let text = "ttl = 600\nretries = 2\nenv_refs = false\n";
    let new = build(&format!("[store]\n{text}")).unwrap().settings;
    let old = build(&format!("[vault]\n{text}")).unwrap().settings;
    assert!(!new.deprecated_name);
    assert!(old.deprecated_name);
    assert_eq!(FileSettings { deprecated_name: false, ..old }, new);
    assert_eq!((new.tuning.retries, new.env_refs), (Some(2), Some(false)));
    assert_eq!(
        err("[store]\nttl = true\n"),
        "vault-run.toml:2:7: ttl in [store] must be a duration like \"5m\" or a number of seconds"
    );
    assert_eq!(
        err("[store]\nttl = 1\n[vault]\nttl = 2\n"),
        "vault-run.toml:3:2: both [store] and [vault] are given; [vault] is the old name of [store]: keep only [store]"
    );
}

#[test]
fn vault_settings_errors() {
    assert_eq!(
        err("[vault]\nttl = \"5m\"\nbase = \"x\"\n"),
        "vault-run.toml:3:1: unknown field \"base\" in [vault]; expected base_url, ttl, timeout, deadline, approval_timeout, retries, concurrency, env_refs"
    );
    assert_eq!(
        err("[vault]\nttl = \"5x\"\n"),
        "vault-run.toml:2:7: ttl in [vault]: invalid duration \"5x\": unknown unit (use e.g. 90s, 15m, 5min, 1h 30m, 90 seconds, 1d, or a number of seconds)"
    );
    assert_eq!(
        err("[vault]\ntimeout = true\n"),
        "vault-run.toml:2:11: timeout in [vault] must be a duration like \"5m\" or a number of seconds"
    );
    assert_eq!(
        err("[vault]\nttl = -1\n"),
        "vault-run.toml:2:7: ttl in [vault] must be a duration like \"5m\" or a number of seconds"
    );
    assert_eq!(
        err("[vault]\nretries = -1\n"),
        "vault-run.toml:2:11: retries in [vault] must be a number from 0 up"
    );
    assert_eq!(
        err("[vault]\nretries = \"3\"\n"),
        "vault-run.toml:2:11: retries in [vault] must be a number from 0 up"
    );
    assert_eq!(
        err("[vault]\nconcurrency = 0\n"),
        "vault-run.toml:2:15: concurrency in [vault] must be a number from 1 up"
    );
    assert_eq!(
        err("[vault]\nbase_url = 1\n"),
        "vault-run.toml:2:12: base_url in [vault] must be a string like \"https://api.agentsecretstore.com\""
    );
}

#[test]
fn unknown_tables_and_bad_toml() {
    assert_eq!(
        err("[vault]\n[envs]\nA = \"a/b\"\n"),
        "vault-run.toml:2:2: unknown table \"envs\"; expected [store] or [env]"
    );
    assert_eq!(
        err("secret = 1\n"),
        "vault-run.toml:1:1: unknown table \"secret\"; expected [store] or [env]"
    );
    let e = build("[env]\nA = \"a/b\nB = 1\n").unwrap_err();
    assert!(matches!(e, MappingError::Toml { .. }));
    assert_eq!(e.origin(), &at(2, 9));
    assert!(!e.to_string().contains('\n'), "{e}");
    let e = build("[env]\nA = \"a/b\"\nA = \"c/d\"\n").unwrap_err();
    assert!(matches!(e, MappingError::Toml { .. }), "{e:?}");
    assert!(e.to_string().starts_with("vault-run.toml:3:1: duplicate key"), "{e}");
    assert_eq!(
        err("[env]\nX = 1979-05-27\n"),
        "vault-run.toml:2:5: a date-time cannot be used here; write the value as a string"
    );
    assert!(err("env = 1\n").starts_with("vault-run.toml:1:7: invalid type: integer `1`, expected a table"));
}

#[test]
fn entry_table_errors() {
    assert_eq!(
        err("[env]\nSENTRY_DSN = { path = \"p/DSN\", optinal = true }\n"),
        "vault-run.toml:2:32: unknown field \"optinal\" in entry SENTRY_DSN; expected path, template, optional, default, as, hosts, placeholder, inject, body"
    );
    assert_eq!(err("[env]\nA = {}\n"), "vault-run.toml:2:1: entry A needs path = \"…\" or template = \"…\"");
    assert_eq!(
        err("[env]\nA = { path = \"a/b\", template = \"{{a/b}}\" }\n"),
        "vault-run.toml:2:21: entry A has both path and template; keep one of them"
    );
    assert_eq!(
        err("[env]\nA = { path = \"a/b\", default = \"x\", optional = false }\n"),
        "vault-run.toml:2:36: entry A: a default is used when the secret is missing, so it cannot be optional = false; remove one of them"
    );
    assert_eq!(
        err("[env]\nA = { template = \"{{a/b}}\", optional = true }\n"),
        "vault-run.toml:2:29: entry A: a template is always required (every secret it names must exist); remove optional and default"
    );
    assert_eq!(
        err("[env]\nA = { template = \"{{a/b}}\", default = \"x\" }\n"),
        "vault-run.toml:2:29: entry A: a template is always required (every secret it names must exist); remove optional and default"
    );
    assert_eq!(
        err("[env]\n\"A_*\" = { template = \"{{a/b}}\" }\n"),
        "vault-run.toml:2:11: entry A_*: a template makes one variable, so its name cannot have '*'"
    );
    assert_eq!(
        err("[env]\n\"A_*\" = { path = \"a/*\", default = \"x\" }\n"),
        "vault-run.toml:2:25: entry A_*: a glob entry cannot have a default; use optional = true"
    );
    assert_eq!(err("[env]\nA = { path = 1 }\n"), "vault-run.toml:2:14: path in entry A must be a string");
    assert_eq!(
        err("[env]\nA = { path = \"a/b\", optional = \"yes\" }\n"),
        "vault-run.toml:2:32: optional in entry A must be true or false"
    );
    assert_eq!(
        err("[env]\nA = { path = \"a/b\", as = \"fil\" }\n"),
        "vault-run.toml:2:26: as in entry A must be \"env\" or \"file\", not \"fil\""
    );
    assert_eq!(
        err("[env]\nA = [\"a/b\"]\n"),
        "vault-run.toml:2:5: entry A is an array; write a reference string or a table like { path = \"…\" }"
    );
    assert_eq!(
        err("[env]\nA = true\n"),
        "vault-run.toml:2:5: entry A is a boolean; write a reference string or a table like { path = \"…\" }"
    );
}

#[test]
fn default_values_are_never_echoed() {
    for text in [
        "[env]\nA = { path = \"a/b\", default = \"hunter2\", optional = false }\n",
        "[env]\nA = { template = \"{{a/b}}\", default = \"hunter2\" }\n",
        "[env]\n\"A_*\" = { path = \"a/*\", default = \"hunter2\" }\n",
        "[env]\nA = { path = \"a\", default = \"hunter2\" }\n",
    ] {
        let e = build(text).unwrap_err();
        assert!(!e.to_string().contains("hunter2") && !format!("{e:?}").contains("hunter2"), "{e}");
    }
    let m = build("[env]\nA = { path = \"a/b\", default = \"hunter2\" }\n").unwrap();
    assert!(!format!("{m:?}").contains("hunter2"));
}

#[test]
fn reference_errors_point_at_the_value() {
    assert_eq!(
        err("[env]\nA = \"foo://x/y\"\n"),
        format!("vault-run.toml:2:5: A: unknown scheme \"foo://\"; use a plain path, {}", examples())
    );
    assert_eq!(
        err("[env]\nA = { optional = true, path = \"KEY\" }\n"),
        "vault-run.toml:2:31: A: secret path \"KEY\" needs a namespace and a key, like production/app/API_KEY"
    );
    assert_eq!(
        err("[env]\nA = \"vault://secret/app/db\"\n"),
        "vault-run.toml:2:5: A: \"vault://secret/app/db\" needs a #FIELD naming the field to read, like vault://secret/app/db#password"
    );
    let e = build("[env]\nA = \"a//b\"\n").unwrap_err();
    assert_eq!(
        e,
        MappingError::Reference {
            origin: at(2, 5),
            name: "A".into(),
            source: ReferenceError::Path(PathError::EmptySegment("a//b".into()))
        }
    );
}

#[test]
fn glob_entry_rules() {
    assert_eq!(
        err("[env]\nSTRIPE = \"production/stripe/*\"\n"),
        "vault-run.toml:2:10: STRIPE: \"production/stripe/*\" is a pattern; only a glob entry, whose name has one '*' (like STRIPE_*), can use one"
    );
    assert!(err("[env]\nDB = \"vault://secret/app/db#*\"\n").contains("is a pattern"));
    assert_eq!(
        err("[env]\n\"STRIPE_*\" = \"production/stripe/KEY\"\n"),
        format!("vault-run.toml:2:14: STRIPE_*: \"production/stripe/KEY\" names a single secret, but the name has a '*'; use a pattern like {}", glob_examples())
    );
    assert_eq!(
        err("[env]\n\"A_*_*\" = \"a/*\"\n"),
        "vault-run.toml:2:1: \"A_*_*\" is not a valid glob name; it needs exactly one '*' with letters, digits and '_' around it, like STRIPE_* or *_URL"
    );
    assert!(err("[env]\n\"A-*\" = \"a/*\"\n").contains("is not a valid glob name"));
    assert_eq!(
        err("[env]\n\"*_KEY\" = \"production/*/KEY\"\n"),
        "vault-run.toml:2:11: *_KEY: glob pattern \"production/*/KEY\" needs a wildcard in its last segment, since each secret's key names its variable"
    );
    let m = build("[env]\n\"*_URL\" = \"ass://production/*/URL_*\"\n").unwrap();
    let (Target::Glob(g), Src::Glob(p)) = (&m.entries[0].target(), source(&m.entries[0])) else { panic!() };
    assert_eq!(p.scheme(), "ass");
    let p = AssGlob::new(p.rest()).unwrap();
    assert_eq!(g.name_for("API"), "API_URL");
    assert_eq!(p.prefix(), "production");
    assert_eq!(p.scope_pattern(), "production/*");
}

#[test]
fn invalid_names() {
    assert_eq!(
        err("[env]\n\"1A\" = \"a/b\"\n"),
        "vault-run.toml:2:1: \"1A\" is not a valid variable name; use letters, digits and '_', not starting with a digit"
    );
    assert!(err("[env]\n\"A.B\" = \"a/b\"\n").contains("not a valid variable name"));
}

#[test]
fn template_errors_point_inside_the_string() {
    // The string starts at column 18; its content at 19.
    let t = |s: &str| err(&format!("[env]\nA = {{ template = \"{s}\" }}\n"));
    assert_eq!(
        t("ab{{ x/y"),
        "vault-run.toml:2:21: A: unclosed {{ in template; close the placeholder with }}"
    );
    assert_eq!(t("{{x/y}} }}"), "vault-run.toml:2:27: A: }} without a matching {{ in template");
    assert_eq!(
        t("x{{ }}"),
        "vault-run.toml:2:20: A: empty {{ }} in template; put a secret reference inside, like {{ production/db/PASSWORD }}"
    );
    assert_eq!(
        t("{{ prod/* }}"),
        "vault-run.toml:2:22: A: {{ prod/* }} in template is a pattern; templates take single secrets only"
    );
    assert_eq!(
        t("{{ foo://a/b }}"),
        format!("vault-run.toml:2:22: A: bad reference in template: unknown scheme \"foo://\"; use a plain path, {}", examples())
    );
    assert_eq!(
        t("no refs here"),
        "vault-run.toml:2:18: A: template has no {{ ref }}; use path = \"…\" for a single secret"
    );
    assert!(!t("hunter2 {{").contains("hunter2"));
    // Multi-line strings: the column still lands on the problem.
    let e = err("[env]\nA = { template = '''{{ a/* }}''' }\n");
    assert!(e.starts_with("vault-run.toml:2:24: A: {{ a/* }}"), "{e}");
}

#[test]
fn templates_render() {
    let m = build(SPEC).unwrap();
    let Src::Template(t) = &source(&m.entries[3]) else { panic!() };
    let pw = SecretString::from("pw");
    assert_eq!(t.render(|_| &pw).expose(), "postgres://app:pw@db:5432/app");
}

#[test]
fn flags_add_and_override() {
    let f =
        flags(&["LOG_LEVEL=prod/app/DEBUG_LEVEL", "NEW=vault://kv/app#new", "STRIPE_*=ass://prod/other/*"]);
    let m = Mapping::build(Some((Path::new(FILE), SPEC)), &f, &[]).unwrap();
    let names: Vec<String> = m.entries.iter().map(name).collect();
    assert_eq!(names, [SPEC_NAMES, &["NEW"]].concat());
    let log = &m.entries[2];
    assert_eq!(source(log), Src::Single(&ass("prod/app/DEBUG_LEVEL")));
    assert_eq!(log.origin, Origin::Flag { index: 1 });
    // A flag replaces the whole entry: the file's default does not survive.
    assert!(!optional(log) && default(log).is_none());
    assert_eq!(m.entries[5].origin.to_string(), "-e #3");
    assert_eq!(m.entries[5].source(), "prod/other/*");
    assert_eq!(m.entries[8].origin, Origin::Flag { index: 2 });
    // Without a file.
    let m = Mapping::build(None, &flags(&["A=a/b", "B=c/d=e"]), &[]).unwrap();
    assert_eq!(source(&m.entries[1]), Src::Single(&ass("c/d=e")));
}

#[test]
fn flag_errors() {
    let e = |f: &[&str]| Mapping::build(None, &flags(f), &[]).unwrap_err().to_string();
    assert_eq!(e(&["A=a/b", "hunter2"]), "-e #2: expected NAME=REF, like -e API_KEY=production/app/API_KEY");
    assert_eq!(
        e(&["A=a/b", "B=c/d", "A=e/f"]),
        "-e #3: A is also set by -e #1; keep only one of them (or narrow the glob)"
    );
    assert!(e(&["S_*=a/*", "S_*=b/*"]).starts_with("-e #2: S_* is also set by -e #1"));
    assert_eq!(
        e(&["=a/b"]),
        "-e #1: \"\" is not a valid variable name; use letters, digits and '_', not starting with a digit"
    );
    assert!(e(&["A=foo://x"]).starts_with("-e #1: A: unknown scheme \"foo://\""));
    assert!(e(&["A=a/*"]).starts_with("-e #1: A: \"a/*\" is a pattern"));
    assert!(e(&["A_*=a/b"]).starts_with("-e #1: A_*: \"a/b\" names a single secret"));
    assert!(e(&["A="]).starts_with("-e #1: A: empty reference"));
}

#[test]
fn env_references() {
    let inherited = env(&[
        ("HOME", "/home/me"),
        ("OPENAI_API_KEY", "ass://prod/openai/KEY"),
        ("PG", "vault://kv/db#pw"),
        ("GEMINI_API_KEY", "ass://other/x/Y"),
        ("NOT_A_REF", "ASS://prod/x/Y"),
        ("URL", "https://example.com"),
    ]);
    let m = Mapping::build(Some((Path::new(FILE), SPEC)), &flags(&["NEW=a/b"]), &inherited).unwrap();
    let tail: Vec<(String, String, String)> =
        m.entries[9..].iter().map(|e| (name(e), e.source(), e.origin.to_string())).collect();
    assert_eq!(
        tail,
        [
            ("OPENAI_API_KEY".into(), "prod/openai/KEY".into(), "environment variable OPENAI_API_KEY".into()),
            ("PG".into(), "vault://kv/db#pw".into(), "environment variable PG".into()),
        ]
    );
    // The file's GEMINI_API_KEY wins over the inherited reference.
    assert_eq!(source(&m.entries[0]), Src::Single(&ass("production/gemini/GEMINI_API_KEY")));
    assert_eq!(m.entries.len(), 11);
    // A flag wins too.
    let m = Mapping::build(None, &flags(&["PG=a/b"]), &env(&[("PG", "vault://kv/db#pw")])).unwrap();
    assert_eq!(m.entries.len(), 1);
    assert_eq!(m.entries[0].origin, Origin::Flag { index: 1 });
}

#[test]
fn env_reference_errors() {
    let e = |k: &str, v: &str| Mapping::build(None, &[], &env(&[(k, v)])).unwrap_err().to_string();
    assert_eq!(
        e("PG", "vault://kv/db"),
        "environment variable PG: \"vault://kv/db\" needs a #FIELD naming the field to read, like vault://secret/app/db#password"
    );
    assert!(e("S", "ass://prod/*").starts_with("environment variable S: \"ass://prod/*\" is a pattern"));
    assert!(e("S", "ass://KEY").starts_with("environment variable S: secret path \"KEY\" needs a namespace"));
    assert!(
        e("a.b", "ass://x/y").starts_with("environment variable a.b: \"a.b\" is not a valid variable name")
    );
}

#[test]
fn check_names_refuses_dangerous_fixed_names() {
    let m = Mapping::build(None, &flags(&["A=a/b", "LD_PRELOAD=a/c", "LD_*=a/*"]), &[]).unwrap();
    assert_eq!(
        m.check_names(&[]).unwrap_err().to_string(),
        "-e #2: refusing to set LD_PRELOAD: it makes the dynamic loader or C library load code or files it names; \
         pass --allow-name LD_PRELOAD if you really mean it"
    );
    assert_eq!(m.check_names(&["LD_PRELOAD".into()]), Ok(()));
    let m = build("[env]\nPYTHONPATH = \"a/b\"\n").unwrap();
    assert!(m
        .check_names(&[])
        .unwrap_err()
        .to_string()
        .starts_with("vault-run.toml:2:1: refusing to set PYTHONPATH"));
}

#[test]
fn origins_use_character_columns() {
    let e = err("# héllo\n[env]\n\"É\" = \"a/b\"\n");
    assert!(e.starts_with("vault-run.toml:3:1: \"É\" is not a valid variable name"), "{e}");
    let e = err("[env]\nA = { optional = true, \"pâth\" = \"a/b\" }\n");
    assert!(e.starts_with("vault-run.toml:2:24: unknown field \"pâth\""), "{e}");
    let e = err("[env]\nA = { path = \"é/x\", as = \"x\" }\n");
    assert!(e.starts_with("vault-run.toml:2:26: as in entry A"), "{e}");
}
