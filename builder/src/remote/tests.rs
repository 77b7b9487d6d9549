//! Unit tests of the store/registry glue; the end-to-end behaviour against a real
//! registry is in integration/tests/registry_build.rs.

use super::cache::parse_cache_spec;
use super::{parse_creds, store_name};
use crate::layer::tests::Tmp;
use crate::registry::{BlobStore, Digest, Reference};
use crate::store::Store;

#[test]
fn the_store_is_a_blob_store_that_commits_only_verified_content() {
    let t = Tmp::new("remote-blobstore");
    let store = Store::open(t.p("s")).unwrap();
    let data = b"layer bytes".to_vec();
    let d = Digest::sha256(&data);
    assert!(!store.has(&d));
    // Wrong content for the digest: refused, nothing committed, no temp file left.
    let e = store.put(&d, None, &mut &b"other bytes"[..]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    assert!(!store.has(&d));
    // Wrong size.
    assert!(store.put(&d, Some(3), &mut &data[..]).is_err());
    assert!(std::fs::read_dir(t.p("s/tmp")).unwrap().next().is_none(), "temp files left");
    assert_eq!(store.put(&d, Some(data.len() as u64), &mut &data[..]).unwrap(), data.len() as u64);
    assert!(store.has(&d));
    assert_eq!(BlobStore::size(&store, &d).unwrap(), data.len() as u64);
    assert_eq!(store.read_all(&d).unwrap(), data);
    // The store keeps sha256 only: a sha512 digest is never "had" and cannot be put.
    let d512 = Digest::parse(&format!("sha512:{}", "ab".repeat(64))).unwrap();
    assert!(!store.has(&d512));
    assert!(store.put(&d512, None, &mut &data[..]).is_err());
}

#[test]
fn pulled_references_are_tagged_by_their_familiar_name() {
    let n = |s: &str| store_name(&Reference::parse(s).unwrap());
    assert_eq!(n("alpine").as_deref(), Some("alpine:latest"));
    assert_eq!(n("docker.io/library/alpine:3").as_deref(), Some("alpine:3"));
    assert_eq!(n("127.0.0.1:5000/a/b:t").as_deref(), Some("127.0.0.1:5000/a/b:t"));
    let pinned = format!("127.0.0.1:5000/a/b:t@sha256:{}", "0".repeat(64));
    assert_eq!(n(&pinned).as_deref(), Some("127.0.0.1:5000/a/b:t"));
    assert_eq!(n(&format!("127.0.0.1:5000/a/b@sha256:{}", "0".repeat(64))), None, "a digest is not a tag");
    for name in ["alpine:latest", "alpine:3", "127.0.0.1:5000/a/b:t"] {
        crate::store::normalize_name(name).unwrap();
    }
}

#[test]
fn cache_and_creds_flags_parse_or_name_what_is_wrong() {
    let r = parse_cache_spec("--cache-to", "type=registry,ref=reg.example:5000/app:cache,mode=max").unwrap();
    assert_eq!(r.to_string(), "reg.example:5000/app:cache");
    let e = parse_cache_spec("--cache-from", "type=local,src=/x").unwrap_err();
    assert!(e.contains("--cache-from") && e.contains("type=registry"), "{e}");
    let e = parse_cache_spec("--cache-to", "type=registry").unwrap_err();
    assert!(e.contains("ref=REF"), "{e}");
    let e = parse_cache_spec("--cache-to", "type=registry,ref=Bad Ref").unwrap_err();
    assert!(e.starts_with("--cache-to: invalid reference"), "{e}");
    assert_eq!(parse_creds("u:p:with:colons").unwrap(), ("u".to_string(), "p:with:colons".to_string()));
    assert!(parse_creds("nocolon").is_err());
    assert!(parse_creds(":p").is_err());
}
