//! Content hash of resolved sources, for the COPY/ADD cache key.
//!
//! Covers, for each source in order: its kind and (for directories) permission
//! bits, then for each entry: kind, destination-relative path, permission bits,
//! symlink target, and the sha256 of a file's content (streamed, not copied).
//! Owners and times are left out (Docker ignores them), so the hash is stable
//! across checkouts and `touch`.

use std::fs::File;
use std::io::Read;

use sha2::{Digest, Sha256};

use super::{Context, EntryKind, Result, Source, SourceKind};

fn put(h: &mut Sha256, tag: u8, bytes: &[u8]) {
    h.update([tag]);
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

impl Context {
    /// sha256 of one context file's content, hex.
    pub fn file_digest(&self, rel: &str) -> Result<String> {
        let mut f = File::open(self.host_path(rel)).map_err(|e| self.io_err(rel, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(|e| self.io_err(rel, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex(&h.finalize()))
    }

    /// The content hash (sha256, hex) of resolved sources.
    pub fn content_hash(&self, sources: &[Source]) -> Result<String> {
        let mut h = Sha256::new();
        h.update(b"berth-build context v1\0");
        for s in sources {
            let kind: &[u8] = match s.kind {
                SourceKind::File => b"file",
                SourceKind::Dir => b"dir",
                SourceKind::Other => b"other",
            };
            put(&mut h, b'S', kind);
            if s.kind == SourceKind::Dir {
                put(&mut h, b'M', &(s.mode & 0o7777).to_le_bytes());
            }
            put(&mut h, b'N', &(s.entries.len() as u64).to_le_bytes());
            for e in &s.entries {
                put(&mut h, b'P', e.dest.as_bytes());
                put(&mut h, b'M', &(e.mode & 0o7777).to_le_bytes());
                match &e.kind {
                    EntryKind::File => {
                        let d = self.file_digest(&e.path)?;
                        put(&mut h, b'F', d.as_bytes());
                    }
                    EntryKind::Dir => put(&mut h, b'D', b""),
                    EntryKind::Symlink { target } => put(&mut h, b'L', target.as_bytes()),
                    EntryKind::Other => put(&mut h, b'O', &(e.mode & 0o170000).to_le_bytes()),
                }
            }
        }
        Ok(hex(&h.finalize()))
    }
}
