//! Types for values that must never be printed, logged or left in memory.
//!
//! Every secret value, agent key and token lives in [`SecretString`]: the buffer is zeroized when
//! dropped, and `Debug`/`Display` print `[REDACTED]`, so a stray `{:?}` in a log line cannot leak.
//! The only way to the bytes is [`SecretString::expose`], which makes every use greppable.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// A secret's bytes were not valid UTF-8 (the bytes are not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("value is not valid UTF-8")]
pub struct NotUtf8;

/// A UTF-8 secret (a secret value, an agent key, a token) that zeroizes on drop and redacts itself.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps `value`, taking ownership so that no un-zeroized copy is left with the caller.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// Takes the bytes of a response body or file, zeroizing the original buffer if it is not UTF-8.
    pub fn from_utf8(bytes: Vec<u8>) -> Result<Self, NotUtf8> {
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Self::new(s)),
            Err(e) => {
                // The error owns the bytes; wipe them before it is dropped.
                e.into_bytes().zeroize();
                Err(NotUtf8)
            }
        }
    }

    /// The plain value. Call it only where the value must leave the process (HTTP header,
    /// the child's environment, a memfd) and never to format it into a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (used for size checks, never printed next to a name).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

macro_rules! credential {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a credential.
            pub fn new(value: impl Into<SecretString>) -> Self {
                Self(value.into())
            }

            /// The plain credential, for the `Authorization` header only.
            pub fn expose(&self) -> &str {
                self.0.expose()
            }

            /// The credential as a [`SecretString`].
            pub fn as_secret(&self) -> &SecretString {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[REDACTED]")
            }
        }
    };
}

credential!(
    /// An agent key (`ass_…`): traded for scoped tokens, sent nowhere else.
    AgentKey
);
credential!(
    /// A short-lived scoped token, sent to `/v1/secrets…` only.
    Token
);
credential!(
    /// The dev server's admin key (`ass_admin_…`).
    AdminKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = SecretString::from("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s}"), "[REDACTED]");
        let k = AgentKey::new("ass_abcdef");
        assert_eq!(format!("{k:?}"), "AgentKey([REDACTED])");
        assert!(!format!("{k:?} {k}").contains("abcdef"));
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Token,
        }
        let h = Holder { token: Token::new("tok_123456") };
        assert!(!format!("{h:?}").contains("123456"));
    }

    #[test]
    fn serde_round_trip_keeps_value() {
        let s: SecretString = serde_json::from_str("\"v@lue\"").unwrap();
        assert_eq!(s.expose(), "v@lue");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"v@lue\"");
    }

    #[test]
    fn non_utf8_is_rejected() {
        assert!(SecretString::from_utf8(vec![0xff, 0xfe]).is_err());
        assert_eq!(SecretString::from_utf8(b"ok".to_vec()).unwrap().expose(), "ok");
    }
}
