//! Content digests: `sha256:<64 lowercase hex>`, the algorithm berth writes, and
//! `sha512:<128 lowercase hex>`, the other OCI-registered one, which registries may serve.
//!
//! A `Digest` is validated on every way in (parse, `FromStr`, serde), so its hex part is
//! safe to use as a file name: it can never hold `/`, `..`, NUL or anything but `[0-9a-f]`.
//! Code that keeps sha256 only (the builder's store) checks [`Digest::algorithm`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;
use std::str::FromStr;

/// A validated content digest (sha256 or sha512).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    // Always "sha256:" + 64 or "sha512:" + 128 lowercase hex digits.
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

fn is_hex(h: &str, len: usize) -> bool {
    h.len() == len && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_hex64(h: &str) -> bool {
    is_hex(h, 64)
}

fn hex_string(prefix: &str, bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(prefix.len() + bytes.len() * 2);
    s.push_str(prefix);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`. Anything else
    /// (another algorithm, upper case, a wrong length, a path) is an error.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError(format!("invalid digest {s:?}: no algorithm")));
        };
        let want = match algo {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(DigestError(format!("invalid digest {s:?}: unsupported algorithm {algo:?}"))),
        };
        if !is_hex(hex, want) {
            return Err(DigestError(format!("invalid digest {s:?}: want {want} lowercase hex digits")));
        }
        Ok(Digest { s: s.to_string() })
    }

    /// The sha256 digest of `data`.
    pub fn sha256(data: &[u8]) -> Digest {
        Digest::from_sha256_bytes(&Sha256::digest(data).into())
    }

    /// The digest of `data` with the same algorithm as `self` (to check content
    /// against a digest a registry named).
    pub fn same_algo_of(&self, data: &[u8]) -> Digest {
        match self.algorithm() {
            "sha512" => Digest::from_sha512_bytes(&Sha512::digest(data).into()),
            _ => Digest::sha256(data),
        }
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
        Digest { s: hex_string(SHA256_PREFIX, bytes) }
    }

    /// A digest from the 64 bytes of a finished sha512.
    pub fn from_sha512_bytes(bytes: &[u8; 64]) -> Digest {
        Digest { s: hex_string("sha512:", bytes) }
    }

    /// "sha256" or "sha512".
    pub fn algorithm(&self) -> &str {
        self.s.split_once(':').map_or("", |x| x.0)
    }

    /// The hex digits (64 for sha256, 128 for sha512).
    pub fn hex(&self) -> &str {
        self.s.split_once(':').map_or("", |x| x.1)
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
            format!("md5:{E}"),
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
    fn sha512_is_accepted_and_hashed_alike() {
        let d512 = Digest::parse(&format!("sha512:{}", "ab".repeat(64))).unwrap();
        assert_eq!(d512.algorithm(), "sha512");
        assert_eq!(d512.hex().len(), 128);
        assert_eq!(d512.same_algo_of(b"").algorithm(), "sha512");
        assert_eq!(Digest::sha256(b"").hex(), E);
        assert_eq!(Digest::sha256(b"").same_algo_of(b""), Digest::sha256(b""));
        assert!(Digest::parse(&format!("sha512:{}", "AB".repeat(64))).is_err());
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
