//! The release binary (scripts/release: static-pie) in an empty root: a directory holding only
//! it, a static busybox as the child, and the `/etc` files an image may have (`passwd`, `group`,
//! `hosts`, `resolv.conf`), entered with `chroot` inside a mount namespace that gives it what a
//! container runtime gives (`/proc`, `/dev/null`). No libc, no NSS modules, no CA bundle, no
//! `cat` in there: a launch, `--user` by name and by number, a server reached by a name from
//! `/etc/hosts`, HTTPS with the bundled roots and `ASS_CACERT`, `--supervise`, and agent-safe
//! mode (its CA-bundle holder is vault-run itself, running as the child's user).
//!
//! Needs root (chroot, mount), `unshare` and a static busybox (scripts/test installs
//! busybox-static); the release build is made once, through `scripts/release --binary`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use common::{output_of_within, stderr_of, DevServer};

const SECRET: &str = "s3cr3t-value-from-the-store";

/// The static busybox (Debian's busybox-static).
const BUSYBOX: &str = "/bin/busybox";

/// Builds the release binary once (minutes the first time; cached in target/ afterwards).
fn release_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("scripts/release"))
            .arg("--binary")
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/release --binary");
        assert!(out.status.success(), "scripts/release --binary failed");
        let path = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(path.trim())
    })
}

/// Whether this test can run here (under CI it must).
fn available() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    let busybox = Command::new(BUSYBOX).arg("true").status().is_ok_and(|s| s.success());
    let unshare = Command::new("unshare").arg("--version").output().is_ok_and(|o| o.status.success());
    common::require(root, "root (chroot and mount)")
        && common::require(busybox, "a static busybox at /bin/busybox (apt-get install busybox-static)")
        && common::require(unshare, "unshare (apt-get install util-linux)")
}

/// An empty root: the release binary, busybox and its applets, and the given `/etc` files.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(etc: &[(&str, &str)]) -> Root {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in ["bin", "etc", "proc", "dev", "tmp", "app", "home/agent"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::copy(release_binary(), r.join("vault-run")).unwrap();
        std::fs::copy(BUSYBOX, r.join("bin/busybox")).unwrap();
        for applet in ["sh", "cat", "id", "env", "wget", "grep", "echo", "sleep"] {
            std::os::unix::fs::symlink("busybox", r.join("bin").join(applet)).unwrap();
        }
        for (name, text) in etc {
            std::fs::write(r.join("etc").join(name), text).unwrap();
        }
        Root { dir }
    }

    /// With the `/etc` files of a small image: users `root` and `agent` (in group `extra`),
    /// hosts naming the loopback `vault.test` and `upstream.test`, and a resolv.conf whose
    /// server does not answer (nothing listens on that address's port 53).
    fn image() -> Root {
        Root::new(&[
            ("passwd", "root:x:0:0:root:/root:/bin/sh\nagent:x:10001:10001:agent:/home/agent:/bin/sh\n"),
            ("group", "root:x:0:\nagent:x:10001:\nextra:x:4242:other,agent\n"),
            ("hosts", "127.0.0.1 localhost\n127.0.0.1 vault.test upstream.test\n"),
            ("resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"),
        ])
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `/vault-run ARGS` in the root with only `env` (chroot starts it in `/`).
    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        // A private mount namespace: the mounts end with it, whatever happens to the test.
        let script = r#"set -e
R="$1"; shift
mount -t proc proc "$R/proc"
for d in null zero urandom; do : >"$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
exec chroot "$R" /vault-run "$@""#;
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh"])
            .arg(self.path())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("start unshare");
        output_of_within(child, common::T)
    }
}

fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn dev_with_secret() -> DevServer {
    DevServer::with(&[("production/app/API_KEY", SECRET)]).await
}

/// The dev server's base URL with `vault.test` for its address: reached through /etc/hosts.
fn by_hosts_name(dev: &DevServer) -> String {
    dev.base_url.replace("127.0.0.1", "vault.test")
}

#[test]
fn the_release_binary_is_static_pie() {
    if !available() {
        return;
    }
    let file = Command::new("file").arg(release_binary()).output();
    if let Ok(out) = file {
        let text = stdout_of(&out);
        assert!(text.contains("static-pie linked"), "{text}");
    }
    let dynamic = Command::new("readelf").arg("-d").arg(release_binary()).output().unwrap();
    assert!(!stdout_of(&dynamic).contains("(NEEDED)"), "{}", stdout_of(&dynamic));
    let program = Command::new("readelf").arg("-l").arg(release_binary()).output().unwrap();
    assert!(!stdout_of(&program).contains("INTERP"), "{}", stdout_of(&program));
}

#[tokio::test]
async fn a_launch_by_a_hosts_name_as_a_user_from_etc_passwd() {
    if !available() {
        return;
    }
    let dev = dev_with_secret().await;
    let root = Root::image();
    let base = by_hosts_name(&dev);
    let out = root.run(
        &[("ASS_BASE_URL", &base), ("ASS_AGENT_KEY", &dev.agent_key)],
        &[
            "--allow-insecure-http",
            "-e",
            "API_KEY=production/app/API_KEY",
            "--user",
            "agent",
            "--",
            "/bin/sh",
            "-c",
            "id; echo HOME=$HOME USER=$USER; echo API_KEY=$API_KEY",
        ],
    );
    let stdout = stdout_of(&out);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("uid=10001(agent) gid=10001(agent)"), "{stdout}");
    assert!(stdout.contains("4242(extra)"), "supplementary group from /etc/group: {stdout}");
    assert!(stdout.contains("HOME=/home/agent USER=agent"), "{stdout}");
    assert!(stdout.contains(&format!("API_KEY={SECRET}")), "{stdout}");
}

#[tokio::test]
async fn numeric_ids_need_no_etc_files_and_an_unknown_name_is_refused() {
    if !available() {
        return;
    }
    let dev = dev_with_secret().await;
    let root = Root::new(&[]);
    let env = [("ASS_BASE_URL", dev.base_url.as_str()), ("ASS_AGENT_KEY", dev.agent_key.as_str())];
    let out = root.run(&env, &["-e", "K=production/app/API_KEY", "--user", "4321:4322", "--", "/bin/id"]);
    let stdout = stdout_of(&out);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("uid=4321 gid=4322"), "{stdout}");

    let out = root.run(&env, &["-e", "K=production/app/API_KEY", "--user", "agent", "--", "/bin/id"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--user agent: no such user"), "{}", stderr_of(&out));
}

/// `vault-run dev --tls --seed SEED`: the process (killed on drop), its base URL, agent key and
/// CA file.
fn tls_dev_server(seed: &Path) -> (KillOnDrop, String, String, PathBuf) {
    use std::io::BufRead;
    let mut child = Command::new(common::bin())
        .args(["dev", "--listen", "127.0.0.1:0", "--tls", "--seed"])
        .arg(seed)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vault-run dev --tls");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vars = std::collections::HashMap::new();
    for _ in 0..4 {
        let line = lines.next().expect("dev server output").unwrap();
        let (k, v) = line.split_once('=').expect("KEY=value");
        vars.insert(k.to_owned(), v.to_owned());
    }
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (
        KillOnDrop(child),
        vars["ASS_BASE_URL"].clone(),
        vars["ASS_AGENT_KEY"].clone(),
        PathBuf::from(&vars["ASS_CACERT"]),
    )
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn https_by_a_hosts_name_with_the_bundled_roots_and_ass_cacert() {
    if !available() {
        return;
    }
    let root = Root::image();
    let seed = root.path().join("seed.toml");
    std::fs::write(&seed, format!("[[secret]]\npath = \"production/app/API_KEY\"\nvalue = \"{SECRET}\"\n"))
        .unwrap();
    let (_dev, base, agent_key, cacert) = tls_dev_server(&seed);
    std::fs::write(root.path().join("app/ca.pem"), std::fs::read(cacert).unwrap()).unwrap();
    // The dev server's certificate names localhost: reached by that name, through /etc/hosts.
    let base = base.replace("127.0.0.1", "localhost");
    let out = root.run(
        &[("ASS_BASE_URL", &base), ("ASS_AGENT_KEY", &agent_key), ("ASS_CACERT", "/app/ca.pem")],
        &["-v", "-e", "API_KEY=production/app/API_KEY", "--", "/bin/sh", "-c", "echo API_KEY=$API_KEY"],
    );
    let stdout = stdout_of(&out);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains(&format!("API_KEY={SECRET}")), "{stdout}");
    assert!(stderr_of(&out).contains("bundled Mozilla roots"), "said at -v: {}", stderr_of(&out));
}

#[tokio::test]
async fn supervise_forwards_the_exit_code_in_an_empty_root() {
    if !available() {
        return;
    }
    let dev = dev_with_secret().await;
    let root = Root::image();
    let out = root.run(
        &[("ASS_BASE_URL", &by_hosts_name(&dev)), ("ASS_AGENT_KEY", &dev.agent_key)],
        &[
            "--allow-insecure-http",
            "--supervise",
            "--user",
            "agent",
            "-e",
            "API_KEY=production/app/API_KEY",
            "--",
            "/bin/sh",
            "-c",
            "echo got=$API_KEY; exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains(&format!("got={SECRET}")), "{}", stdout_of(&out));
}

/// A plain HTTP server on loopback recording each request head.
fn recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let record = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let head = common::read_head(&mut stream).unwrap_or_default();
            record.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
            );
        }
    });
    (port, heads)
}

#[tokio::test]
async fn agent_safe_mode_as_another_user_with_vault_run_holding_the_bundle() {
    if !available() {
        return;
    }
    let dev = dev_with_secret().await;
    let root = Root::image();
    let (port, heads) = recorder();
    std::fs::write(
        root.path().join("app/vault-run.toml"),
        // A listed host is host and port: the recorder's.
        format!("[env]\nAPI_KEY = {{ path = \"production/app/API_KEY\", hosts = [\"localhost:{port}\"] }}\n"),
    )
    .unwrap();
    // The child: as `agent`, the bundle opens (its holder is vault-run, running as `agent`),
    // holds the run CA and nothing else; a plain-http request to the listed loopback host, by
    // its /etc/hosts name, goes through the proxy, which resolves it there and puts the value on
    // the wire.
    let script = format!(
        "id -u; grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\"; grep -c PRIVATE \"$SSL_CERT_FILE\" || true; \
         echo SSL_CERT_FILE=$SSL_CERT_FILE; echo API_KEY=$API_KEY; \
         wget -q -O - --header \"Authorization: Bearer $API_KEY\" http://localhost:{port}/through-proxy"
    );
    let out = root.run(
        &[("ASS_BASE_URL", &by_hosts_name(&dev)), ("ASS_AGENT_KEY", &dev.agent_key)],
        &[
            "--allow-insecure-http",
            "-f",
            "/app/vault-run.toml",
            "--user",
            "agent",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ],
    );
    let stdout = stdout_of(&out);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "10001", "{stdout}");
    assert_eq!(lines[1], "1", "the run CA only: {stdout}");
    assert_eq!(lines[2], "0", "{stdout}");
    assert!(lines[3].starts_with("SSL_CERT_FILE=/proc/"), "{stdout}");
    assert!(!stdout.contains(SECRET), "the child holds a placeholder: {stdout}");
    assert!(stdout.ends_with("ok\n"), "{stdout}");
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].contains(&format!("Bearer {SECRET}")), "the proxy put the value on the wire: {heads:?}");
    assert!(!stderr_of(&out).contains("cannot start vault-run again"), "{}", stderr_of(&out));
}

/// Opens `path` as `uid` (python's os.setuid, from root): whether it worked.
fn opens_as(uid: u32, path: &str) -> bool {
    let code = format!(
        "import os; os.setgroups([]); os.setgid({uid}); os.setuid({uid}); open({path:?}, 'rb').read()"
    );
    Command::new("python3").args(["-c", &code]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// M7 (review round 3), with the ordinary build on the host: under `--user` the bundle's holder
/// runs as the child's user, so the child opens the bundle, and another user cannot.
#[tokio::test]
async fn under_user_the_bundle_opens_for_the_childs_user_only() {
    let root = nix::unistd::Uid::effective().is_root();
    if !common::require(root, "root (--user)") || !common::require(common::tool_runs("python3"), "python3") {
        return;
    }
    let dev = dev_with_secret().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vault-run.toml"),
        "[env]\nAPI_KEY = { path = \"production/app/API_KEY\", hosts = [\"api.example.test\"] }\n",
    )
    .unwrap();
    let mut cmd = common::vault_run(&dev, dir.path());
    cmd.args(["--user", "65534:65534", "--", "sh", "-c"])
        .arg("echo \"$SSL_CERT_FILE\"; grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\"; exec sleep 30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let path = lines.next().expect("the child's first line").unwrap();
    let count = lines.next().expect("the child's second line").unwrap();
    let (other, same) = (opens_as(4242, &path), opens_as(65534, &path));
    // vault-run forwards the signal to the child and ends with it (and so does the holder).
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    common::wait_within(&mut child, common::T);
    assert!(path.starts_with("/proc/"), "{path}");
    assert!(count.parse::<u32>().is_ok_and(|n| n >= 1), "the child (uid 65534) read the bundle: {count}");
    assert!(same, "uid 65534 opens {path}");
    assert!(!other, "another user must not open {path}");
}

/// A Dockerfile's instructions, continuation lines joined: (INSTRUCTION, rest).
fn instructions(rel: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/docker").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || (cur.is_empty() && line.trim().is_empty()) {
            continue;
        }
        cur.push_str(line.trim_end_matches('\\'));
        cur.push(' ');
        if !line.ends_with('\\') {
            let (word, rest) = cur.trim().split_once(' ').unwrap_or((cur.trim(), ""));
            out.push((word.to_owned(), rest.trim().to_owned()));
            cur.clear();
        }
    }
    out
}

/// The JSON array of an exec-form ENTRYPOINT or CMD.
fn exec_form(rest: &str) -> Vec<String> {
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("not exec form: {rest}: {e}"))
}

const STATIC_DOCKERFILES: [(&str, &str); 3] = [
    ("Dockerfile.scratch", "scratch"),
    ("Dockerfile.distroless", "gcr.io/distroless/static-debian12:nonroot"),
    ("Dockerfile.alpine", "alpine:3.20"),
];

/// Each image copies what scripts/release builds, from a stage that runs it, and files that
/// exist; its ENTRYPOINT is the binary it copied, in exec form, ending in `--`.
#[test]
fn the_static_dockerfiles_copy_the_release_binary_and_files_that_exist() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let release = std::fs::read_to_string(repo.join("scripts/release")).unwrap();
    assert!(
        release.contains("target=x86_64-unknown-linux-gnu")
            && release.contains(r#"bin="${CARGO_TARGET_DIR:-target}/$target/release/vault-run""#)
    );
    for (file, base) in STATIC_DOCKERFILES {
        let ins = instructions(file);
        let froms: Vec<&str> = ins.iter().filter(|(i, _)| i == "FROM").map(|(_, r)| r.as_str()).collect();
        assert_eq!(froms.last(), Some(&base), "{file}: final stage");
        assert!(froms[0].starts_with("rust:") && froms[0].ends_with(" AS build"), "{file}: {froms:?}");
        let runs = ins.iter().filter(|(i, _)| i == "RUN").map(|(_, r)| r.as_str()).collect::<Vec<_>>();
        assert!(
            runs.iter().any(|r| r.contains("scripts/release --binary")
                && r.contains("cp target/x86_64-unknown-linux-gnu/release/vault-run /vault-run")),
            "{file}: the build stage runs scripts/release and takes its binary: {runs:?}"
        );
        let mut dest = None;
        for (_, rest) in ins.iter().filter(|(i, _)| i == "COPY") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                ["--from=build", "/vault-run", to] => dest = Some(to.to_string()),
                [from, _, _] if from.starts_with("--from=") => {}
                [from, _] if from.starts_with("--from=") => {}
                [src, _] => assert!(repo.join(src).exists(), "{file}: COPY {src}: no such file"),
                other => panic!("{file}: unexpected COPY {other:?}"),
            }
        }
        let dest = dest.unwrap_or_else(|| panic!("{file}: does not COPY --from=build /vault-run"));
        let entry = exec_form(&ins.iter().find(|(i, _)| i == "ENTRYPOINT").expect("ENTRYPOINT").1);
        let on_path = dest == format!("/usr/local/bin/{}", entry[0]);
        assert!(entry[0] == dest || on_path, "{file}: ENTRYPOINT {entry:?} is not the copied {dest}");
        assert_eq!(entry.last().map(String::as_str), Some("--"), "{file}");
        assert_eq!(exec_form(&ins.iter().find(|(i, _)| i == "CMD").expect("CMD").1), ["/app/agent.sh"]);
    }
}

/// The scratch image, emulated: its root made by the Dockerfile's own RUN line, the files it
/// COPYs (the release binary, busybox for the busybox image's /bin, the example mapping and
/// agent), then its ENTRYPOINT and CMD run as `docker run` would, against the dev server.
#[tokio::test]
async fn the_scratch_image_emulated_in_a_chroot_runs_the_example_agent() {
    if !available() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ins = instructions("Dockerfile.scratch");
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let make_root =
        ins.iter().find(|(i, r)| i == "RUN" && r.contains("/rootfs")).expect("the RUN making /rootfs");
    let script = make_root.1.replace("/rootfs", &r.display().to_string());
    assert!(Command::new("sh").args(["-c", &script]).status().unwrap().success(), "{script}");
    let last_from = ins.iter().rposition(|(i, _)| i == "FROM").unwrap();
    for (_, rest) in ins[last_from..].iter().filter(|(i, _)| i == "COPY") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let to = r.join(words.last().unwrap().trim_start_matches('/'));
        match words[0] {
            "--from=build" if words[1] == "/vault-run" => {
                std::fs::copy(release_binary(), &to).unwrap();
            }
            "--from=build" => {} // the root made above
            "--from=agent" => {
                std::fs::create_dir_all(r.join("bin")).unwrap();
                std::fs::copy(BUSYBOX, r.join("bin/busybox")).unwrap();
                for applet in ["sh", "env", "sed", "sort", "echo", "printf", "test", "["] {
                    std::os::unix::fs::symlink("busybox", r.join("bin").join(applet)).unwrap();
                }
            }
            src => {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(repo.join(src), &to)
                    .unwrap_or_else(|e| panic!("COPY {src} {}: {e}", to.display()));
            }
        }
    }
    let dev = DevServer::start_with(&["--seed", &repo.join("examples/seed.toml").display().to_string()]);
    for d in ["proc", "dev", "run/secrets"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    let key = r.join("run/secrets/agent.key");
    std::fs::write(&key, &dev.agent_key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut argv = exec_form(&ins[last_from..].iter().find(|(i, _)| i == "ENTRYPOINT").unwrap().1);
    argv.extend(exec_form(&ins[last_from..].iter().find(|(i, _)| i == "CMD").unwrap().1));
    let workdir = &ins[last_from..].iter().find(|(i, _)| i == "WORKDIR").unwrap().1;
    let script = r#"set -e
R="$1"; W="$2"; shift 2
mount -t proc proc "$R/proc"
for d in null zero urandom; do : >"$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
exec chroot "$R" /bin/sh -c 'cd "$0" && exec "$@"' "$W" "$@""#;
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh"])
        .arg(r)
        .arg(workdir)
        .args(&argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("ASS_BASE_URL", &dev.base_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_of_within(child, common::T);
    let report = stdout_of(&out);
    assert!(out.status.success(), "{argv:?}\n{report}\n{}", stderr_of(&out));
    for name in ["GEMINI_API_KEY", "DATABASE_URL", "LOG_LEVEL", "STRIPE_SECRET"] {
        assert!(report.contains(&format!("received {name}\n")), "{name}: {report}");
    }
}
