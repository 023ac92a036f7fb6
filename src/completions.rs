//! `vault-run completions SHELL` and `vault-run man`: generated from the clap definitions, so
//! they never drift from the flags.

use std::io::Write;
use std::process::ExitCode;

/// A shell to complete in.
pub use clap_complete::Shell;

/// Prints the completion script for `shell` (of the command line `cmd`) on stdout.
pub fn completions(shell: Shell, mut cmd: clap::Command) -> ExitCode {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "vault-run", &mut out);
    if shell == Shell::Bash {
        out = fix_bash(&String::from_utf8_lossy(&out)).into_bytes();
    }
    write_out(&out)
}

/// What bash completes after `--`: the command (any name on `PATH`), then its own arguments
/// (through bash-completion's `_command_offset` when it is loaded, else file names).
const AFTER_DOUBLE_DASH: &str = r#"    local j
    for (( j = 1; j < COMP_CWORD; j++ )); do
        if [[ "${COMP_WORDS[j]}" == "--" ]]; then
            if (( COMP_CWORD == j + 1 )); then
                COMPREPLY=( $(compgen -c -- "${cur}") )
            elif declare -F _command_offset >/dev/null; then
                _command_offset $(( j + 1 ))
            else
                COMPREPLY=( $(compgen -f -- "${cur}") )
            fi
            return 0
        fi
    done
"#;

/// Repairs clap_complete's bash script for a hyphenated binary name: its word loop builds
/// `vault__run__subcmd__check` but its case labels say `vault__subcmd__run__subcmd__check`, so no
/// subcommand's options were ever completed (clap-rs/clap#6421). And completes after `--`.
fn fix_bash(script: &str) -> String {
    let fixed = script.replace("vault__subcmd__run", "vault__run");
    match fixed.find("    opts=\"\"\n") {
        Some(at) => {
            let end = at + "    opts=\"\"\n".len();
            format!("{}{AFTER_DOUBLE_DASH}{}", &fixed[..end], &fixed[end..])
        }
        None => fixed,
    }
}

/// Prints the man page (roff) of the command line `cmd` on stdout.
///
/// One page: clap_mangen's title, synopsis, description and options, then vault-run's own
/// sections (clap_mangen would point at `vault-run-check(1)` and the like, pages that do not
/// exist, and title the exit codes "EXTRA").
pub fn man(cmd: clap::Command) -> ExitCode {
    let mut out = Vec::new();
    let subcommands: Vec<(String, String)> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| (s.get_name().to_owned(), s.get_about().map(|a| a.to_string()).unwrap_or_default()))
        .collect();
    let page = clap_mangen::Man::new(cmd);
    let rendered = page
        .render_title(&mut out)
        .and_then(|()| page.render_name_section(&mut out))
        .and_then(|()| page.render_synopsis_section(&mut out))
        .and_then(|()| page.render_description_section(&mut out))
        .and_then(|()| page.render_options_section(&mut out))
        .map(|()| out.extend_from_slice(own_sections(&subcommands).as_bytes()))
        .and_then(|()| page.render_version_section(&mut out));
    if let Err(e) = rendered {
        eprintln!("vault-run: error: cannot render the man page: {e} (exit {})", crate::exit::SOFTWARE);
        return ExitCode::from(crate::exit::SOFTWARE);
    }
    write_out(&out)
}

/// Escapes text for roff: backslashes, and hyphens as `\-` (so that they copy as hyphens).
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    // A line starting with `.` or `'` would be a request.
    escaped
        .lines()
        .map(|l| if l.starts_with(['.', '\'']) { format!("\\&{l}") } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// SUBCOMMANDS, THE MAPPING FILE, ENVIRONMENT, FILES, EXIT STATUS, SEE ALSO.
fn own_sections(subcommands: &[(String, String)]) -> String {
    let mut s = String::from(".SH SUBCOMMANDS\n");
    for (name, about) in subcommands {
        s.push_str(&format!(".TP\n\\fBvault\\-run {}\\fR\n{}\n", roff(name), roff(about)));
    }
    s.push_str(&format!(
        ".PP\n{}\n",
        roff("Each takes --help. A program with one of these names runs after --: vault-run -- secrets.")
    ));
    s.push_str(".SH THE MAPPING FILE\n");
    s.push_str(&roff(MAPPING_INTRO));
    s.push_str("\n.PP\n.nf\n");
    s.push_str(&roff(MAPPING_EXAMPLE));
    s.push_str("\n.fi\n.PP\n");
    s.push_str(&roff(MAPPING_RULES));
    s.push('\n');
    s.push_str(".SH ENVIRONMENT\n");
    for (var, meaning) in ENVIRONMENT {
        s.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(var), roff(meaning)));
    }
    s.push_str(".SH FILES\n.TP\n\\fBvault\\-run.toml\\fR\n");
    s.push_str(&roff("The mapping file, looked for in the working directory and each parent (up to $HOME or the mount point), unless -f or VAULT_RUN_FILE names one."));
    s.push_str("\n.SH EXIT STATUS\nThe child's own status, or vault\\-run's:\n");
    for (code, meaning) in crate::exit::TABLE {
        s.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", roff(meaning)));
    }
    s.push_str(".SH SEE ALSO\n");
    s.push_str(&roff("README.md in the source repository; docs/ass-api.md for the Agent Secret Store API."));
    s.push('\n');
    s
}

const MAPPING_INTRO: &str =
    "vault-run.toml maps environment variable names to secret references, under [env]; an optional [store] table sets ttl, timeout, retries, deadline, approval_timeout and concurrency:";

const MAPPING_EXAMPLE: &str = r#"[store]
ttl = "5m"

[env]
OPENAI_API_KEY = "myagent/OPENAI_API_KEY"           # namespace/KEY in Agent Secret Store
DB_PASSWORD    = "vault://secret/data/app#password" # HashiCorp Vault or OpenBao
"*"            = "myagent/*"                        # each secret directly in myagent
"STRIPE_*"     = "prod/stripe/*"                    # STRIPE_ + each key
DATABASE_URL   = { template = "postgres://app:{{ prod/db/PASSWORD }}@db/app" }
SENTRY_DSN     = { path = "myagent/SENTRY_DSN", optional = true }
TLS_KEY        = { path = "myagent/TLS_KEY", as = "file" }  # a path to an in-memory file"#;

const MAPPING_RULES: &str = "An entry is a reference string, or a table with path (or template), optional, default, as, hosts (agent-safe mode) and placeholder. ${VAR} and ${VAR:-default} expand from vault-run's environment. Literal, non-secret values go in an --env-file, not in the mapping. vault-run secrets import FILE --namespace NS --print-mapping writes a ready [env] table.";

const ENVIRONMENT: &[(&str, &str)] = &[
    ("ASS_AGENT_KEY", "the agent key (never give it as an argument); or ASS_AGENT_KEY_FILE, or the systemd credential ass-agent-key"),
    ("ASS_BASE_URL", "the Agent Secret Store base URL, without /v1 (default https://api.agentsecretstore.com)"),
    ("ASS_CACERT", "a PEM CA certificate to trust for the store (a private CA, vault-run dev --tls)"),
    ("VAULT_ADDR, VAULT_TOKEN (BAO_ADDR, BAO_TOKEN)", "HashiCorp Vault or OpenBao, for vault:// references"),
    ("VAULT_RUN_FILE", "the mapping file, like -f"),
    ("ASS_ADMIN_KEY", "the dev server's admin key, for vault-run dev approve|deny"),
];

fn write_out(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`vault-run man | head`) is not worth a complaint.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vault-run: error: cannot write to stdout: {e} (exit {})", crate::exit::IO);
            ExitCode::from(crate::exit::IO)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The man page's example mapping is one vault-run accepts.
    #[test]
    fn the_man_pages_example_mapping_builds() {
        let m = crate::mapping::Mapping::build(
            Some((std::path::Path::new("vault-run.toml"), MAPPING_EXAMPLE)),
            &[],
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.entries.len(), 7);
    }

    #[test]
    fn roff_text_cannot_start_a_request() {
        assert_eq!(roff(".x\n'y\na-b\\c"), "\\&.x\n\\&'y\na\\-b\\ec");
    }
}
