//! Everything under `examples/` works: the example agent runs with the example mapping (and env
//! file, and the compose seed, and the Kubernetes environment references) against the dev
//! server; the systemd unit passes `systemd-analyze verify`; every YAML and TOML file parses.

mod common;

use std::path::{Path, PathBuf};

use common::T;
use common::{bare_vault_run, output_within, stderr_of, vault_run, DevServer};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn ex(rel: &str) -> String {
    examples().join(rel).display().to_string()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(examples().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Vec<yaml_rust2::Yaml> {
    yaml_rust2::YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The demo agent's report: which names it received, which it did not.
fn agent_report(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr_of(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_example_agent_runs_with_the_example_mapping() {
    let dev = DevServer::start_with(&["--seed", &ex("seed.toml")]);
    let dir = tempfile::tempdir().unwrap();
    let out = output_within(
        vault_run(&dev, dir.path()).args(["-f", &ex("vault-run.toml"), "--", &ex("agent.sh")]),
        T,
    );
    let report = agent_report(&out);
    for name in
        ["GEMINI_API_KEY", "DATABASE_URL", "LOG_LEVEL", "TLS_KEY_FILE", "STRIPE_SECRET", "STRIPE_PUBLISHABLE"]
    {
        assert!(report.contains(&format!("received {name}\n")), "{name}: {report}");
    }
    assert!(report.contains("missing  SENTRY_DSN"), "{report}");
    for value in ["demo-gemini-key", "demo-db-password", "sk_demo_456"] {
        assert!(!report.contains(value), "the agent prints names only: {report}");
    }

    // The env file example: references fetched (with ${APP_ENV:-production}), literals passed.
    let env = common::env_after(
        vault_run(&dev, dir.path()).arg("--env-file").arg(ex("app.env")).args(["--", "env", "-0"]),
    );
    assert_eq!(env["GEMINI_API_KEY"], "demo-gemini-key-0123456789");
    assert_eq!(env["DB_PASSWORD"], "demo-db-password");
    assert_eq!(env["APP_NAME"], "demo-agent");
    assert_eq!(env["PORT"], "8080");
}

/// A Dockerfile instruction's exec-form JSON array (`ENTRYPOINT ["vault-run"]`).
fn docker_array(dockerfile: &str, instruction: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{instruction} ")))
        .unwrap_or_else(|| panic!("no {instruction}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{instruction} {line}: {e}"))
}

/// The image's files laid out as the Dockerfile's COPY lines put them under /app, in `dir`.
fn image_app_dir(dockerfile: &str, dir: &Path) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY examples/")) {
        let mut words = line.split_whitespace().skip(1);
        let (src, dst) = (words.next().unwrap(), words.next().unwrap());
        let to = app.join(dst.strip_prefix("/app/").expect("COPY into /app"));
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(src), &to).unwrap();
    }
    app
}

/// compose runs the image's ENTRYPOINT with the service's `command:` (which replaces CMD), and
/// `docker run IMAGE` the ENTRYPOINT with CMD: both argv, exactly, in the image's WORKDIR.
#[tokio::test]
async fn the_compose_service_runs_as_docker_runs_it() {
    let compose = &yaml("docker/compose.yaml")[0];
    let agent = &compose["services"]["agent"];
    let key = agent["environment"]["ASS_AGENT_KEY"].as_str().expect("the agent's key").to_owned();
    let command: Vec<String> =
        agent["command"].as_vec().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let vault_entry: Vec<&str> = compose["services"]["vault"]["entrypoint"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&vault_entry[..2], ["vault-run", "dev"]);
    let dockerfile = read("docker/Dockerfile");
    let entrypoint = docker_array(&dockerfile, "ENTRYPOINT");
    let cmd = docker_array(&dockerfile, "CMD");
    assert_eq!(entrypoint[0], "vault-run");
    assert!(dockerfile.contains("WORKDIR /app"));

    // The seed compose mounts, with the fixed key it gives the agent, serves the image's mapping.
    let dev = DevServer::start_with(&["--seed", &ex("docker/seed.toml")]);
    let dir = tempfile::tempdir().unwrap();
    let app = image_app_dir(&dockerfile, dir.path());
    for (what, args) in [("compose's command:", &command), ("docker run IMAGE (CMD)", &cmd)] {
        let argv: Vec<String> = entrypoint[1..]
            .iter()
            .chain(args.iter())
            .map(|a| a.replace("/app/", &format!("{}/", app.display())))
            .collect();
        let out = output_within(vault_run(&dev, &app).env("ASS_AGENT_KEY", &key).args(&argv), T);
        let report = agent_report(&out);
        assert!(
            report.contains("received GEMINI_API_KEY") && report.contains("received DATABASE_URL"),
            "{what}: vault-run {argv:?}: {report}"
        );
    }
}

/// The Deployment as kubelet runs it: the Secret on a read-only tmpfs, the key file root-owned
/// with the manifest's `fsGroup` and `defaultMode`, vault-run as `runAsUser`/`runAsGroup` with
/// `fsGroup` among its groups, the container's env and command. Needs root, `unshare` and
/// `setpriv` (a mount namespace for the read-only mount, then the ids).
#[tokio::test]
async fn the_kubernetes_deployment_runs_with_its_exact_modes_and_ids() {
    let docs = yaml("kubernetes/deployment.yaml");
    let pod = &docs[0]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let id = |k: &str| pod["securityContext"][k].as_i64().unwrap_or_else(|| panic!("securityContext.{k}"));
    let (uid, gid, fs_group) = (id("runAsUser"), id("runAsGroup"), id("fsGroup"));
    // YAML 1.1, as kubectl reads it: 0440 is octal.
    let text = read("kubernetes/deployment.yaml");
    let mode = text.lines().find_map(|l| l.trim().strip_prefix("defaultMode: ")).expect("defaultMode");
    assert!(mode.starts_with('0'), "an octal mode: {mode}");
    assert!(container["volumeMounts"][0]["readOnly"].as_bool() == Some(true), "the key is mounted read-only");
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap().to_owned();

    let dev = DevServer::start_with(&["--seed", &ex("seed.toml")]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let secret_dir = dir.path().join("secret");
    std::fs::create_dir(&secret_dir).unwrap();
    let mut env = Vec::new();
    let mut names = Vec::new();
    for e in container["env"].as_vec().unwrap() {
        let (name, value) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
        if name == "ASS_BASE_URL" {
            continue; // the test's server instead of the service
        }
        if value.starts_with("ass://") {
            names.push(name.to_owned());
        }
        env.push((name.to_owned(), value.to_owned()));
    }
    assert!(!names.is_empty());
    let key_path = secret_dir.join("agent-key").display().to_string();
    let command: Vec<String> = container["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().replace(&format!("{mount}/agent-key"), &key_path))
        .collect();
    assert_eq!(command[0], "vault-run");
    let is_root = nix::unistd::Uid::effective().is_root();
    let have = common::tool_runs;
    if !common::require(
        is_root && have("unshare") && have("setpriv"),
        "root, unshare and setpriv (kubelet's mounts and ids)",
    ) {
        return;
    }
    // What kubelet does, then the container's process. `$@` is the container's command.
    let kubelet = format!(
        r#"set -e
mount -t tmpfs -o mode=0755 secret {dir}
printf %s "$KEY" > {dir}/agent-key
chown 0:{fs_group} {dir}/agent-key
chmod {mode} {dir}/agent-key
mount -o remount,ro {dir}
exec setpriv --reuid={uid} --regid={gid} --groups={fs_group} -- "$@""#,
        dir = secret_dir.display()
    );
    let run = |script: &str| {
        let mut c = std::process::Command::new("unshare");
        c.current_dir(dir.path())
            .args(["-m", "sh", "-c", script, "kubelet", common::bin()])
            .args(&command[1..])
            .args(["env", "-0"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("KEY", &dev.agent_key)
            .env("ASS_BASE_URL", &dev.base_url)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        output_within(&mut c, T)
    };
    let out = run(&kubelet);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let got = common::env_of(&out.stdout);
    for name in &names {
        assert!(!got[name].starts_with("ass://"), "{name} was resolved");
    }
    assert_eq!(got["DATABASE_PASSWORD"], "demo-db-password");
    // The same file on a writable mount is still refused: chmod 600 where it can be done.
    let writable = kubelet.replace(&format!("mount -o remount,ro {}\n", secret_dir.display()), "");
    let out = run(&writable);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("chmod 600"), "{}", stderr_of(&out));
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = read("systemd/demo-agent.service");
    for line in ["Type=notify", "LoadCredential=ass-agent-key:", "--notify-ready", "TimeoutStartSec="] {
        assert!(unit.contains(line), "{line}");
    }
    if !common::require(common::tool_runs("systemd-analyze"), "systemd-analyze (apt-get install systemd)") {
        return;
    }
    // verify checks that ExecStart's programs exist: point them at this build and /bin/true.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-agent.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/vault-run", common::bin())
            .replace("/usr/local/bin/demo-agent", "/bin/true"),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown values and only warns: any line about this unit is a failure.
    assert!(out.status.success() && !err.contains("demo-agent.service"), "{err}");

    // Hardened: `systemd-analyze security` scores it under 4 (the unit as shipped scored 8.4).
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split("demo-agent.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!("no overall exposure in:\n{report}\n{}", String::from_utf8_lossy(&out.stderr))
        });
    assert!(score < 4.0, "exposure {score}:\n{report}");
}

#[test]
fn every_example_file_parses() {
    let mut seen = 0;
    let mut stack = vec![examples()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            match path.extension().and_then(|e| e.to_str()) {
                Some("yaml" | "yml") => {
                    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert!(!docs.is_empty() && !docs[0].is_badvalue(), "{}", path.display());
                }
                Some("toml") => {
                    text.parse::<toml::Table>().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                Some("json") => {
                    serde_json::from_str::<serde_json::Value>(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                _ => continue,
            }
            seen += 1;
        }
    }
    assert!(seen >= 6, "YAML/TOML/JSON examples found: {seen}");

    // The Dockerfile copies files that exist and ends with vault-run as ENTRYPOINT, the agent as CMD.
    let docker = read("docker/Dockerfile");
    for line in docker.lines().filter(|l| l.starts_with("COPY examples/")) {
        let src = line.split_whitespace().nth(1).unwrap();
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(src).is_file(), "{line}");
    }
    assert!(
        docker.contains("ENTRYPOINT [\"vault-run\"]") && docker.contains("CMD [\"--\", \"/app/agent.sh\"]")
    );
    assert!(!docker.contains("Once `--user` exists"), "no stale comment");
    assert!(docker.contains("ca-certificates"), "what agent-safe mode needs");
    assert!(docker.matches("FROM ").count() >= 2, "multi-stage");
    let gha = &yaml("github-actions/deploy.yml")[0];
    let steps = gha["jobs"]["deploy"]["steps"].as_vec().unwrap();
    assert!(steps.iter().any(|s| s["run"].as_str().is_some_and(|r| r.starts_with("vault-run -- "))));
}

/// The README stands alone: its links resolve inside the repository (the API contract is in
/// docs/), the quick start is the same two commands, and every flag it documents is one the
/// binary knows.
#[test]
fn the_readme_stands_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(!readme.contains("shared/docs"), "the contract is referenced outside the repository");
    assert!(root.join("docs/ass-api.md").is_file());
    for link in readme.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
        if link.starts_with("http") || link.starts_with('#') {
            continue;
        }
        assert!(root.join(link).exists(), "README links to {link}, which is not in the repository");
    }
    let quick = readme.split("## Quick start").nth(1).unwrap().split("\n## ").next().unwrap();
    let commands: Vec<&str> = quick.lines().filter(|l| l.starts_with("    ")).map(str::trim).collect();
    assert_eq!(commands, ["scripts/demo", "scripts/test"]);
    assert!(readme.contains("cargo install --locked --path ."));
    assert!(readme.contains("**Platforms:**") && readme.contains("Linux"));
    assert!(readme.contains("**This changed:**"), "the empty-run change is documented");

    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let out = output_within(bare_vault_run(dir.path()).args(args), T);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let known = format!("{}{}", help(&["--help"]), help(&["check", "--help"]));
    for row in readme.lines().filter(|l| l.starts_with("| `-")) {
        for flag in row.split('`').filter(|c| c.starts_with("--")) {
            let flag = flag.split([' ', '=']).next().unwrap();
            assert!(known.contains(flag), "README documents {flag}, which --help does not know");
        }
    }
}

/// The README's quick start, run as written: a `.env` file into the store with
/// `secrets import … --print-mapping > vault-run.toml`, `check`, then `vault-run -- python
/// agent.py`, which gets every value (here `python` is python3 and the agent prints what it got).
#[test]
fn the_readme_quick_start_runs_as_written() {
    if !common::require(common::tool_runs("python3"), "python3") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quick = readme.split("## Quick start").nth(1).unwrap().split("\n## ").next().unwrap();
    let block = quick.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    assert!(block.contains("secrets import .env") && block.contains("--print-mapping > vault-run.toml"));
    assert!(block.contains("vault-run -- python agent.py"), "{block}");

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let shim = common::write(&bin, "python", "#!/bin/sh\nexec python3 \"$@\"\n");
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    common::write(
        dir.path(),
        ".env",
        "OPENAI_API_KEY=sk-quick-0001\nexport DB_URL=\"postgres://app:p w@db/app\"\n",
    );
    common::write(
        dir.path(),
        "agent.py",
        "import os\nfor k in ('OPENAI_API_KEY', 'DB_URL', 'ASS_AGENT_KEY'):\n    print(k, os.environ.get(k, '<unset>'))\n",
    );
    let script = format!("set -eu\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n{block}");
    let launcher_dir = Path::new(common::bin()).parent().unwrap().display().to_string();
    let out = output_within(
        std::process::Command::new("bash")
            .args(["-c", &script])
            .current_dir(dir.path())
            .env("PATH", format!("{}:{launcher_dir}:/usr/bin:/bin", bin.display()))
            .env_remove("ASS_BASE_URL")
            .env_remove("ASS_AGENT_KEY")
            .env_remove("VAULT_RUN_FILE"),
        T,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("OPENAI_API_KEY sk-quick-0001\n"), "{stdout}");
    assert!(stdout.contains("DB_URL postgres://app:p w@db/app\n"), "{stdout}");
    assert!(stdout.contains("ASS_AGENT_KEY <unset>\n"), "{stdout}");
    assert!(!dir.path().join(".env").exists(), "the last step removes .env");
}
