//! Load: 200 vault-run processes started at once against a dev server limited to 50 requests/s.
//! Every one must start its child with every secret (429s are absorbed by jittered retries
//! honouring Retry-After), none may start a child with a secret missing, and the whole run
//! must end within [`BOUND`].
//!
//! The work is 200 × (1 token + 3 reads) = 800 requests: at 50/s that is 16 s at best.

mod common;

use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{vault_run, DevServer};

const PROCESSES: usize = 200;
const RATE: &str = "50/s";
/// The stated bound on the whole run (spawn to last exit). The ideal is 16 s.
const BOUND: Duration = Duration::from_secs(120);

const SECRETS: [(&str, &str, &str); 3] = [
    ("A", "load/app/A", "load-value-a-4b1d"),
    ("B", "load/app/B", "load-value-b-93c0"),
    ("C", "load/db/C", "load-value-c-77e2"),
];

fn expected_stdout() -> String {
    SECRETS.iter().map(|(_, _, v)| *v).collect::<Vec<_>>().join("|")
}

#[tokio::test]
async fn two_hundred_processes_against_fifty_requests_per_second() {
    let dev = DevServer::start_with(&["--rate-limit", RATE]);
    for (_, path, value) in SECRETS {
        dev.put(path, value).await;
    }
    // Let the bucket fill again after the writes so every process meets the same server.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    dev.admin("POST", "/v1/dev/reset-stats", None).await;

    let dir = tempfile::tempdir().unwrap();
    // The child prints each variable or MISSING: a child started without a secret is caught
    // even if it exits 0.
    let script = r#"printf '%s|%s|%s' "${A-MISSING}" "${B-MISSING}" "${C-MISSING}""#;
    let started = Instant::now();
    let mut children: Vec<Child> = Vec::with_capacity(PROCESSES);
    for _ in 0..PROCESSES {
        let mut cmd = vault_run(&dev, dir.path());
        // Default flags: 429s are waited out (paced by Retry-After) up to --deadline (2m),
        // whatever --retries says, so a fleet queues up instead of giving up.
        for (name, path, _) in SECRETS {
            cmd.args(["-e", &format!("{name}={path}")]);
        }
        cmd.args(common::words("-- sh -c")).arg(script).stdout(Stdio::piped()).stderr(Stdio::piped());
        children.push(cmd.spawn().expect("spawn vault-run"));
    }
    let spawned = started.elapsed();

    // A watchdog: whatever is still running at BOUND is killed, so the test always stops.
    let pids: Arc<Mutex<Vec<u32>>> = Arc::new(Mutex::new(children.iter().map(Child::id).collect()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (pids, done) = (pids.clone(), done.clone());
        std::thread::spawn(move || {
            while started.elapsed() < BOUND {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            for pid in pids.lock().unwrap().iter() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        });
    }
    let waiters: Vec<_> = children
        .into_iter()
        .map(|child| {
            std::thread::spawn(move || {
                let out: Output = common::output_of_within(child, Duration::from_secs(300));
                (out, started.elapsed())
            })
        })
        .collect();
    let results: Vec<(Output, Duration)> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let total = started.elapsed();

    let want = expected_stdout();
    let mut failures = Vec::new();
    for (i, (out, _)) in results.iter().enumerate() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("MISSING"), "process {i}: a child started without a secret: {stdout}");
        if out.status.code() != Some(0) || stdout != want {
            failures.push(format!(
                "process {i}: {:?} {stdout:?} {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let stats = dev.stats().await;
    let mut finish: Vec<Duration> = results.iter().map(|(_, t)| *t).collect();
    finish.sort();
    eprintln!(
        "load: {PROCESSES} processes at {RATE}: spawned in {spawned:?}, all done in {total:?}; \
         first exit {:?}, median {:?}, last {:?}; server saw {} requests ({} refused by the rate limit), \
         {} tokens issued",
        finish[0],
        finish[finish.len() / 2],
        finish[finish.len() - 1],
        stats["total_requests"],
        stats["faults_injected"],
        stats["tokens_issued"],
    );
    assert!(failures.is_empty(), "{} of {PROCESSES} failed:\n{}", failures.len(), failures.join("\n"));
    assert!(total < BOUND, "the whole run took {total:?}, over the stated bound {BOUND:?}");
    assert_eq!(stats["tokens_issued"].as_u64(), Some(PROCESSES as u64), "one token per process");
    // No thundering herd: retries spread out, so the refused requests stay within a small
    // multiple of the useful ones (a lockstep herd retries everything every second).
    let useful = (PROCESSES * (SECRETS.len() + 1)) as u64;
    let seen = stats["total_requests"].as_u64().unwrap_or(0);
    assert!(seen >= useful, "{seen} requests for {useful} useful ones");
    assert!(seen < useful * 8, "{seen} requests for {useful} useful ones: the fleet is retrying in a herd");
}
