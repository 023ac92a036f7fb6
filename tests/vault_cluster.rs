//! The Vault/OpenBao backend against a real three-node OpenBao Raft cluster on loopback: reads
//! through a standby, a fleet started while the active node is killed, a sealed node, a node
//! that is down, and redirects. Under CI these fail (not skip) when `bao` is missing.

mod common;

use std::time::Instant;

use common::bao::bao_available;
use common::bao_cluster::{BaoCluster, Health};
use common::{env_of, output_within, stderr_of, T};
use serde_json::{json, Value};

/// Five secrets, `secret/app/s0` … `s4`, each with a field `v` = `value-N`.
fn seed() -> Vec<(String, Value)> {
    (0..5).map(|n| (format!("app/s{n}"), json!({ "v": format!("value-{n}") }))).collect()
}

async fn cluster() -> Option<BaoCluster> {
    if !bao_available() {
        return None;
    }
    let seed = seed();
    let seed: Vec<(&str, Value)> = seed.iter().map(|(p, v)| (p.as_str(), v.clone())).collect();
    Some(BaoCluster::start(&seed).await)
}

/// `-e S0=vault://secret/app/s0#v` … for the five seeded secrets.
fn five_secrets() -> Vec<String> {
    (0..5).flat_map(|n| ["-e".to_owned(), format!("S{n}=vault://secret/app/s{n}#v")]).collect()
}

/// Whether the child's environment (`env -0` output) holds all five secrets.
fn has_all_five(stdout: &[u8]) -> bool {
    let env = env_of(stdout);
    (0..5).all(|n| env.get(&format!("S{n}")).map(String::as_str) == Some(format!("value-{n}").as_str()))
}

#[tokio::test]
async fn a_launch_through_a_standby_reads_every_secret_and_revokes_its_token() {
    let started = Instant::now();
    let Some(c) = cluster().await else { return };
    eprintln!("cluster up in {:?}", started.elapsed());
    let standby = c.standby().await;
    let dir = tempfile::tempdir().unwrap();
    let before = c.accessors().await;
    let out = output_within(c.run(standby, dir.path()).args(five_secrets()).args(["--", "env", "-0"]), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(has_all_five(&out.stdout), "{}", stderr_of(&out));
    assert_eq!(c.accessors().await, before, "the child token is revoked");
    assert_eq!(c.health(standby).await, Health::Standby);
}
