//! KV secrets engine reads, v1 and v2, with the mount found the way the `vault` CLI finds it:
//! `GET sys/internal/ui/mounts/<path>` says where the mount ends and which KV version it is.

use std::collections::BTreeMap;

use serde::Deserialize;

use agentsecretstore::secret::SecretString;

/// A KV mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Mount path with its trailing `/` (`secret/`).
    pub path: String,
    /// 1 or 2.
    pub version: u8,
}

/// `sys/internal/ui/mounts/<path>` answer.
#[derive(Debug, Deserialize)]
pub struct MountInfo {
    data: MountData,
}

#[derive(Debug, Deserialize)]
struct MountData {
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    options: Option<BTreeMap<String, serde_json::Value>>,
}

impl MountInfo {
    /// The mount, or why it is not a KV mount.
    pub fn into_mount(self) -> Result<Mount, String> {
        let d = self.data;
        if d.kind != "kv" && d.kind != "generic" {
            return Err(format!("the mount {} is a {} engine, not KV", d.path, d.kind));
        }
        let version = match d.options.as_ref().and_then(|o| o.get("version")) {
            Some(serde_json::Value::String(v)) if v == "2" => 2,
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(2) => 2,
            _ => 1,
        };
        let path = if d.path.ends_with('/') { d.path } else { format!("{}/", d.path) };
        Ok(Mount { path, version })
    }
}

/// The API path that reads `full` (mount included) on `mount`.
pub fn read_path(mount: &Mount, full: &str) -> String {
    let rest = full.strip_prefix(mount.path.as_str()).unwrap_or(full).trim_start_matches('/');
    match mount.version {
        2 => format!("{}data/{rest}", mount.path),
        _ => format!("{}{rest}", mount.path),
    }
}

/// One field value: strings as they are, anything else as its JSON text. Parsed straight into
/// a zeroizing buffer.
#[derive(Debug)]
pub struct Field(pub SecretString);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(SecretString),
            Other(serde_json::Value),
        }
        Ok(Field(match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Other(v) => SecretString::new(v.to_string()),
        }))
    }
}

/// A read secret: its fields and (v2) version.
#[derive(Debug)]
pub struct KvSecret {
    /// Field name → value.
    pub fields: BTreeMap<String, Field>,
    /// Version (KV v2 only).
    pub version: Option<u64>,
}

#[derive(Deserialize)]
struct V1 {
    data: BTreeMap<String, Field>,
}

#[derive(Deserialize)]
struct V2 {
    data: V2Data,
}

#[derive(Deserialize)]
struct V2Data {
    data: Option<BTreeMap<String, Field>>,
    #[serde(default)]
    metadata: Option<V2Meta>,
}

#[derive(Deserialize)]
struct V2Meta {
    #[serde(default)]
    version: Option<u64>,
}

/// Parses a read answer for a mount of `version`. `None` data (a deleted v2 version) reads as
/// no secret.
pub fn parse(version: u8, bytes: &[u8]) -> Result<Option<KvSecret>, serde_json::Error> {
    Ok(match version {
        2 => {
            let v: V2 = serde_json::from_slice(bytes)?;
            v.data.data.map(|fields| KvSecret { fields, version: v.data.metadata.and_then(|m| m.version) })
        }
        _ => {
            let v: V1 = serde_json::from_slice(bytes)?;
            Some(KvSecret { fields: v.data, version: None })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_versions() {
        let v2: MountInfo =
            serde_json::from_str(r#"{"data":{"path":"secret/","type":"kv","options":{"version":"2"}}}"#)
                .unwrap();
        assert_eq!(v2.into_mount().unwrap(), Mount { path: "secret/".into(), version: 2 });
        let v1: MountInfo =
            serde_json::from_str(r#"{"data":{"path":"kv1/","type":"kv","options":null}}"#).unwrap();
        assert_eq!(v1.into_mount().unwrap().version, 1);
        let pki: MountInfo = serde_json::from_str(r#"{"data":{"path":"pki/","type":"pki"}}"#).unwrap();
        assert!(pki.into_mount().is_err());
    }

    #[test]
    fn read_paths() {
        let v2 = Mount { path: "secret/".into(), version: 2 };
        assert_eq!(read_path(&v2, "secret/app/db"), "secret/data/app/db");
        let v1 = Mount { path: "team/kv/".into(), version: 1 };
        assert_eq!(read_path(&v1, "team/kv/app"), "team/kv/app");
    }

    #[test]
    fn parses_fields_of_any_type() {
        let body = br#"{"data":{"data":{"user":"app","port":5432,"tls":true},"metadata":{"version":3}}}"#;
        let s = parse(2, body).unwrap().unwrap();
        assert_eq!(s.version, Some(3));
        assert_eq!(s.fields["user"].0.expose(), "app");
        assert_eq!(s.fields["port"].0.expose(), "5432");
        assert_eq!(s.fields["tls"].0.expose(), "true");
        let deleted = br#"{"data":{"data":null,"metadata":{"version":4}}}"#;
        assert!(parse(2, deleted).unwrap().is_none());
        let v1 = parse(1, br#"{"data":{"password":"pw"}}"#).unwrap().unwrap();
        assert_eq!(v1.fields["password"].0.expose(), "pw");
    }
}
