//! Build-cache keys.
//!
//! A step that changes the filesystem (RUN, COPY, ADD, WORKDIR) has the key
//!
//! ```text
//! sha256( "berth-build step v1", parent, kind, (name, value)... )
//! ```
//!
//! where `parent` is [`content_key`] of the layers below the step (their diff_ids: what
//! the filesystem is, however it was made), and the fields are the instruction after
//! expansion, normalized, with what it reads: for RUN the argv, environment, user,
//! working directory, network, mounts (and the content hash of bind-mounted context
//! files); for COPY/ADD the sources and destination, flags, and the content hash of the
//! context files they read (`Context::content_hash`, hashing in place, nothing copied),
//! or the content key of the `--from` stage or image. Metadata instructions (ENV, LABEL,
//! CMD...) are not steps: they only reach a key through what a later step reads (ENV is
//! in RUN's environment). Length-prefixed fields: no two different field lists hash the
//! same bytes.
//!
//! A hit ([`crate::store::Store::cache_get`]) gives the layer without running anything.

use berth_spec::image::Digest;
use sha2::{Digest as _, Sha256};

/// The content key of a filesystem made of these layers (bottom first).
pub fn content_key(diff_ids: &[Digest]) -> Digest {
    let mut h = Sha256::new();
    put(&mut h, b"berth-build layers v1");
    for d in diff_ids {
        put(&mut h, d.as_str().as_bytes());
    }
    Digest::from_sha256_bytes(&h.finalize().into())
}

fn put(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

/// Builds one step's key.
pub struct KeyBuilder {
    h: Sha256,
}

impl KeyBuilder {
    pub fn new(kind: &str, parent: &Digest) -> KeyBuilder {
        let mut h = Sha256::new();
        put(&mut h, b"berth-build step v1");
        put(&mut h, parent.as_str().as_bytes());
        put(&mut h, kind.as_bytes());
        KeyBuilder { h }
    }

    pub fn field(&mut self, name: &str, value: &str) -> &mut Self {
        put(&mut self.h, name.as_bytes());
        put(&mut self.h, value.as_bytes());
        self
    }

    pub fn list(&mut self, name: &str, values: &[String]) -> &mut Self {
        put(&mut self.h, name.as_bytes());
        self.h.update((values.len() as u64).to_le_bytes());
        for v in values {
            put(&mut self.h, v.as_bytes());
        }
        self
    }

    pub fn finish(&self) -> Digest {
        Digest::from_sha256_bytes(&self.h.clone().finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_everything() {
        let p = content_key(&[]);
        let a = KeyBuilder::new("RUN", &p).field("cmd", "ab").field("env", "").finish();
        let b = KeyBuilder::new("RUN", &p).field("cmd", "a").field("env", "b").finish();
        assert_ne!(a, b);
        assert_eq!(a, KeyBuilder::new("RUN", &p).field("cmd", "ab").field("env", "").finish());
        let q = content_key(std::slice::from_ref(&a));
        assert_ne!(KeyBuilder::new("RUN", &q).field("cmd", "ab").field("env", "").finish(), a);
        let l1 = KeyBuilder::new("X", &p).list("l", &["a".into(), "b".into()]).finish();
        let l2 = KeyBuilder::new("X", &p).list("l", &["ab".into()]).finish();
        assert_ne!(l1, l2);
    }
}
