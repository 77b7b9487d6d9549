//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`) and a reader that hashes and
//! counts what passes through it, so blobs are verified while they stream.

use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

/// A validated content digest. Only sha256 and sha512 are accepted (the OCI
/// registered algorithms); the hex part is lowercase.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    s: String,
}

impl Digest {
    /// Parses `algo:hex`.
    pub fn parse(s: &str) -> Result<Digest, String> {
        let (algo, hex) = s.split_once(':').ok_or_else(|| format!("invalid digest {s:?}: no algorithm"))?;
        let want = match algo {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(format!("invalid digest {s:?}: unsupported algorithm {algo:?}")),
        };
        if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("invalid digest {s:?}: want {want} lowercase hex digits"));
        }
        Ok(Digest { s: s.to_string() })
    }

    /// The sha256 digest of `data`.
    pub fn sha256(data: &[u8]) -> Digest {
        Digest { s: format!("sha256:{}", hex(&Sha256::digest(data))) }
    }

    /// The digest of `data` with the same algorithm as `self`.
    pub fn same_algo_of(&self, data: &[u8]) -> Digest {
        let mut h = Hasher::new(self.algorithm());
        h.update(data);
        h.finish()
    }

    pub fn algorithm(&self) -> &str {
        self.s.split_once(':').map(|x| x.0).unwrap_or("")
    }

    pub fn hex(&self) -> &str {
        self.s.split_once(':').map(|x| x.1).unwrap_or("")
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
    type Err = String;
    fn from_str(s: &str) -> Result<Digest, String> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.s)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// An incremental hash for one of the supported algorithms.
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: &str) -> Hasher {
        match algorithm {
            "sha512" => Hasher::Sha512(Sha512::new()),
            _ => Hasher::Sha256(Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest { s: format!("sha256:{}", hex(&h.finalize())) },
            Hasher::Sha512(h) => Digest { s: format!("sha512:{}", hex(&h.finalize())) },
        }
    }
}

/// Wraps a reader; hashes and counts the bytes read. With an expected digest (and
/// optionally size), the read that reaches end of stream fails with
/// `io::ErrorKind::InvalidData` when the content does not match, so a consumer that
/// commits only after a clean EOF never commits bad content. Reading past the
/// expected size fails at once.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    count: u64,
    expect: Option<Digest>,
    expect_size: Option<u64>,
    on_read: Option<Box<dyn FnMut(u64) + Send>>,
    verified: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expect: Option<Digest>, expect_size: Option<u64>) -> Self {
        let algo = expect.as_ref().map(|d| d.algorithm().to_string()).unwrap_or_else(|| "sha256".into());
        VerifyingReader { inner, hasher: Some(Hasher::new(&algo)), count: 0, expect, expect_size, on_read: None, verified: false }
    }

    /// Calls `f(total bytes so far)` after each read that returned data.
    pub fn on_read(mut self, f: impl FnMut(u64) + Send + 'static) -> Self {
        self.on_read = Some(Box::new(f));
        self
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest of everything read (consumes the hash state; call once, at the end).
    pub fn digest(&mut self) -> Digest {
        self.hasher.take().map(|h| h.finish()).unwrap_or_else(|| self.expect.clone().unwrap_or_else(|| Digest::sha256(b"")))
    }

    /// True once EOF was reached and the content matched the expectation.
    pub fn verified(&self) -> bool {
        self.verified
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if let Some(size) = self.expect_size {
                if self.count != size {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("size mismatch: got {} bytes, want {size}", self.count)));
                }
            }
            if let Some(want) = self.expect.clone() {
                if !self.verified {
                    let got = self.digest();
                    if got != want {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("digest mismatch: got {got}, want {want}")));
                    }
                    self.verified = true;
                }
            }
            return Ok(0);
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        if let Some(size) = self.expect_size {
            if self.count > size {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("size mismatch: more than {size} bytes")));
            }
        }
        if let Some(f) = self.on_read.as_mut() {
            f(self.count);
        }
        Ok(n)
    }
}
