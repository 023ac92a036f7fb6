//! `secrets import FILE --namespace NS`: a `.env` file read with `--env-file`'s parser, one
//! secret per variable at `NS/NAME`, written with one token scoped to exactly those writes.
//! `--print-mapping` prints the `[env]` table that maps them back (no values).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::args::WriteSpec;
use super::error::SecretsError;
use super::store::Store;
use crate::settings::Flags;
use agentsecretstore::path::SecretPath;
use agentsecretstore::secret::SecretString;

/// Runs the import.
pub fn run(
    flags: &Flags,
    file: &Path,
    namespace: &str,
    print_mapping: bool,
    spec: &WriteSpec,
    quiet: bool,
) -> Result<(), SecretsError> {
    let secrets = read(file, namespace)?;
    let store = Store::connect(flags)?;
    let written = store.write(&secrets, spec)?;
    if print_mapping {
        let mut out = std::io::stdout().lock();
        out.write_all(mapping(file, namespace, &written).as_bytes())
            .and_then(|()| out.flush())
            .map_err(SecretsError::Output)?;
    }
    if !quiet {
        let names: Vec<&str> = written.iter().map(|(p, _)| p.key()).collect();
        let ns = namespace.trim_matches('/');
        eprintln!(
            "vault-run: imported {} secret{} into {ns}: {} (values not shown)",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
        if !print_mapping {
            eprintln!(
                "vault-run: map them with `\"*\" = \"{ns}/*\"` under [env] in vault-run.toml, or run again with --print-mapping > vault-run.toml"
            );
        }
    }
    Ok(())
}

/// The file's variables as (path, value), checked before anything is sent. Values that are
/// already references (`ass://…`) are left out: they point at secrets that exist.
fn read(file: &Path, namespace: &str) -> Result<Vec<(SecretPath, SecretString)>, SecretsError> {
    // `${ASS_AGENT_KEY}` must not turn the agent key into a stored secret.
    let lookup = |name: &str| {
        if crate::backend::registry::is_credential_var(name.as_bytes()) {
            return Err(crate::expand::Refused);
        }
        Ok(std::env::var(name).ok())
    };
    let vars = crate::envfile::read_all(&[file.to_owned()], &lookup)
        .map_err(|e| SecretsError::Config(e.to_string()))?;
    let ns = namespace.trim_matches('/');
    SecretPath::new(ns, "KEY").map_err(|e| {
        SecretsError::Usage(format!(
            "--namespace {namespace:?} is not a namespace ({e}); give one like myagent or prod/app"
        ))
    })?;
    let mut out = Vec::new();
    for var in vars {
        if var.is_reference() {
            tracing::warn!("{}: {} is already a reference; not imported", file.display(), var.name);
            continue;
        }
        let path = SecretPath::new(ns, &var.name)
            .map_err(|e| SecretsError::Config(format!("{}: {}: {e}", file.display(), var.name)))?;
        out.push((path, SecretString::new(var.value.as_str().to_owned())));
    }
    if out.is_empty() {
        return Err(SecretsError::Config(format!(
            "{}: nothing to import (no NAME=value lines); a .env file has lines like OPENAI_API_KEY=sk-…",
            file.display()
        )));
    }
    Ok(out)
}

/// The `vault-run.toml` that maps each written variable to its secret.
fn mapping(file: &Path, namespace: &str, written: &[(SecretPath, u64)]) -> String {
    let mut out = format!(
        "# vault-run.toml: the secrets `vault-run secrets import {} --namespace {}` wrote (no values).\n# Run the agent with: vault-run -- COMMAND\n[env]\n",
        file.display(),
        namespace.trim_matches('/')
    );
    for (path, _) in written {
        let _ = writeln!(out, "{} = {}", toml_key(path.key()), toml::Value::String(path.to_string()));
    }
    out
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        name.to_owned()
    } else {
        toml::Value::String(name.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_is_valid_toml_for_every_name() {
        let written = vec![
            (SecretPath::new("my agent", "OPENAI_API_KEY").unwrap(), 1),
            (SecretPath::new("my agent", "odd.name").unwrap(), 2),
        ];
        let text = mapping(Path::new(".env"), "my agent", &written);
        let parsed: toml::Table = text.parse().unwrap();
        let env = parsed["env"].as_table().unwrap();
        assert_eq!(env["OPENAI_API_KEY"].as_str(), Some("my agent/OPENAI_API_KEY"));
        assert_eq!(env["odd.name"].as_str(), Some("my agent/odd.name"));
    }
}
