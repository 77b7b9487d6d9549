//! Content digests: `sha256:<64 lowercase hex>`, the only algorithm berth writes or reads.
//!
//! A `Digest` is validated on every way in (parse, `FromStr`, serde), so its hex part is
//! safe to use as a file name: it can never hold `/`, `..`, NUL or anything but `[0-9a-f]`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A validated sha256 content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    // Always "sha256:" + 64 lowercase hex digits.
    s: String,
}

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestError(pub String);

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DigestError {}

pub const SHA256_PREFIX: &str = "sha256:";

fn is_hex64(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`. Anything else (another algorithm, upper case,
    /// a wrong length, a path) is an error.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError(format!("invalid digest {s:?}: want sha256:<64 hex digits>")));
        };
        if algo != "sha256" {
            return Err(DigestError(format!("invalid digest {s:?}: unsupported algorithm {algo:?} (only sha256)")));
        }
        if !is_hex64(hex) {
            return Err(DigestError(format!("invalid digest {s:?}: want 64 lowercase hex digits")));
        }
        Ok(Digest { s: s.to_string() })
    }

    /// A digest from its hex part alone (a blob file name, a cache key).
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        if !is_hex64(hex) {
            return Err(DigestError(format!("invalid sha256 hex {hex:?}")));
        }
        Ok(Digest { s: format!("{SHA256_PREFIX}{hex}") })
    }

    /// A digest from the 32 bytes of a finished sha256.
    pub fn from_sha256_bytes(bytes: &[u8; 32]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(71);
        s.push_str(SHA256_PREFIX);
        for b in bytes {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        Digest { s }
    }

    /// "sha256"
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.s[SHA256_PREFIX.len()..]
    }

    /// The first 12 hex digits, as `docker images` shows an id.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    pub fn as_str(&self) -> &str {
        &self.s
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.s)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.s)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.s)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_sha256_only() {
        let d = Digest::parse(&format!("sha256:{E}")).unwrap();
        assert_eq!(d.hex(), E);
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(d.to_string(), format!("sha256:{E}"));
        assert_eq!(Digest::from_hex(E).unwrap(), d);
        for bad in [
            E.to_string(),
            format!("sha512:{E}"),
            format!("sha256:{}", E.to_uppercase()),
            format!("sha256:{}", &E[..63]),
            format!("sha256:{E}0"),
            "sha256:../../../../etc/passwd".to_string(),
            format!("sha256:{}/..", &E[..61]),
            format!("sha256:{}\0", &E[..63]),
            "sha256:".to_string(),
            String::new(),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad:?} accepted");
        }
        assert!(Digest::from_hex("../x").is_err());
    }

    #[test]
    fn serde_validates() {
        let d: Digest = serde_json::from_str(&format!("\"sha256:{E}\"")).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"sha256:{E}\""));
        assert!(serde_json::from_str::<Digest>("\"sha256:../../x\"").is_err());
    }

    #[test]
    fn from_bytes() {
        let d = Digest::from_sha256_bytes(&[0xab; 32]);
        assert_eq!(d.hex(), "ab".repeat(32));
    }
}
