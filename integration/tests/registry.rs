//! berth-build's registry client against a real registry: Debian's `docker-registry`
//! (distribution 2.8), started by each test on 127.0.0.1 with a random free port and
//! its own temp dir (config, storage, certificates), killed by pid and removed on drop,
//! even when the test fails (the harness is `berth_integration::registry_support`). Needs
//! docker-registry, skopeo, openssl, gzip, zstd and htpasswd (apache2-utils).
//!
//! Run: `cargo test -p berth-integration --test registry`.

use berth_build::registry::auth::base64_encode;
use berth_build::registry::{
    self, build_artifact_manifest, pull, pull_artifact, push, resolve, ArtifactBlob, AuthConfig, BlobStore, Client, ClientOptions, Credential, Digest,
    DirBlobStore, ErrorKind, Progress, PullOptions, PushOptions, Reference,
};
use berth_build::registry::{Descriptor, Platform};
use berth_integration::procs;
use berth_integration::registry_support::{need, run, Registry, RegistryConfig, TokenAuth};
use berth_integration::tempdir::TempDir;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------- harness

/// A registry with a temp dir of its own, removed after the registry is stopped.
struct TestRegistry {
    reg: Registry,
    _dir: TempDir,
}

impl TestRegistry {
    fn start(name: &str, cfg: RegistryConfig) -> TestRegistry {
        let dir = TempDir::new(name);
        TestRegistry { reg: Registry::start(dir.path(), &cfg), _dir: dir }
    }

    fn reference(&self, s: &str) -> Reference {
        Reference::parse(&format!("{}/{s}", self.reg.host)).unwrap()
    }
}

impl std::ops::Deref for TestRegistry {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.reg
    }
}

impl std::ops::DerefMut for TestRegistry {
    fn deref_mut(&mut self) -> &mut Registry {
        &mut self.reg
    }
}

fn client(opts: ClientOptions) -> Client {
    Client::new(opts).unwrap()
}

/// Anonymous, no credential files, quick retries.
fn plain_opts() -> ClientOptions {
    ClientOptions { auth: AuthConfig::none(), retry_base: Duration::from_millis(20), ..ClientOptions::default() }
}

// ---------------------------------------------------------------- synthetic images

/// A ustar archive of (name, content) files.
fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[148..156].copy_from_slice(b"        ");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn compress(prog: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
    need(prog);
    // Tracked: the harness reaps untracked children of this subreaper.
    let mut c = procs::spawn(Command::new(prog).args(args).stdin(Stdio::piped()).stdout(Stdio::piped())).unwrap();
    let pid = c.id();
    let mut stdin = c.stdin.take().unwrap();
    let data2 = data.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data2).unwrap());
    let out = c.wait_with_output().unwrap();
    procs::untrack(pid);
    w.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Incompressible-ish bytes, so layers span several upload chunks.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Image {
    manifest: Vec<u8>,
    media_type: String,
    digest: Digest,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

impl Image {
    fn blobs(&self) -> Vec<Digest> {
        std::iter::once(self.config.digest.clone()).chain(self.layers.iter().map(|l| l.digest.clone())).collect()
    }
}

fn put(store: &DirBlobStore, data: &[u8]) -> Digest {
    store.put_bytes(data).unwrap()
}

/// Config + 2 layers (one gzip, one zstd; Docker v2 schema 2 media types and two gzip
/// layers with `docker`), put into `store`.
fn make_image(store: &DirBlobStore, arch: &str, seed: u64, docker: bool) -> Image {
    let t1 = tar(&[("etc/hello", format!("hello from {arch}\n").as_bytes()), ("bin/blob", &noise(seed, 40_000))]);
    let t2 = tar(&[("data/more", &noise(seed + 1, 30_000))]);
    let l1 = compress("gzip", &["-n", "-c"], &t1);
    let l2 = if docker { compress("gzip", &["-n", "-c"], &t2) } else { compress("zstd", &["-q", "-c"], &t2) };
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256(&t1).to_string(), Digest::sha256(&t2).to_string()]},
        "history": [{"created_by": "berth test"}, {"created_by": "berth test"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    put(store, &config);
    put(store, &l1);
    put(store, &l2);
    let (mt, cmt, lmt1, lmt2) = if docker {
        (
            berth_spec::image::MEDIA_TYPE_DOCKER_MANIFEST,
            berth_spec::image::MEDIA_TYPE_DOCKER_CONFIG,
            berth_spec::image::MEDIA_TYPE_DOCKER_LAYER_GZIP,
            berth_spec::image::MEDIA_TYPE_DOCKER_LAYER_GZIP,
        )
    } else {
        (
            berth_spec::image::MEDIA_TYPE_OCI_MANIFEST,
            berth_spec::image::MEDIA_TYPE_OCI_CONFIG,
            berth_spec::image::MEDIA_TYPE_OCI_LAYER_GZIP,
            berth_spec::image::MEDIA_TYPE_OCI_LAYER_ZSTD,
        )
    };
    let cd = Descriptor::of(cmt, &config);
    let layers = vec![Descriptor::of(lmt1, &l1), Descriptor::of(lmt2, &l2)];
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": cd,
        "layers": layers,
    }))
    .unwrap();
    let digest = put(store, &manifest);
    Image { manifest, media_type: mt.into(), digest, config: cd, layers }
}

fn skopeo_inspect(reference: &str, extra: &[&str]) -> Value {
    need("skopeo");
    let out = run(Command::new("skopeo").arg("inspect").args(extra).arg(format!("docker://{reference}")).env("HOME", std::env::temp_dir()));
    serde_json::from_slice(&out).unwrap()
}

// ---------------------------------------------------------------- tests

#[test]
fn push_inspect_pull_push_again_and_mount() {
    let reg = TestRegistry::start("plain", RegistryConfig::default());
    let src_dir = TempDir::new("src");
    let src = DirBlobStore::new(src_dir.path()).unwrap();
    let img = make_image(&src, "amd64", 1, false);
    let r = reg.reference("test/img:1");

    // Push: every blob uploaded once (monolithic: POST + PUT each), then the manifest.
    let c = client(plain_opts());
    let res = push(&c, &r, &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap();
    assert_eq!(res.digest, img.digest);
    assert_eq!(res.reference.to_string(), format!("{}/test/img:1@{}", reg.host, img.digest));
    let st = c.stats();
    assert_eq!((st.blobs_uploaded, st.blobs_existing, st.blobs_mounted), (3, 0, 0), "{st:?}");
    assert_eq!((st.post, st.put, st.patch), (3, 4, 0), "{st:?}");
    assert_eq!(st.head, 3, "{st:?}");

    // skopeo reads it back.
    let v = skopeo_inspect(&format!("{}/test/img:1", reg.host), &["--tls-verify=false"]);
    assert_eq!(v["Digest"], img.digest.to_string(), "{v}");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    let layers: Vec<String> = img.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(v["Layers"], json!(layers));
    let raw = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{}/test/img:1", reg.host)));
    assert_eq!(raw, img.manifest, "the registry stores the exact bytes pushed");

    // Pull into an empty store: everything arrives, verified, with progress.
    let dst_dir = TempDir::new("dst");
    let dst = DirBlobStore::new(dst_dir.path()).unwrap();
    let events = Mutex::new(Vec::new());
    let cb = |p: &Progress| events.lock().unwrap().push(p.clone());
    let pc = client(plain_opts());
    let pulled = pull(&pc, &r, &dst, &PullOptions { progress: Some(&cb), ..PullOptions::default() }).unwrap();
    assert_eq!(pulled.resolved.digest, img.digest);
    assert_eq!(pulled.resolved.media_type, berth_spec::image::MEDIA_TYPE_OCI_MANIFEST);
    assert!(pulled.resolved.index.is_none());
    assert_eq!(pulled.downloaded.len(), 3);
    assert_eq!(pulled.config, src.read_all(&img.config.digest).unwrap());
    for d in img.blobs().iter().chain([&img.digest]) {
        let data = dst.read_all(d).unwrap();
        assert_eq!(Digest::sha256(&data), *d);
        assert_eq!(data, src.read_all(d).unwrap());
    }
    assert_eq!(dst.list().unwrap().len(), 4, "manifest, config, 2 layers");
    {
        let ev = events.lock().unwrap();
        let done: Vec<&Digest> = ev.iter().filter_map(|e| if let Progress::BlobDone { digest, .. } = e { Some(digest) } else { None }).collect();
        assert_eq!(done.len(), 3, "{ev:?}");
        assert!(matches!(ev[0], Progress::Resolved { .. }));
        for l in &img.layers {
            assert!(
                ev.iter().any(|e| matches!(e, Progress::BlobBytes { digest, done, total } if *digest == l.digest && done == total)),
                "final byte count for {}",
                l.digest
            );
        }
    }
    let st = pc.stats();
    assert_eq!((st.blobs_downloaded, st.blobs_cached), (3, 0));

    // Pull again: nothing downloaded.
    pc.reset_stats();
    let again = pull(&pc, &r, &dst, &PullOptions::default()).unwrap();
    assert!(again.downloaded.is_empty());
    assert_eq!(again.cached.len(), 3);
    let st = pc.stats();
    assert_eq!((st.blobs_downloaded, st.blobs_cached, st.get), (0, 3, 1), "only the manifest: {st:?}");

    // Push again: blobs the registry has are not sent (HEAD only), just the manifest.
    c.reset_stats();
    let res2 = push(&c, &r.with_tag("2"), &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap();
    assert_eq!(res2.digest, img.digest);
    let st = c.stats();
    assert_eq!((st.post, st.patch, st.put, st.head), (0, 0, 1, 3), "{st:?}");
    assert_eq!((st.blobs_existing, st.blobs_uploaded), (3, 0));

    // Cross-repo mount: this client knows test/img holds the blobs.
    c.reset_stats();
    push(&c, &reg.reference("test/other:1"), &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap();
    let st = c.stats();
    assert_eq!((st.blobs_mounted, st.blobs_uploaded, st.patch), (3, 0, 0), "{st:?}");
    assert_eq!((st.post, st.put), (3, 1), "one mount POST per blob, then the manifest: {st:?}");

    // A fresh client mounts when told where the blobs are.
    let fresh = client(plain_opts());
    let opts = PushOptions { mount_from: vec!["test/img".into()], ..PushOptions::default() };
    push(&fresh, &reg.reference("test/third:1"), &src, &img.manifest, &img.media_type, &opts).unwrap();
    assert_eq!(fresh.stats().blobs_mounted, 3);
    // A mount source without the blob: the registry starts an upload instead, which is used.
    let other_dir = TempDir::new("other");
    let other = DirBlobStore::new(other_dir.path()).unwrap();
    let img2 = make_image(&other, "amd64", 99, false);
    let fresh = client(plain_opts());
    push(&fresh, &reg.reference("test/fourth:1"), &other, &img2.manifest, &img2.media_type, &opts).unwrap();
    let st = fresh.stats();
    assert_eq!((st.blobs_mounted, st.blobs_uploaded, st.post), (0, 3, 3), "no second POST after a failed mount: {st:?}");
    let v = skopeo_inspect(&format!("{}/test/fourth:1", reg.host), &["--tls-verify=false"]);
    assert_eq!(v["Digest"], img2.digest.to_string());

    // Tags.
    let mut tags = c.list_tags(&r).unwrap();
    tags.sort();
    assert_eq!(tags, vec!["1", "2"]);
}

#[test]
fn chunked_upload() {
    let reg = TestRegistry::start("chunked", RegistryConfig::default());
    let src_dir = TempDir::new("src");
    let src = DirBlobStore::new(src_dir.path()).unwrap();
    let img = make_image(&src, "amd64", 7, false);
    let c = client(plain_opts());
    let chunk = 10_000u64;
    let opts = PushOptions { chunk_size: Some(chunk), jobs: 2, ..PushOptions::default() };
    let res = push(&c, &reg.reference("test/chunked:1"), &src, &img.manifest, &img.media_type, &opts).unwrap();
    assert_eq!(res.digest, img.digest);
    let st = c.stats();
    let want_patches: u64 = std::iter::once(&img.config).chain(&img.layers).map(|d| d.size.div_ceil(chunk)).sum();
    assert!(want_patches > 3);
    assert_eq!(st.patch, want_patches, "{st:?}");
    assert_eq!(st.put, 4, "3 closing PUTs and the manifest: {st:?}");
    assert_eq!(st.post, 3);
    let dst_dir = TempDir::new("dst");
    let dst = DirBlobStore::new(dst_dir.path()).unwrap();
    pull(&client(plain_opts()), &reg.reference("test/chunked:1"), &dst, &PullOptions::default()).unwrap();
    for d in img.blobs() {
        assert_eq!(dst.read_all(&d).unwrap(), src.read_all(&d).unwrap());
    }
}

#[test]
fn index_picks_platform() {
    let reg = TestRegistry::start("index", RegistryConfig::default());
    let src_dir = TempDir::new("src");
    let src = DirBlobStore::new(src_dir.path()).unwrap();
    for docker in [false, true] {
        let amd = make_image(&src, "amd64", 10, docker);
        let arm = make_image(&src, "arm64", 20, docker);
        let (list_mt, repo) = if docker {
            (berth_spec::image::MEDIA_TYPE_DOCKER_MANIFEST_LIST, "test/dmulti:1")
        } else {
            (berth_spec::image::MEDIA_TYPE_OCI_INDEX, "test/multi:1")
        };
        let entry = |img: &Image, arch: &str, variant: Option<&str>| {
            let mut p = json!({"architecture": arch, "os": "linux"});
            if let Some(v) = variant {
                p["variant"] = json!(v);
            }
            json!({"mediaType": img.media_type, "digest": img.digest, "size": img.manifest.len(), "platform": p})
        };
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": list_mt,
            "manifests": [entry(&arm, "arm64", Some("v8")), entry(&amd, "amd64", None)],
        }))
        .unwrap();
        let index_digest = put(&src, &index);
        // Pushing the index pushes the manifests it lists (from the store) first.
        let c = client(plain_opts());
        let r = reg.reference(repo);
        let res = push(&c, &r, &src, &index, list_mt, &PushOptions::default()).unwrap();
        assert_eq!(res.digest, index_digest);
        assert_eq!(c.stats().manifests_pushed, 3);

        let pc = client(plain_opts());
        let amd_res = resolve(&pc, &r, &Platform::new("linux", "amd64")).unwrap();
        assert_eq!(amd_res.digest, amd.digest, "linux/amd64 by default");
        assert_eq!(amd_res.top_digest(), &index_digest);
        assert_eq!(amd_res.index.as_ref().unwrap().media_type, list_mt);
        assert_eq!(amd_res.media_type, amd.media_type);
        let arm_res = resolve(&pc, &r, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(arm_res.digest, arm.digest);
        let e = resolve(&pc, &r, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Platform);
        assert_eq!(e.to_string(), format!("pull {}/{repo}: no image for platform linux/s390x (available: linux/arm64/v8, linux/amd64)", reg.host));

        // Pull by the platform's digest too, into a store: the index is kept as well.
        let dst_dir = TempDir::new("dst");
        let dst = DirBlobStore::new(dst_dir.path()).unwrap();
        let p = pull(&pc, &r, &dst, &PullOptions { platform: Platform::parse("linux/arm64").unwrap(), ..PullOptions::default() }).unwrap();
        assert_eq!(p.resolved.digest, arm.digest);
        assert!(dst.has(&index_digest) && dst.has(&arm.digest));
        for d in arm.blobs() {
            assert!(dst.has(&d));
        }
        for d in &amd.layers {
            assert!(!dst.has(&d.digest), "other platform's layers not pulled");
        }
        let pinned = resolve(&pc, &amd_res.pinned(), &Platform::new("linux", "amd64")).unwrap();
        assert_eq!(pinned.digest, amd.digest);

        // skopeo picks amd64 as well.
        let v = skopeo_inspect(&format!("{}/{repo}", reg.host), &["--tls-verify=false", "--override-arch", "amd64", "--override-os", "linux"]);
        assert_eq!(v["Digest"], index_digest.to_string(), "{v}");
        assert_eq!(v["Architecture"], "amd64");
    }
}

#[test]
fn artifacts_for_the_remote_cache() {
    let reg = TestRegistry::start("artifact", RegistryConfig::default());
    let src_dir = TempDir::new("src");
    let src = DirBlobStore::new(src_dir.path()).unwrap();
    let img = make_image(&src, "amd64", 30, false);
    let records = ArtifactBlob::new("application/vnd.berth.cache.config.v1+json", br#"{"records":[{"key":"k1","layer":0}]}"#.to_vec());
    let config = records.store(&src).unwrap();
    let mut layers = img.layers.clone();
    layers[0].annotations.insert("berth.cache.key".into(), "k1".into());
    let mut ann = BTreeMap::new();
    ann.insert("org.opencontainers.image.created".into(), "2026-01-01T00:00:00Z".into());
    let manifest = build_artifact_manifest("application/vnd.berth.cache.v1", Some(config.clone()), layers.clone(), ann);
    put(&src, &manifest);
    let r = reg.reference("test/cache:buildcache");
    let c = client(plain_opts());
    let res = push(&c, &r, &src, &manifest, berth_spec::image::MEDIA_TYPE_OCI_MANIFEST, &PushOptions::default()).unwrap();
    assert_eq!(res.digest, Digest::sha256(&manifest));

    // Without a store: the manifest and the records only.
    let pc = client(plain_opts());
    let a = pull_artifact(&pc, &r, None, &|_| true, None).unwrap().unwrap();
    assert_eq!(a.bytes, manifest);
    assert_eq!(a.config.as_deref(), Some(&records.data[..]));
    let m = a.manifest.as_ref().unwrap();
    assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.berth.cache.v1"));
    assert_eq!(m.layers[0].annotations["berth.cache.key"], "k1");
    assert_eq!(pc.stats().blobs_downloaded, 1);
    // With a store, only the layers asked for.
    let dst_dir = TempDir::new("dst");
    let dst = DirBlobStore::new(dst_dir.path()).unwrap();
    let want = |d: &Descriptor| d.annotations.contains_key("berth.cache.key");
    pull_artifact(&pc, &r, Some(&dst), &want, None).unwrap().unwrap();
    assert!(dst.has(&layers[0].digest) && !dst.has(&layers[1].digest) && dst.has(&config.digest) && dst.has(&a.digest));
    // One layer later, on demand.
    pc.fetch_blob(&r, &layers[1], &dst, None).unwrap();
    assert!(dst.has(&layers[1].digest));
    // No cache yet: None, not an error.
    assert!(pull_artifact(&pc, &reg.reference("test/cache:none"), None, &|_| true, None).unwrap().is_none());

    // An index of artifacts, with the empty config.
    let empty = registry::artifact::put_empty_config(&src).unwrap();
    let m2 = build_artifact_manifest("application/vnd.berth.cache.v1", None, vec![img.layers[1].clone()], BTreeMap::new());
    assert_eq!(serde_json::from_slice::<Value>(&m2).unwrap()["config"]["digest"], empty.digest.to_string());
    let m2d = put(&src, &m2);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": berth_spec::image::MEDIA_TYPE_OCI_INDEX, "artifactType": "application/vnd.berth.cache.v1",
        "manifests": [Descriptor::of(berth_spec::image::MEDIA_TYPE_OCI_MANIFEST, &m2), Descriptor::of(berth_spec::image::MEDIA_TYPE_OCI_MANIFEST, &manifest)],
    }))
    .unwrap();
    let ir = reg.reference("test/cache:index");
    push(&c, &ir, &src, &index, berth_spec::image::MEDIA_TYPE_OCI_INDEX, &PushOptions::default()).unwrap();
    let a = pull_artifact(&pc, &ir, None, &|_| true, None).unwrap().unwrap();
    assert_eq!(a.media_type, berth_spec::image::MEDIA_TYPE_OCI_INDEX);
    assert_eq!(a.descriptors().len(), 2);
    assert_eq!(a.descriptors()[0].digest, m2d);
}

#[test]
fn clear_errors() {
    let mut reg = TestRegistry::start("errors", RegistryConfig::default());
    let src_dir = TempDir::new("src");
    let src = DirBlobStore::new(src_dir.path()).unwrap();
    let img = make_image(&src, "amd64", 40, false);
    let c = client(plain_opts());
    push(&c, &reg.reference("foo:1"), &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap();

    let e = resolve(&c, &reg.reference("foo:nope"), &Platform::new("linux", "amd64")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.to_string(), format!("pull {}/foo:nope: manifest unknown (404)", reg.host));
    let e = resolve(&c, &reg.reference("nosuch/repo:1"), &Platform::new("linux", "amd64")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().starts_with(&format!("pull {}/nosuch/repo:1: ", reg.host)), "{e}");
    assert!(e.to_string().ends_with("(404)"), "{e}");

    // A blob the manifest names but neither side has.
    let mut bogus = img.layers.clone();
    bogus.push(Descriptor::of(berth_spec::image::MEDIA_TYPE_OCI_LAYER_GZIP, b"never stored"));
    let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": berth_spec::image::MEDIA_TYPE_OCI_MANIFEST, "config": img.config, "layers": bogus}))
        .unwrap();
    let e = push(&c, &reg.reference("foo:bad"), &src, &m, berth_spec::image::MEDIA_TYPE_OCI_MANIFEST, &PushOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("is neither in the registry nor in the local store"), "{e}");

    // A corrupt blob in the store is caught before the registry sees it.
    let bad_dir = TempDir::new("bad");
    let bad = DirBlobStore::new(bad_dir.path()).unwrap();
    let img2 = make_image(&bad, "amd64", 41, false);
    std::fs::write(bad.path(&img2.layers[0].digest), vec![0u8; img2.layers[0].size as usize]).unwrap();
    let e = push(&client(plain_opts()), &reg.reference("foo:corrupt"), &bad, &img2.manifest, &img2.media_type, &PushOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Digest, "{e}");
    assert!(e.to_string().contains("digest mismatch"), "{e}");

    // The registry down.
    reg.stop();
    let e = resolve(&client(plain_opts()), &reg.reference("foo:1"), &Platform::new("linux", "amd64")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(e.to_string(), format!("pull {h}/foo:1: connect {h}: connection refused", h = reg.host));
    let e = push(&client(plain_opts()), &reg.reference("foo:1"), &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), format!("push {h}/foo:1: connect {h}: connection refused", h = reg.host));
}

#[test]
fn htpasswd_and_tls() {
    let reg = TestRegistry::start("auth", RegistryConfig { htpasswd: Some(("berth".into(), "s3cret".into())), tls: true, ..Default::default() });
    let src_dir = TempDir::new("src");
    let src = DirBlobStore::new(src_dir.path()).unwrap();
    let img = make_image(&src, "amd64", 50, false);
    let r = reg.reference("test/img:1");
    let creds = |user: &str, pass: &str, verify: bool, ca: bool| {
        let mut o = plain_opts();
        o.auth.set(&reg.host, Credential::basic(user, pass));
        o.tls_verify = verify;
        if ca {
            o.extra_ca_files = vec![reg.ca.clone().unwrap()];
        }
        client(o)
    };

    // The certificate is not trusted: a TLS error, no fallback to http.
    let e = push(&creds("berth", "s3cret", true, false), &r, &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.to_string().starts_with(&format!("push {}/test/img:1: tls {}: ", reg.host, reg.host)), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");

    // Wrong password.
    let e = push(&creds("berth", "wrong", false, false), &r, &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().starts_with(&format!("push {}/test/img:1: ", reg.host)), "{e}");
    assert!(e.to_string().contains(&format!("(401): the credentials for {} were rejected", reg.host)), "{e}");
    let e = resolve(&client(ClientOptions { tls_verify: false, ..plain_opts() }), &r, &Platform::new("linux", "amd64")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().contains(&format!("no credentials for {h} (berth-build login {h})", h = reg.host)), "{e}");

    // Right password, --tls-verify=false.
    let c = creds("berth", "s3cret", false, false);
    let res = push(&c, &r, &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap();
    assert_eq!(res.digest, img.digest);
    // Right password, the CA trusted.
    let c = creds("berth", "s3cret", true, true);
    let dst_dir = TempDir::new("dst");
    let dst = DirBlobStore::new(dst_dir.path()).unwrap();
    let p = pull(&c, &r, &dst, &PullOptions::default()).unwrap();
    assert_eq!(p.resolved.digest, img.digest);
    for d in img.blobs() {
        assert!(dst.has(&d));
    }
    let v = skopeo_inspect(&r.to_string(), &["--tls-verify=false", "--creds", "berth:s3cret"]);
    assert_eq!(v["Digest"], img.digest.to_string());

    // login: check, then store in berth's file; a new client finds the credentials there.
    let home = TempDir::new("home");
    let login_file = home.path().join("berth/auth.json");
    let mut o = plain_opts();
    o.tls_verify = false;
    o.auth = AuthConfig::with_files(vec![login_file.clone()]);
    o.auth.set(&reg.host, Credential::basic("berth", "wrong"));
    let e = client(o.clone()).check_auth(&reg.host).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().starts_with(&format!("login {}: ", reg.host)), "{e}");
    o.auth.set(&reg.host, Credential::basic("berth", "s3cret"));
    client(o.clone()).check_auth(&reg.host).unwrap();
    o.auth.store(&reg.host, "berth", "s3cret").unwrap();
    let mut o2 = plain_opts();
    o2.tls_verify = false;
    o2.auth = AuthConfig::with_files(vec![login_file]);
    resolve(&client(o2), &r, &Platform::new("linux", "amd64")).unwrap();
    // docker's config.json with a base64 auth entry.
    let docker_cfg = home.path().join("docker/config.json");
    std::fs::create_dir_all(docker_cfg.parent().unwrap()).unwrap();
    std::fs::write(&docker_cfg, json!({"auths": {format!("https://{}", reg.host): {"auth": base64_encode(b"berth:s3cret")}}}).to_string()).unwrap();
    let mut o3 = plain_opts();
    o3.insecure_registries = vec![reg.host.clone()];
    o3.auth = AuthConfig::with_files(vec![home.path().join("absent.json"), docker_cfg]);
    resolve(&client(o3), &r, &Platform::new("linux", "amd64")).unwrap();
}

// ---------------------------------------------------------------- token auth

fn b64url(data: &[u8]) -> String {
    base64_encode(data).trim_end_matches('=').replace('+', "-").replace('/', "_")
}

/// A token server for distribution's `auth: token`: checks basic credentials, grants
/// the requested repository scopes in an RS256 JWT signed with openssl, the signing
/// certificate in the `x5c` header (the registry trusts it through `rootcertbundle`).
struct TokenServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, pass: &str, issuer: &str, service: &str) -> (TokenServer, PathBuf) {
        let key = dir.join("token.key");
        let crt = dir.join("token.crt");
        run(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth token signer"]).args([
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            crt.to_str().unwrap(),
        ]));
        let der = run(Command::new("openssl").args(["x509", "-outform", "DER", "-in", crt.to_str().unwrap()]));
        let x5c = base64_encode(&der);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop2, req2) = (stop.clone(), requests.clone());
        let want_auth = format!("Basic {}", base64_encode(format!("{user}:{pass}").as_bytes()));
        let (issuer, service, dir) = (issuer.to_string(), service.to_string(), dir.to_path_buf());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut seq = 0;
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                let (conn, _) = match l.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                conn.set_nonblocking(false).unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = v.trim().to_string();
                        }
                    }
                }
                req2.lock().unwrap().push(path.clone());
                let (status, body) = if auth != want_auth {
                    (401, r#"{"details":"invalid username or password"}"#.to_string())
                } else {
                    seq += 1;
                    let query = path.split_once('?').map(|x| x.1).unwrap_or("");
                    let mut access = Vec::new();
                    for kv in query.split('&') {
                        if let Some(s) = kv.strip_prefix("scope=") {
                            let s = pct_decode(s);
                            for one in s.split(' ') {
                                let parts: Vec<&str> = one.splitn(3, ':').collect();
                                if parts.len() == 3 {
                                    access.push(json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
                                }
                            }
                        }
                    }
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
                    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
                    let claims = json!({"iss": issuer, "sub": "berth", "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now,
                        "jti": format!("jti-{seq}"), "access": access});
                    let signing_input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
                    let input_file = dir.join(format!("jwt-{seq}.in"));
                    std::fs::write(&input_file, &signing_input).unwrap();
                    let sig = run(Command::new("openssl").args(["dgst", "-sha256", "-binary", "-sign", key.to_str().unwrap(), input_file.to_str().unwrap()]));
                    let token = format!("{signing_input}.{}", b64url(&sig));
                    (200, json!({"token": token, "expires_in": 300}).to_string())
                };
                let mut conn = conn;
                let _ =
                    write!(conn, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        (TokenServer { port, stop, thread: Some(thread), requests }, crt)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn bearer_token_auth() {
    let keys = TempDir::new("token");
    let (tokens, signer) = TokenServer::start(keys.path(), "berth", "t0ken-pw", "berth-test-issuer", "berth-test");
    let realm = format!("http://127.0.0.1:{}/token", tokens.port);
    let reg = TestRegistry::start(
        "tokenreg",
        RegistryConfig {
            token: Some(TokenAuth { realm: realm.clone(), service: "berth-test".into(), issuer: "berth-test-issuer".into(), root_cert_bundle: signer }),
            ..Default::default()
        },
    );
    let src_dir = TempDir::new("src");
    let src = DirBlobStore::new(src_dir.path()).unwrap();
    let img = make_image(&src, "amd64", 60, false);
    let r = reg.reference("test/img:1");
    let with = |pass: Option<&str>| {
        let mut o = plain_opts();
        if let Some(p) = pass {
            o.auth.set(&reg.host, Credential::basic("berth", p));
        }
        client(o)
    };

    let e = push(&with(Some("nope")), &r, &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        e.to_string(),
        format!("push {h}/test/img:1: token request to {realm}: invalid username or password (401): the credentials for {h} were rejected", h = reg.host)
    );

    let c = with(Some("t0ken-pw"));
    let res = push(&c, &r, &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap();
    assert_eq!(res.digest, img.digest);
    let st = c.stats();
    assert_eq!(st.token_requests, 1, "one token for the push scope, cached: {st:?}");
    {
        let reqs = tokens.requests.lock().unwrap();
        let last = reqs.last().unwrap();
        assert!(last.contains("service=berth-test") && last.contains("scope=repository%3Atest%2Fimg%3Apull%2Cpush"), "{last}");
    }
    // Mount into another repository: the token covers the source repository too.
    push(&c, &reg.reference("test/copy:1"), &src, &img.manifest, &img.media_type, &PushOptions::default()).unwrap();
    assert_eq!(c.stats().blobs_mounted, 3);
    {
        let reqs = tokens.requests.lock().unwrap();
        assert!(reqs.last().unwrap().contains("scope=repository%3Atest%2Fimg%3Apull"), "{:?}", reqs.last());
    }
    let dst_dir = TempDir::new("dst");
    let dst = DirBlobStore::new(dst_dir.path()).unwrap();
    let pc = with(Some("t0ken-pw"));
    pull(&pc, &r, &dst, &PullOptions::default()).unwrap();
    assert_eq!(pc.stats().token_requests, 1);
    for d in img.blobs() {
        assert!(dst.has(&d));
    }
    pc.check_auth(&reg.host).unwrap();
    // Anonymous: the token server refuses, and says so.
    let e = resolve(&with(None), &r, &Platform::new("linux", "amd64")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().contains(&format!("no credentials for {h} (berth-build login {h})", h = reg.host)), "{e}");
}
