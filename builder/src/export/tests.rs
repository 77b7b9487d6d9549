//! Export tests: the shape of each output (the tools that read them are exercised by
//! integration/tests/builder_store.rs).

use super::*;
use crate::layer::tar::{Kind, TarReader};
use crate::layer::tests::{mknod, Tmp};
use crate::layer::{diff, DiffOptions};
use berth_spec::image::{ContainerConfig, History, ImageConfig, Index, Manifest, RootFs, ANNOTATION_REF_NAME};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

/// A two-layer image: base (bin/sh script, etc/passwd, a dir) and a layer on top that
/// deletes a file, replaces a dir opaquely and adds one.
fn two_layer_image(t: &Tmp, store: &Store) -> Image {
    let base = t.mkdir("base");
    fs::create_dir_all(base.join("etc")).unwrap();
    fs::write(base.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:100:101::/home/app:/bin/sh\n").unwrap();
    fs::write(base.join("etc/gone"), b"x").unwrap();
    fs::create_dir_all(base.join("data/old")).unwrap();
    fs::write(base.join("data/old/f"), b"old").unwrap();
    let top = t.mkdir("top");
    fs::create_dir_all(top.join("etc")).unwrap();
    mknod(&top.join("etc/gone"), libc::S_IFCHR, 0, 0);
    fs::create_dir_all(top.join("data")).unwrap();
    crate::layer::tests::set_xattr(&top.join("data"), "trusted.overlay.opaque", b"y");
    fs::write(top.join("data/new"), b"new").unwrap();
    let l1 = diff(store, &base, &DiffOptions::default()).unwrap();
    let l2 = diff(store, &top, &DiffOptions::default()).unwrap();
    let config = ImageConfig {
        created: Some("2024-01-02T03:04:05Z".into()),
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(ContainerConfig {
            user: Some("app".into()),
            env: vec!["A=1".into()],
            cmd: Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]),
            working_dir: Some("/data".into()),
            ..Default::default()
        }),
        rootfs: RootFs { typ: "layers".into(), diff_ids: vec![l1.diff_id.clone(), l2.diff_id.clone()] },
        history: vec![History::default(), History::default()],
        ..Default::default()
    };
    let cd = store.put_config(&config).unwrap();
    let md = store.put_manifest(&Manifest::new(cd, vec![l1.descriptor, l2.descriptor])).unwrap();
    store.tag("demo:v1", &md.digest).unwrap();
    store.inspect("demo:v1").unwrap()
}

fn tar_files(path: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut r = TarReader::new(fs::File::open(path).unwrap());
    let mut out = BTreeMap::new();
    while let Some(h) = r.next_entry().unwrap() {
        let mut d = Vec::new();
        r.read_to_end(&mut d).unwrap();
        let mut p = String::from_utf8_lossy(&h.path).into_owned();
        if h.kind == Kind::Dir && !p.ends_with('/') {
            p.push('/');
        }
        out.insert(p, d);
    }
    out
}

#[test]
fn oci_layout_dir_and_archive() {
    let t = Tmp::new("exp-oci");
    let store = Store::open(t.p("s")).unwrap();
    let img = two_layer_image(&t, &store);
    let dir = t.p("layout");
    export(&store, "demo:v1", ExportFormat::Oci, &dir, &ExportOptions::default()).unwrap();
    assert_eq!(fs::read_to_string(dir.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: Index = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 1);
    let m = &index.manifests[0];
    assert_eq!(m.digest, img.digest);
    assert_eq!(m.annotations[ANNOTATION_REF_NAME], "v1");
    assert_eq!(m.annotations["io.containerd.image.name"], "demo:v1");
    for d in [&img.digest, &img.manifest.config.digest, &img.manifest.layers[0].digest, &img.manifest.layers[1].digest] {
        let p = dir.join("blobs/sha256").join(d.hex());
        assert_eq!(crate::store::hash::sha256(&fs::read(&p).unwrap()), *d);
    }
    // A second export with another ref name adds to the layout; the same one replaces.
    let o = ExportOptions { ref_name: Some("other".into()), ..Default::default() };
    export(&store, "demo:v1", ExportFormat::Oci, &dir, &o).unwrap();
    export(&store, "demo:v1", ExportFormat::Oci, &dir, &o).unwrap();
    let index: Index = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let refs: Vec<&str> = index.manifests.iter().map(|m| m.annotations[ANNOTATION_REF_NAME].as_str()).collect();
    assert_eq!(refs, ["v1", "other"]);

    let archive = t.p("img.oci.tar");
    export(&store, "demo:v1", ExportFormat::OciArchive, &archive, &ExportOptions::default()).unwrap();
    let files = tar_files(&archive);
    let keys: Vec<&str> = files.keys().map(|s| s.as_str()).collect();
    assert!(keys.contains(&"oci-layout") && keys.contains(&"index.json") && keys.contains(&"blobs/sha256/"), "{keys:?}");
    assert_eq!(files[&format!("blobs/sha256/{}", img.digest.hex())], store.read_blob(&img.digest).unwrap());
    let index: Index = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index.manifests[0].annotations[ANNOTATION_REF_NAME], "v1");
    // No temp file left beside it.
    let left: Vec<_> = fs::read_dir(&t.dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".tmp-")).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn docker_archive_both_ways() {
    let t = Tmp::new("exp-docker");
    let store = Store::open(t.p("s")).unwrap();
    let img = two_layer_image(&t, &store);
    let ids = &img.config.rootfs.diff_ids;
    let out = t.p("img.docker.tar");
    export(&store, "demo:v1", ExportFormat::DockerArchive, &out, &ExportOptions::default()).unwrap();
    let files = tar_files(&out);
    let m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["demo:v1"]));
    let cfg = m[0]["Config"].as_str().unwrap();
    assert_eq!(crate::store::hash::sha256(&files[cfg]), img.manifest.config.digest);
    let layers: Vec<&str> = m[0]["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(layers, [format!("{}/layer.tar", ids[0].hex()), format!("{}/layer.tar", ids[1].hex())]);
    for (l, id) in layers.iter().zip(ids) {
        assert_eq!(crate::store::hash::sha256(&files[*l]), *id, "uncompressed layer matches its diff_id");
    }
    let repos: serde_json::Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(repos["demo"]["v1"], ids[1].hex());

    let out = t.p("img.docker-gz.tar");
    let o = ExportOptions { docker_compressed: true, name: Some("renamed".into()), ..Default::default() };
    export(&store, "demo:v1", ExportFormat::DockerArchive, &out, &o).unwrap();
    let files = tar_files(&out);
    let m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["renamed:latest"]));
    let l0 = m[0]["Layers"][0].as_str().unwrap();
    assert_eq!(l0, format!("{}.tar.gz", img.manifest.layers[0].digest.hex()));
    assert_eq!(files[l0], store.read_blob(&img.manifest.layers[0].digest).unwrap());
}

#[test]
fn local_and_bundle_flatten_with_whiteouts() {
    let t = Tmp::new("exp-local");
    let store = Store::open(t.p("s")).unwrap();
    two_layer_image(&t, &store);
    let dest = t.p("rootfs");
    export(&store, "demo:v1", ExportFormat::Local, &dest, &ExportOptions::default()).unwrap();
    assert!(dest.join("etc/passwd").is_file());
    assert!(!dest.join("etc/gone").exists() && !dest.join("etc/.wh.gone").exists());
    assert!(!dest.join("data/old").exists());
    assert_eq!(fs::read(dest.join("data/new")).unwrap(), b"new");
    assert!(crate::layer::tests::get_xattr(&dest.join("data"), "trusted.overlay.opaque").is_none());
    // Not over a non-empty dir.
    assert!(export(&store, "demo:v1", ExportFormat::Local, &dest, &ExportOptions::default()).is_err());

    let b = t.p("bundle");
    let o = ExportOptions { runtime: berth_spec::image::RuntimeOptions { env: vec!["B=2".into()], ..Default::default() }, ..Default::default() };
    export(&store, "demo:v1", ExportFormat::Bundle, &b, &o).unwrap();
    let spec = berth_spec::load_bundle(&b).unwrap_or_else(|e| panic!("{e}"));
    let p = spec.spec.process.as_ref().unwrap();
    assert_eq!(p.args, ["/bin/sh", "-c", "echo hi"]);
    assert_eq!((p.user.uid, p.user.gid), (100, 101));
    assert_eq!(p.cwd, "/data");
    assert!(p.env.contains(&"A=1".to_string()) && p.env.contains(&"B=2".to_string()));
    assert_eq!(spec.spec.root.as_ref().unwrap().path, "rootfs");
    assert!(!spec.spec.root.as_ref().unwrap().readonly);
    assert!(b.join("rootfs/data/new").is_file());
}

#[test]
fn formats_parse() {
    assert_eq!("oci".parse::<ExportFormat>().unwrap(), ExportFormat::Oci);
    assert_eq!("oci-archive".parse::<ExportFormat>().unwrap(), ExportFormat::OciArchive);
    assert_eq!("docker-archive".parse::<ExportFormat>().unwrap(), ExportFormat::DockerArchive);
    assert_eq!("local".parse::<ExportFormat>().unwrap(), ExportFormat::Local);
    assert_eq!("bundle".parse::<ExportFormat>().unwrap(), ExportFormat::Bundle);
    assert!("tar".parse::<ExportFormat>().is_err());
}
