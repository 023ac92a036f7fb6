//! `vault-run dev approve ID` and `vault-run dev deny ID`: the dev server's admin calls, so that
//! approving a request in local development is one command rather than a hand-written `curl`.
//! The admin key comes from `ASS_ADMIN_KEY` (never an argument, which anyone can read in
//! `/proc`), the server from `ASS_BASE_URL`, as `vault-run dev` printed them.

use std::process::ExitCode;

use zeroize::Zeroizing;

use crate::exit;

/// What to do with an approval.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DevAction {
    /// Approve a pending approval on a running `vault-run dev` (ASS_BASE_URL, ASS_ADMIN_KEY).
    Approve {
        /// The approval id (apr_…).
        id: String,
    },
    /// Deny a pending approval on a running `vault-run dev` (ASS_BASE_URL, ASS_ADMIN_KEY).
    Deny {
        /// The approval id (apr_…).
        id: String,
        /// Why (shown to the agent).
        #[arg(long, default_value = "denied from the command line")]
        reason: String,
    },
}

/// Runs the action; one line on success or failure.
pub fn main(action: DevAction) -> ExitCode {
    let fail = |code: u8, message: String| {
        eprintln!("vault-run dev: error: {message} (exit {code})");
        ExitCode::from(code)
    };
    let Some(base) = std::env::var("ASS_BASE_URL").ok().filter(|v| !v.trim().is_empty()) else {
        return fail(exit::CONFIG, "ASS_BASE_URL is not set; set it to the URL vault-run dev printed".into());
    };
    let Some(key) = std::env::var("ASS_ADMIN_KEY").ok().filter(|v| !v.trim().is_empty()).map(Zeroizing::new)
    else {
        return fail(
            exit::CONFIG,
            "ASS_ADMIN_KEY is not set; export the admin key vault-run dev printed (ASS_ADMIN_KEY=…)".into(),
        );
    };
    let base = match agentsecretstore::client::check_base_url(&base, false) {
        Ok(b) => b,
        Err(e) => return fail(exit::CONFIG, e.to_string()),
    };
    let (verb, done, id, body) = match &action {
        DevAction::Approve { id } => ("approve", "approved", id, None),
        DevAction::Deny { id, reason } => {
            ("deny", "denied", id, Some(serde_json::json!({ "reason": reason })))
        }
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return fail(exit::USAGE, format!("{id:?} is not an approval id (apr_…)"));
    }
    let url = format!("{base}/v1/approvals/{id}/{verb}");
    let send = async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut req = client.post(&url).bearer_auth(key.as_str());
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, text))
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(exit::SOFTWARE, format!("cannot start the I/O runtime: {e}")),
    };
    match rt.block_on(send) {
        Ok((200..=299, _)) => {
            println!("{done} {id}");
            ExitCode::SUCCESS
        }
        Ok((status, text)) => {
            // The contract's error body: `{"error":{"code","message"},"detail"}` or `{"detail"}`.
            let message = serde_json::from_str::<agentsecretstore::wire::ErrorBody>(&text)
                .ok()
                .and_then(|b| b.message())
                .map_or_else(|| format!("HTTP {status}"), |m| format!("{m} (HTTP {status})"));
            let code = match status {
                401 | 403 => exit::AUTH,
                404 | 409 | 410 => exit::MISSING,
                _ => exit::TEMPORARY,
            };
            fail(
                code,
                format!(
                    "cannot {verb} {id} at {base}: {}",
                    agentsecretstore::client::transport::one_line(&message)
                ),
            )
        }
        Err(e) => fail(
            exit::TEMPORARY,
            format!("cannot reach vault-run dev at {base} ({e}); check ASS_BASE_URL and that it is running"),
        ),
    }
}
