//! Content digests (`sha256:<64 lowercase hex>`), the addresses of the content store.
use std::fmt;

use sha2::{Digest as _, Sha256};

/// A sha256 digest. Only sha256 is produced or accepted, as in Docker's image store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest {digest:?}: unsupported digest algorithm")]
    Algorithm { digest: String },
    #[error("invalid digest {digest:?}: expected 64 lowercase hex characters")]
    Hex { digest: String },
}

fn is_hex64(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Digest {
    /// Parses `sha256:<64 hex>`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| DigestError::Algorithm {
                digest: s.to_owned(),
            })?;
        if !is_hex64(hex) {
            return Err(DigestError::Hex {
                digest: s.to_owned(),
            });
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }

    /// From the 64 hex characters alone.
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        if !is_hex64(hex) {
            return Err(DigestError::Hex {
                digest: hex.to_owned(),
            });
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }

    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// From a finished hasher.
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest {
            hex: hex::encode(h.finalize()),
        }
    }

    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as `docker images` shows IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_hash() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert_eq!(Digest::from_hex(d.hex()).unwrap(), d);
        assert!(matches!(
            Digest::parse("md5:abc"),
            Err(DigestError::Algorithm { .. })
        ));
        assert!(matches!(
            Digest::parse("sha256:ABC"),
            Err(DigestError::Hex { .. })
        ));
        assert!(Digest::parse(&d.to_string().to_uppercase().replace("SHA256", "sha256")).is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }
}
