//! Pure helpers for ADD: what kind of source it is (local, HTTP(S) URL, git),
//! whether a local file is an archive ADD unpacks (by magic bytes), and
//! `--checksum` verification.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::hash::hex;

/// What an ADD source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddSourceKind {
    /// A path in the build context.
    Local,
    /// `http://` or `https://`: downloaded, never unpacked (unless `--unpack`).
    Http,
    /// A git repository (`git://`, `ssh://`, `git@host:repo`, `https://.../repo.git[#ref]`).
    Git,
}

/// Classify an ADD source (as BuildKit does; `github.com/x/y` without a scheme is local).
pub fn classify_add_source(src: &str) -> AddSourceKind {
    if is_git_url(src) {
        AddSourceKind::Git
    } else if is_url(src) {
        AddSourceKind::Http
    } else {
        AddSourceKind::Local
    }
}

/// `http://` or `https://`.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// A git remote: `git://`, `ssh://`, `git@host:path` (scp-like), or an HTTP(S)
/// URL whose path ends in `.git` (a `#ref:subdir` fragment or `?query` may follow).
pub fn is_git_url(s: &str) -> bool {
    if s.starts_with("./") || s.starts_with("../") || s.starts_with('/') {
        return false;
    }
    if s.starts_with("git://") || s.starts_with("ssh://") || s.starts_with("git+ssh://") {
        return true;
    }
    if is_url(s) {
        let no_frag = s.split('#').next().unwrap_or(s);
        let path = no_frag.split('?').next().unwrap_or(no_frag);
        return path.ends_with(".git");
    }
    // scp-like: user@host:path, with no scheme
    if let Some((user_host, path)) = s.split_once(':') {
        if let Some((user, host)) = user_host.split_once('@') {
            return !user.is_empty() && !host.is_empty() && !path.is_empty() && !user_host.contains('/') && !path.starts_with("//");
        }
    }
    false
}

/// The file name an HTTP source is saved under: the last path segment, or
/// `__unnamed__`.
pub fn url_file_name(url: &str) -> String {
    let no_frag = url.split('#').next().unwrap_or(url);
    let no_query = no_frag.split('?').next().unwrap_or(no_frag);
    let after_scheme = no_query.split_once("://").map_or(no_query, |(_, r)| r);
    let path = after_scheme.split_once('/').map_or("", |(_, p)| p);
    match path.rsplit('/').next() {
        Some(b) if !b.is_empty() && b != "." => b.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// Archive formats ADD recognises in local files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// Uncompressed tar.
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl ArchiveKind {
    /// Compressed: the executor must decompress and check the result is a tar
    /// (Docker copies the file as is when it is not).
    pub fn is_compressed(self) -> bool {
        self != ArchiveKind::Tar
    }
}

/// Detect an archive from the first bytes of a file (give at least 512 to detect
/// an uncompressed tar).
pub fn detect_archive(header: &[u8]) -> Option<ArchiveKind> {
    if header.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Some(ArchiveKind::Gzip);
    }
    if header.starts_with(b"BZh") {
        return Some(ArchiveKind::Bzip2);
    }
    if header.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Some(ArchiveKind::Xz);
    }
    if header.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Some(ArchiveKind::Zstd);
    }
    if is_tar_header(header) {
        return Some(ArchiveKind::Tar);
    }
    None
}

/// Whether a block is a valid tar header: ustar/gnu magic, or a correct header
/// checksum (old v7 archives).
pub fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    let b = &block[..512];
    if b.iter().all(|&c| c == 0) {
        return false;
    }
    let magic_ok = &b[257..262] == b"ustar";
    // checksum: the sum of all bytes with the checksum field as spaces
    let field = &b[148..156];
    let digits: String = field.iter().map(|&c| c as char).filter(|c| !matches!(c, '\0' | ' ')).collect();
    let Ok(stored) = u64::from_str_radix(&digits, 8) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &c) in b.iter().enumerate() {
        let c = if (148..156).contains(&i) { b' ' } else { c };
        unsigned += c as u64;
        signed += (c as i8) as i64;
    }
    let sum_ok = stored == unsigned || stored as i64 == signed;
    sum_ok && (magic_ok || b[156] == 0 || b[156].is_ascii_digit())
}

/// Read the first 512 bytes of a file and [`detect_archive`].
pub fn detect_archive_file(path: &Path) -> io::Result<Option<ArchiveKind>> {
    let mut f = File::open(path)?;
    let mut buf = [0u8; 512];
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(detect_archive(&buf[..n]))
}

/// `--checksum=sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// Lower-case hex sha256.
    pub sha256: String,
}

/// A checksum mismatch or a malformed `--checksum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumError(pub String);

impl std::fmt::Display for ChecksumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChecksumError {}

impl Checksum {
    /// Parse `sha256:<64 hex>` (the algorithm is required; sha256 is the one ADD uses).
    pub fn parse(s: &str) -> Result<Checksum, ChecksumError> {
        let Some((algo, hexs)) = s.split_once(':') else {
            return Err(ChecksumError(format!("invalid checksum digest format: {s:?}")));
        };
        if algo != "sha256" {
            return Err(ChecksumError(format!("unsupported digest algorithm: {algo:?}")));
        }
        if hexs.len() != 64 || !hexs.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ChecksumError(format!("invalid checksum digest length or characters: {s:?}")));
        }
        Ok(Checksum { sha256: hexs.to_ascii_lowercase() })
    }

    pub fn digest(&self) -> String {
        format!("sha256:{}", self.sha256)
    }

    /// Check bytes against the checksum.
    pub fn verify(&self, data: &[u8]) -> Result<(), ChecksumError> {
        self.check(&hex(&Sha256::digest(data)))
    }

    /// Check everything a reader yields (streamed).
    pub fn verify_reader(&self, mut r: impl Read) -> io::Result<Result<(), ChecksumError>> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(self.check(&hex(&h.finalize())))
    }

    /// Check a file's content.
    pub fn verify_file(&self, path: &Path) -> io::Result<Result<(), ChecksumError>> {
        self.verify_reader(File::open(path)?)
    }

    fn check(&self, got: &str) -> Result<(), ChecksumError> {
        if got == self.sha256 {
            Ok(())
        } else {
            Err(ChecksumError(format!("digest mismatch sha256:{got}: expected sha256:{}", self.sha256)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        assert_eq!(classify_add_source("https://example.com/a.tar.gz"), AddSourceKind::Http);
        assert_eq!(classify_add_source("http://example.com/"), AddSourceKind::Http);
        assert_eq!(classify_add_source("https://github.com/moby/buildkit.git#v0.10.1"), AddSourceKind::Git);
        assert_eq!(classify_add_source("https://github.com/moby/buildkit.git?ref=main"), AddSourceKind::Git);
        assert_eq!(classify_add_source("git@github.com:moby/buildkit.git"), AddSourceKind::Git);
        assert_eq!(classify_add_source("git://example.com/repo"), AddSourceKind::Git);
        assert_eq!(classify_add_source("ssh://git@example.com/repo.git"), AddSourceKind::Git);
        assert_eq!(classify_add_source("github.com/moby/buildkit"), AddSourceKind::Local);
        assert_eq!(classify_add_source("app.tar.gz"), AddSourceKind::Local);
        assert_eq!(classify_add_source("dir/file:with:colons"), AddSourceKind::Local);
        assert_eq!(classify_add_source("./user@host:x"), AddSourceKind::Local);
    }

    #[test]
    fn file_names() {
        assert_eq!(url_file_name("https://example.com/dl/tool-1.0.tgz?x=1#f"), "tool-1.0.tgz");
        assert_eq!(url_file_name("https://example.com/"), "__unnamed__");
        assert_eq!(url_file_name("https://example.com"), "__unnamed__");
    }

    fn tar_block(name: &str, ustar: bool) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..107].copy_from_slice(b"0000644");
        b[124..135].copy_from_slice(b"00000000000");
        b[156] = b'0';
        if ustar {
            b[257..263].copy_from_slice(b"ustar\0");
            b[263..265].copy_from_slice(b"00");
        }
        for c in &mut b[148..156] {
            *c = b' ';
        }
        let sum: u32 = b.iter().map(|&c| c as u32).sum();
        let s = format!("{sum:06o}\0 ");
        b[148..156].copy_from_slice(s.as_bytes());
        b
    }

    #[test]
    fn archives() {
        assert_eq!(detect_archive(&[0x1f, 0x8b, 0x08, 0, 0]), Some(ArchiveKind::Gzip));
        assert_eq!(detect_archive(b"BZh91AY&SY"), Some(ArchiveKind::Bzip2));
        assert_eq!(detect_archive(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]), Some(ArchiveKind::Xz));
        assert_eq!(detect_archive(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(ArchiveKind::Zstd));
        assert_eq!(detect_archive(&tar_block("hello.txt", true)), Some(ArchiveKind::Tar));
        assert_eq!(detect_archive(&tar_block("old.txt", false)), Some(ArchiveKind::Tar));
        let mut bad = tar_block("x", true);
        bad[0] = b'y';
        assert_eq!(detect_archive(&bad), None);
        assert_eq!(detect_archive(b"just some text"), None);
        assert_eq!(detect_archive(&[0u8; 512]), None);
        assert!(ArchiveKind::Gzip.is_compressed() && !ArchiveKind::Tar.is_compressed());
    }

    #[test]
    fn checksums() {
        // sha256("hello\n")
        let c = Checksum::parse("sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03").unwrap();
        assert!(c.verify(b"hello\n").is_ok());
        assert!(c.verify(b"hello").unwrap_err().0.contains("digest mismatch"));
        assert!(c.verify_reader(&b"hello\n"[..]).unwrap().is_ok());
        assert!(Checksum::parse("md5:abc").is_err());
        assert!(Checksum::parse("sha256:abc").is_err());
        assert!(Checksum::parse("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03").is_err());
        assert_eq!(c.digest(), "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    }
}
