//! Help that comes from the flags: shell completions (inside subcommands, commands after
//! `--`), the man page, and durations written as people write them.

mod common;

use common::{
    bare_vault_run, env_of, output_within, seeded_profiles_with, stderr_of, stdout_of, tmp, vault_run, write,
    T,
};

#[test]
fn completions_and_man_page_come_from_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef vault-run"),
        ("fish", "complete -c vault-run"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer"),
    ] {
        let out = output_within(bare_vault_run(dir.path()).args(["completions", shell]), T);
        assert!(out.status.success(), "{shell}: {}", stderr_of(&out));
        let script = stdout_of(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for flag in ["--env-file", "--approval-timeout", "--format"] {
            assert!(script.contains(flag.trim_start_matches('-')), "{shell} lacks {flag}");
        }
    }
    if std::process::Command::new("bash").arg("--version").output().is_ok() {
        let out = output_within(bare_vault_run(dir.path()).args(["completions", "bash"]), T);
        std::fs::write(dir.path().join("c.bash"), &out.stdout).unwrap();
        let check =
            std::process::Command::new("bash").arg("-n").arg(dir.path().join("c.bash")).output().unwrap();
        assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
    }
    let out = output_within(bare_vault_run(dir.path()).args(["completions", "tcsh"]), T);
    assert_eq!(out.status.code(), Some(64));

    let out = output_within(bare_vault_run(dir.path()).arg("man"), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let page = stdout_of(&out);
    assert!(page.starts_with(".ie") || page.contains(".TH vault-run"), "{page}");
    assert!(page.contains("env\\-file") && page.contains("completions"), "{page}");
}

/// bash completion inside subcommands (clap_complete's script never matched them for a
/// hyphenated name) and after `--` (commands on PATH), by sourcing the script in bash.
#[test]
fn bash_completes_inside_subcommands_and_commands_after_the_double_dash() {
    if !common::require(common::tool_runs("bash"), "bash") {
        return;
    }
    let dir = tmp();
    let out = common::output_within(common::bare_vault_run(dir.path()).args(["completions", "bash"]), T);
    assert!(out.status.success());
    let script = write(dir.path(), "vault-run.bash", &String::from_utf8_lossy(&out.stdout));
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let prog = write(&bin, "my-agent-tool", "#!/bin/sh\n");
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let complete = |words: &str| {
        let harness = format!(
            r#"source {}
COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_vault__run vault-run "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
            script.display()
        );
        let out = common::output_within(
            std::process::Command::new("bash")
                .args(["--norc", "-c", &harness])
                .env("PATH", format!("{}:/usr/bin:/bin", bin.display())),
            T,
        );
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(complete("vault-run check --fo").contains(&"--format".to_owned()));
    assert!(complete("vault-run dev --se").contains(&"--seed".to_owned()));
    assert!(complete("vault-run completions ''").contains(&"zsh".to_owned()));
    assert_eq!(complete("vault-run secrets im"), ["import"]);
    assert!(complete("vault-run secrets import --print").contains(&"--print-mapping".to_owned()));
    assert_eq!(complete("vault-run -e A=b -- my-agent-to"), ["my-agent-tool"]);
    assert_eq!(complete("vault-run ch"), ["check"]);
}

#[test]
fn the_man_page_has_the_mapping_file_and_no_missing_pages() {
    let dir = tmp();
    let out = common::output_within(common::bare_vault_run(dir.path()).arg("man"), T);
    let page = String::from_utf8_lossy(&out.stdout);
    for section in
        [".SH SUBCOMMANDS", ".SH THE MAPPING FILE", ".SH ENVIRONMENT", ".SH FILES", ".SH EXIT STATUS"]
    {
        assert!(page.contains(section), "{section}");
    }
    assert!(!page.contains(".SH EXTRA"), "exit codes under EXIT STATUS");
    // No reference to a page that is not generated (vault-run-check(1), …).
    assert!(!page.contains("vault\\-run\\-check(") && !page.contains("(1)\n"), "{page}");
    assert!(page.contains("ASS_CACERT") && page.contains("secrets"), "{page}");
}

#[tokio::test]
async fn durations_people_write_are_accepted() {
    let (dev, dir) = seeded_profiles_with(
        "vault-run.toml",
        "[vault]\nttl = \"10 minutes\"\n[env]\nL = \"production/app/LOG_LEVEL\"\n",
    )
    .await;
    for args in [
        ["--deadline", "5min"],
        ["--timeout", "1m 30s"],
        ["--approval-timeout", "1h 30m"],
        ["--ttl", "90 seconds"],
        ["--deadline", "2m"],
        ["--timeout", "120"],
    ] {
        let out = output_within(vault_run(&dev, dir.path()).args(args).args(common::words("-- env -0")), T);
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        assert_eq!(env_of(&out.stdout)["L"], "debug-0001");
    }
    let out = output_within(vault_run(&dev, dir.path()).args(["--ttl", "5 fortnights", "--", "true"]), T);
    assert_eq!(out.status.code(), Some(64), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("5min"), "the hint shows the forms: {}", stderr_of(&out));
}
