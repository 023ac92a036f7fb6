//! A new user's first minutes, continued (issue 21): the command resolved before anything is
//! fetched, errors that say how to fix them, approvals a person can act on, help and completion.

mod common;

use std::time::Duration;

use common::{stderr_of, tmp, vault_run, write, DevServer, T};
use serde_json::Value;

/// Every request the dev server has counted, by route.
async fn requests(dev: &DevServer) -> Value {
    dev.stats().await["requests"].clone()
}

#[tokio::test]
async fn the_command_is_resolved_before_any_request_so_no_approval_is_spent() {
    let dev = DevServer::start();
    // A sensitive secret: fetching it would ask a human for a one-time approval.
    dev.put_tier("myagent/STRIPE_KEY", "sk-live-0001", "sensitive").await;
    let dir = tmp();
    write(dir.path(), "noexec.sh", "#!/bin/sh\necho hi\n");
    let cases: &[(&str, i32, &str)] = &[
        ("-e S=myagent/STRIPE_KEY -- pyhton3 agent.py", 127, "command not found: pyhton3"),
        ("-e S=myagent/STRIPE_KEY -- ./noexec.sh", 126, "not executable"),
        ("-e S=myagent/STRIPE_KEY -- /tmp", 126, "not executable"),
        (
            "-e S=myagent/STRIPE_KEY -- --allow-insecure-http -- /app/agent.sh",
            64,
            "vault-run's options go before `--`",
        ),
        (
            "-e S=myagent/STRIPE_KEY check",
            127,
            "did you mean the subcommand? Put vault-run's options after it: vault-run check",
        ),
        ("-e S=myagent/STRIPE_KEY dev", 127, "vault-run dev [OPTIONS]"),
        ("-e S=myagent/STRIPE_KEY chekc", 127, "did you mean `vault-run check`?"),
        ("-e S=myagent/STRIPE_KEY import .env", 127, "did you mean `vault-run secrets import`?"),
    ];
    let before = requests(&dev).await;
    for (args, code, says) in cases {
        let started = std::time::Instant::now();
        let out = common::output_within(vault_run(&dev, dir.path()).args(common::words(args)), T);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(*code), "{args}: {err}");
        assert!(err.contains(says), "{args}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args}: one line: {err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{args}: at once");
    }
    let after = requests(&dev).await;
    assert_eq!(before, after, "no request reached the server");
    assert_eq!(after["POST /v1/tokens"].as_u64().unwrap_or(0), 0, "{after}");
    assert!(dev.pending().await.is_empty(), "no approval was asked for");
}
