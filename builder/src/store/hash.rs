//! sha256 while streaming: a writer and a reader that hash and count what passes.

use berth_spec::image::Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// The sha256 digest of `data`.
pub fn sha256(data: &[u8]) -> Digest {
    Digest::from_sha256_bytes(&Sha256::digest(data).into())
}

/// A running sha256 with a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    h: Sha256,
    n: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }
    pub fn update(&mut self, b: &[u8]) {
        self.h.update(b);
        self.n += b.len() as u64;
    }
    pub fn count(&self) -> u64 {
        self.n
    }
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_sha256_bytes(&self.h.finalize().into()), self.n)
    }
}

/// Hashes and counts the bytes written through it.
pub struct HashWriter<W: Write> {
    pub inner: W,
    pub hasher: Hasher,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> HashWriter<W> {
        HashWriter { inner, hasher: Hasher::new() }
    }
    pub fn finish(self) -> (W, Digest, u64) {
        let (d, n) = self.hasher.finish();
        (self.inner, d, n)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.hasher.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts the bytes read through it.
pub struct HashReader<R: Read> {
    pub inner: R,
    pub hasher: Hasher,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> HashReader<R> {
        HashReader { inner, hasher: Hasher::new() }
    }
    pub fn finish(self) -> (R, Digest, u64) {
        let (d, n) = self.hasher.finish();
        (self.inner, d, n)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.hasher.update(&b[..n]);
        Ok(n)
    }
}
