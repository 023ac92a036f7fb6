//! AWS Signature Version 4 for the few requests this backend sends (a JSON `POST /`), on
//! `ring`'s SHA-256 and HMAC, which rustls already brings in.
//!
//! Why not the `aws-sigv4` crate: its releases need Rust 1.94 (our MSRV is 1.80), and the older
//! ones that built on 1.80 pull in the `aws-smithy-*` runtime for about 60 lines of hashing. The
//! signer below is checked against AWS's published SigV4 test suite (`get-vanilla`,
//! `post-vanilla`, and the request with a query and a session token that botocore signs).

use ring::{digest, hmac};
use zeroize::Zeroizing;

/// What a request is signed with.
pub struct Signer<'a> {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: &'a str,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: &'a str,
    /// The region the endpoint serves.
    pub region: &'a str,
    /// The service (`secretsmanager`).
    pub service: &'a str,
}

/// One request to sign: headers as (lower-case name, value), `Host` and `X-Amz-Date` among them.
pub struct Request<'a> {
    /// `GET`, `POST`.
    pub method: &'a str,
    /// The URI path, already URI-encoded (`/`).
    pub path: &'a str,
    /// The query, already in canonical form (sorted, encoded), or empty.
    pub query: &'a str,
    /// Every header to sign.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: &'a [u8],
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac(key: &[u8], data: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
}

impl Signer<'_> {
    /// The `Authorization` header for `request` at `amz_date` (`20150830T123600Z`, the value of
    /// its `X-Amz-Date` header).
    pub fn authorization(&self, request: &Request<'_>, amz_date: &str) -> String {
        let mut headers: Vec<(&str, &str)> = request.headers.to_vec();
        headers.sort_by_key(|(name, _)| *name);
        let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{}\n", v.trim())).collect();
        let signed_headers = headers.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(";");
        let canonical_request = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
            request.method,
            request.path,
            request.query,
            sha256_hex(request.payload)
        );
        let date = &amz_date[..8.min(amz_date.len())];
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let to_sign =
            format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()));
        let first = Zeroizing::new(format!("AWS4{}", self.secret_access_key));
        let key = [date, self.region, self.service, "aws4_request"]
            .iter()
            .fold(Zeroizing::new(first.as_bytes().to_vec()), |key, part| {
                Zeroizing::new(hmac(&key, part).as_ref().to_vec())
            });
        let signature = hex(hmac(&key, &to_sign).as_ref());
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key_id
        )
    }
}

/// `X-Amz-Date` for `at`: `YYYYMMDDTHHMMSSZ`, in UTC.
pub fn amz_date(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    at.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials and date of AWS's SigV4 test suite.
    const SUITE: Signer<'static> = Signer {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
        service: "service",
    };
    const DATE: &str = "20150830T123600Z";

    fn signature(signer: &Signer<'_>, request: &Request<'_>) -> String {
        signer.authorization(request, DATE).rsplit("Signature=").next().unwrap().to_owned()
    }

    #[test]
    fn aws_test_suite_vanilla_requests() {
        let headers = [("host", "example.amazonaws.com"), ("x-amz-date", DATE)];
        let get = Request { method: "GET", path: "/", query: "", headers: &headers, payload: b"" };
        assert_eq!(
            SUITE.authorization(&get, DATE),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        let post = Request { method: "POST", ..get };
        assert_eq!(signature(&SUITE, &post), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    }

    #[test]
    fn a_secrets_manager_call_with_a_session_token_signs_as_botocore_does() {
        let signer = Signer { region: "eu-west-1", service: "secretsmanager", ..SUITE };
        let headers = [
            ("x-amz-target", "secretsmanager.GetSecretValue"),
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "127.0.0.1:5000"),
            ("x-amz-date", DATE),
            ("x-amz-security-token", "SESSIONTOKEN"),
        ];
        let request = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload: br#"{"SecretId":"prod/db"}"#,
        };
        // botocore.auth.SigV4Auth, same inputs.
        assert_eq!(signature(&signer, &request), "7e1cc0439ad391b8eda4f725662e6e4d93117cb5ee74b027bf6691f482edfaf6");
    }

    #[test]
    fn dates() {
        let at = |secs| time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        assert_eq!(amz_date(at(0)), "19700101T000000Z");
        assert_eq!(amz_date(at(1_440_938_160)), DATE);
    }
}
