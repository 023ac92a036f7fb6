//! Where the AWS credentials, region and endpoint come from, in the order the AWS SDKs look:
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the profile
//! (`AWS_PROFILE`, else `default`) in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
//! else `~/.aws/credentials`) and config file (`AWS_CONFIG_FILE`, else `~/.aws/config`);
//! `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's `region`;
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, then the profile's `endpoint_url`
//! (none of them when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else the regional endpoint.
//!
//! The shared files are read by a few lines here rather than an INI crate: their format is
//! AWS's own (`[profile NAME]` in one file and `[NAME]` in the other, indented lines that belong
//! to the key above), which a general INI reader gets subtly wrong.
//! Only static keys are supported; a profile that assumes a role, uses SSO or runs a
//! `credential_process` is refused with a way out.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::backend::{BackendError, FailureKind};
use crate::inherited::Snapshot;
use agentsecretstore::secret::SecretString;

/// Variables holding AWS credentials: removed from the child's environment.
pub const CREDENTIAL_VARS: &[&str] =
    &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

/// Static credentials.
pub struct Credentials {
    /// The access key id (not secret, but not logged).
    pub access_key_id: String,
    /// The secret key: signs, is never sent.
    pub secret_access_key: SecretString,
    /// A temporary credential's token, sent with every request.
    pub session_token: Option<SecretString>,
    /// Where they were found, for messages.
    pub source: String,
}

/// Everything a client needs.
pub struct Config {
    /// Who signs.
    pub credentials: Credentials,
    /// The region (for the signature and the default endpoint).
    pub region: String,
    /// The endpoint's base URL, as configured (checked by the caller).
    pub endpoint: String,
}

type Section = HashMap<String, Zeroizing<String>>;

/// The largest shared file read.
const MAX_FILE: u64 = 1 << 20;

fn config_error(message: String) -> BackendError {
    BackendError::new(FailureKind::Config, message)
}

/// Reads one profile's section of a shared file; a missing file is an empty section.
fn section(path: &PathBuf, header: &str) -> Result<Section, BackendError> {
    let mut text = Zeroizing::new(String::new());
    match std::fs::File::open(path) {
        Ok(f) => {
            f.take(MAX_FILE).read_to_string(&mut text).map_err(|e| {
                config_error(format!("cannot read AWS shared file {}: {e}", path.display()))
            })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Section::new()),
        Err(e) => return Err(config_error(format!("cannot read AWS shared file {}: {e}", path.display()))),
    }
    let mut out = Section::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.split_whitespace().collect::<Vec<_>>().join(" ") == header;
            continue;
        }
        // An indented line continues the key above (nested settings such as `s3 =`).
        if !inside || line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = trimmed.split_once('=') {
            out.insert(key.trim().to_owned(), Zeroizing::new(value.trim().to_owned()));
        }
    }
    Ok(out)
}

/// Finds the credentials, region and endpoint in `env` and the shared files.
pub fn discover(env: &Snapshot) -> Result<Config, BackendError> {
    let var = |name: &str| env.var(name).map(str::trim).filter(|v| !v.is_empty());
    let profile = var("AWS_PROFILE").or_else(|| var("AWS_DEFAULT_PROFILE")).unwrap_or("default");
    let home = var("HOME").map(PathBuf::from);
    let file = |var_name: &str, default: &str| {
        var(var_name).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let credentials_file = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_file = file("AWS_CONFIG_FILE", "config");
    let from_credentials = match &credentials_file {
        Some(p) => section(p, profile)?,
        None => Section::new(),
    };
    let config_header = if profile == "default" { "default".to_owned() } else { format!("profile {profile}") };
    let from_config = match &config_file {
        Some(p) => section(p, &config_header)?,
        None => Section::new(),
    };
    let setting = |key: &str| {
        from_credentials.get(key).or_else(|| from_config.get(key)).map(|v| v.as_str()).filter(|v| !v.is_empty())
    };

    let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Credentials {
            access_key_id: id.to_owned(),
            secret_access_key: SecretString::from(secret),
            session_token: var("AWS_SESSION_TOKEN").or_else(|| var("AWS_SECURITY_TOKEN")).map(SecretString::from),
            source: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".to_owned(),
        },
        (Some(_), None) | (None, Some(_)) => {
            return Err(BackendError::new(
                FailureKind::Auth,
                "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set; set both (and AWS_SESSION_TOKEN for temporary credentials)",
            )
            .with_reason("no AWS credentials"))
        }
        (None, None) => match (setting("aws_access_key_id"), setting("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Credentials {
                access_key_id: id.to_owned(),
                secret_access_key: SecretString::from(secret),
                session_token: setting("aws_session_token").map(SecretString::from),
                source: format!("profile {profile}"),
            },
            _ => {
                let unsupported = ["role_arn", "sso_session", "sso_start_url", "credential_process", "web_identity_token_file"]
                    .into_iter()
                    .find(|k| setting(k).is_some());
                let message = match unsupported {
                    Some(k) => format!(
                        "AWS profile {profile} uses {k}, which vault-run does not support; export static credentials first (eval \"$(aws configure export-credentials --profile {profile} --format env)\")"
                    ),
                    None => format!(
                        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile with aws_access_key_id in {}",
                        credentials_file.as_ref().map_or("~/.aws/credentials".into(), |p| p.display().to_string())
                    ),
                };
                return Err(BackendError::new(FailureKind::Auth, message).with_reason("no AWS credentials"));
            }
        },
    };

    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .or_else(|| setting("region"))
        .map(str::to_owned)
        .ok_or_else(|| config_error("no AWS region: set AWS_REGION (or region in your AWS profile)".to_owned()))?;
    if !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(config_error(format!("AWS region {region:?} is not a region name like eu-west-1")));
    }
    let ignore = var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let configured = (!ignore)
        .then(|| var("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| var("AWS_ENDPOINT_URL")).or_else(|| setting("endpoint_url")))
        .flatten();
    let endpoint = match configured {
        Some(url) => url.to_owned(),
        None => format!("https://secretsmanager.{region}.amazonaws.com"),
    };
    Ok(Config { credentials, region, endpoint })
}
