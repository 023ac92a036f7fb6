//! Every decoder of what a server sends: the Agent Secret Store wire types, error bodies,
//! `Retry-After`, timestamps, Vault KV reads and mount answers, and the dev server's request
//! bodies. Whatever decodes must encode and decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use vault_run::parsers::kv;
use agentsecretstore::client::transport::parse_retry_after;
use agentsecretstore::wire::*;

/// Decodes `data` as `T`; if it decodes, its JSON form decodes too.
fn round<T: DeserializeOwned + Serialize>(data: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    let again = serde_json::to_vec(&v).expect("what decoded encodes");
    let _: T = serde_json::from_slice(&again).expect("what we encode decodes");
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    round::<TokenRequest>(data);
    if let Some(reply) = round::<TokenReply>(data) {
        let _ = format!("{reply:?}");
    }
    round::<SecretResponse>(data);
    round::<SecretWriteRequest>(data);
    round::<SecretWriteResponse>(data);
    round::<SecretListItem>(data);
    round::<SecretListResponse>(data);
    round::<ImportRequest>(data);
    round::<ImportResponse>(data);
    round::<ApprovalStatus>(data);
    round::<DenyRequest>(data);
    round::<Health>(data);
    round::<CreateAgentRequest>(data);
    round::<CreateAgentResponse>(data);
    round::<SecretType>(data);
    round::<AccessTier>(data);
    round::<ApprovalState>(data);
    if let Some(body) = round::<ErrorBody>(data) {
        let _ = (body.code(), body.message());
    }
    for version in [1, 2] {
        if let Ok(Some(secret)) = kv::parse(version, data) {
            for field in secret.fields.values() {
                let _ = field.0.expose();
            }
        }
    }
    if let Ok(info) = serde_json::from_slice::<kv::MountInfo>(data) {
        if let Ok(mount) = info.into_mount() {
            let _ = kv::read_path(&mount, "secret/app/db");
        }
    }
    let _ = serde_json::from_slice::<agentsecretstore_dev::faults::FaultPatch>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(d) = parse_retry_after(s) {
            let _ = d.as_secs();
        }
        if let Ok(t) = s.parse::<Timestamp>() {
            let shown = t.to_string();
            assert!(shown.parse::<Timestamp>().is_ok(), "{s:?} -> {shown:?}");
            let _ = (t.remaining(), t.is_past());
        }
    }
});
