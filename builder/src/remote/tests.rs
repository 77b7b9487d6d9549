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
    assert!(e.to_string().contains("--cache-from") && e.to_string().contains("type=registry"), "{e}");
    let e = parse_cache_spec("--cache-to", "type=registry").unwrap_err();
    assert!(e.to_string().contains("ref=REF"), "{e}");
    let e = parse_cache_spec("--cache-to", "type=registry,ref=Bad Ref").unwrap_err();
    assert!(e.to_string().starts_with("--cache-to: invalid reference"), "{e}");
    assert_eq!(parse_creds("u:p:with:colons").unwrap(), ("u".to_string(), "p:with:colons".to_string()));
    assert!(parse_creds("nocolon").is_err());
    assert!(parse_creds(":p").is_err());
}

/// A docker-archive (`docker save`'s format) of one busybox-free image: a config, one
/// layer, and `manifest.json` naming them by `config` and `layers`; `extra` entries
/// are added after.
fn docker_archive(config: &str, layers: &[&str], extra: Vec<(crate::layer::tar::Header, Vec<u8>)>) -> Vec<u8> {
    use crate::layer::tar::Kind;
    use crate::layer::tests::{hdr, tar_of};
    let layer = tar_of(&[(hdr(Kind::File, "hello", ""), b"hi\n".to_vec())]);
    let cfg = berth_spec::image::ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: berth_spec::image::RootFs { typ: "layers".into(), diff_ids: vec![crate::store::hash::sha256(&layer)] },
        ..Default::default()
    };
    let manifest = serde_json::json!([{ "Config": config, "RepoTags": ["loaded:1"], "Layers": layers }]);
    let mut entries = vec![
        (hdr(Kind::File, "manifest.json", ""), serde_json::to_vec(&manifest).unwrap()),
        (hdr(Kind::File, "cfg.json", ""), serde_json::to_vec(&cfg).unwrap()),
        (hdr(Kind::Dir, "l1", ""), vec![]),
        (hdr(Kind::File, "l1/layer.tar", ""), layer),
    ];
    entries.extend(extra);
    tar_of(&entries)
}

#[test]
fn load_names_the_archive_and_the_blob_or_entry_that_is_wrong() {
    use crate::layer::tar::Kind;
    use crate::layer::tests::hdr;
    let t = Tmp::new("remote-load");
    let store = Store::open(t.p("s")).unwrap();
    let host = crate::registry::Platform::host();
    let gz = |data: &[u8]| {
        let mut e = crate::layer::compress::Encoder::new(Vec::new(), crate::layer::Compression::Gzip(1)).unwrap();
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    };
    let good = docker_archive("cfg.json", &["l1/layer.tar"], vec![]);
    let good_gz = gz(&good);
    type Case<'a> = (&'a str, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        ("dotdot-blob.tar", docker_archive("cfg.json", &["../x"], vec![]), "blob \"../x\" in manifest.json is not a path inside the archive"),
        (
            "absolute-blob.tar",
            docker_archive("/etc/passwd", &["l1/layer.tar"], vec![]),
            "blob \"/etc/passwd\" in manifest.json is not a path inside the archive",
        ),
        (
            "symlink-out.tar",
            docker_archive("cfg.json", &["l2/layer.tar"], vec![(hdr(Kind::Symlink, "l2/layer.tar", "../../etc/passwd"), vec![])]),
            "blob \"l2/layer.tar\": \"l2/layer.tar\" is a symlink to \"../../etc/passwd\", which leaves the archive",
        ),
        ("missing-blob.tar", docker_archive("cfg.json", &["nope/layer.tar"], vec![]), "blob \"nope/layer.tar\" is not in the archive"),
        (
            "dotdot-entry.tar",
            docker_archive("cfg.json", &["l1/layer.tar"], vec![(hdr(Kind::File, "../evil", ""), b"x".to_vec())]),
            "entry \"../evil\" has a '..' component",
        ),
        ("truncated.tar.gz", good_gz[..good_gz.len() / 2].to_vec(), "truncated or corrupt gzip data"),
    ];
    for (name, data, want) in cases {
        let path = t.p(name);
        std::fs::write(&path, data).unwrap();
        let e = super::load::load(&store, &path, None, &host).unwrap_err();
        assert!(e.to_string().starts_with(&format!("load {}: ", path.display())), "{name}: the archive is named: {e}");
        assert!(e.to_string().contains(want), "{name}: {e}");
        assert!(store.resolve("loaded:1").is_err(), "{name}: tagged");
        assert!(std::fs::read_dir(t.p("s/tmp")).unwrap().next().is_none(), "{name}: temp files left");
    }
    // `docker save | gzip` loads like the plain archive, and symlinked layers (docker
    // writes them for shared layers) are followed inside the archive.
    let path = t.p("good.tar.gz");
    std::fs::write(&path, &good_gz).unwrap();
    let loaded = super::load::load(&store, &path, None, &host).unwrap();
    assert_eq!(loaded[0].0.as_deref(), Some("loaded:1"));
    let linked = docker_archive(
        "cfg.json",
        &["l2/layer.tar"],
        vec![(hdr(Kind::Dir, "l2", ""), vec![]), (hdr(Kind::Symlink, "l2/layer.tar", "../l1/layer.tar"), vec![])],
    );
    let path = t.p("linked.tar");
    std::fs::write(&path, linked).unwrap();
    assert_eq!(super::load::load(&store, &path, Some("linked:1"), &host).unwrap()[0].1, loaded[0].1);
}
