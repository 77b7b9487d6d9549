//! Streaming hashes for [`Digest`] (berth-spec's, sha256 or sha512) and a reader that
//! hashes and counts what passes through it, so blobs are verified while they stream.

pub use berth_spec::image::Digest;
use sha2::{Digest as _, Sha256, Sha512};
use std::io::{self, Read};

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
            Hasher::Sha256(h) => Digest::from_sha256_bytes(&h.finalize().into()),
            Hasher::Sha512(h) => Digest::from_sha512_bytes(&h.finalize().into()),
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
