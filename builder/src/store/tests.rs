//! Store tests: blobs (atomic, verified), names, concurrent tags, cache, layers, prune.

use super::*;
use crate::layer::tests::Tmp;
use berth_spec::image::{History, RootFs, MEDIA_TYPE_OCI_LAYER};
use std::sync::Arc;

fn tmp_entries(store: &Store) -> Vec<String> {
    fs::read_dir(store.root().join("tmp")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

fn blob_names(store: &Store) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.root().join("blobs/sha256")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// A reader that fails after `n` bytes, as a dying download or a crash mid-write would.
struct FailAfter(usize);
impl Read for FailAfter {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("connection reset"));
        }
        let n = b.len().min(self.0);
        b[..n].fill(7);
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn blobs_are_content_addressed_and_atomic() {
    let t = Tmp::new("store-blobs");
    let store = Store::open(t.p("s")).unwrap();
    let d = store.put_blob("x", &mut &b"hello"[..]).unwrap();
    assert_eq!(d.digest, hash::sha256(b"hello"));
    assert_eq!(d.size, 5);
    assert!(store.has_blob(&d.digest));
    assert_eq!(store.read_blob(&d.digest).unwrap(), b"hello");
    assert_eq!(store.blob_path(&d.digest), store.root().join("blobs/sha256").join(d.digest.hex()));
    // Idempotent.
    assert_eq!(store.put_blob_bytes("x", b"hello").unwrap(), d);
    // A write that fails midway leaves no blob and no temp file.
    let before = blob_names(&store);
    assert!(store.put_blob("x", &mut FailAfter(3 << 20)).is_err());
    assert_eq!(blob_names(&store), before);
    assert!(tmp_entries(&store).is_empty(), "{:?}", tmp_entries(&store));
    // Verified writes: a wrong digest or size stores nothing.
    let wrong = hash::sha256(b"other");
    let e = store.put_blob_checked("x", Some(&wrong), None, &mut &b"payload"[..]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(!store.has_blob(&wrong) && !store.has_blob(&hash::sha256(b"payload")));
    assert!(store.put_blob_checked("x", None, Some(99), &mut &b"payload"[..]).is_err());
    let ok = store.put_blob_checked("x", Some(&hash::sha256(b"payload")), Some(7), &mut &b"payload"[..]).unwrap();
    assert!(store.has_blob(&ok.digest));
    assert!(tmp_entries(&store).is_empty());
    // A temp file dropped without commit (a crash before the rename) leaves nothing under
    // a digest name.
    let mut tf = store.temp_file().unwrap();
    tf.file().write_all(b"half").unwrap();
    drop(tf);
    assert!(tmp_entries(&store).is_empty());
    assert!(!store.has_blob(&hash::sha256(b"half")));
    // A missing blob is NotFound.
    assert_eq!(store.open_blob(&wrong).unwrap_err().kind(), io::ErrorKind::NotFound);
}

/// A minimal image: one layer blob (any bytes), config, manifest.
fn image(store: &Store, content: &[u8]) -> (Digest, Manifest, ImageConfig) {
    let layer = store.put_blob_bytes(MEDIA_TYPE_OCI_LAYER, content).unwrap();
    let config = ImageConfig {
        created: Some("2024-01-02T03:04:05Z".into()),
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs { typ: "layers".into(), diff_ids: vec![layer.digest.clone()] },
        history: vec![History { created_by: Some("test".into()), ..Default::default() }],
        ..Default::default()
    };
    let cd = store.put_config(&config).unwrap();
    let m = Manifest::new(cd, vec![layer]);
    let md = store.put_manifest(&m).unwrap();
    (md.digest, m, config)
}

#[test]
fn names_resolve_list_and_remove() {
    let t = Tmp::new("store-names");
    let store = Store::open(t.p("s")).unwrap();
    let (d1, m1, c1) = image(&store, b"layer-one");
    let (d2, _, _) = image(&store, b"layer-two");
    assert_eq!(store.tag("busybox", &d1).unwrap(), "busybox:latest");
    store.tag("my/app:1.0", &d2).unwrap();
    store.tag("alias", &d2).unwrap();
    assert_eq!(store.resolve("busybox").unwrap(), d1);
    assert_eq!(store.resolve("busybox:latest").unwrap(), d1);
    assert_eq!(store.resolve(d1.as_str()).unwrap(), d1);
    assert_eq!(store.resolve(&format!("busybox@{d1}")).unwrap(), d1);
    assert_eq!(store.resolve(&d1.hex()[..12]).unwrap(), d1);
    assert_eq!(store.resolve("my/app:1.0").unwrap(), d2);
    assert_eq!(store.resolve("my/app").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert!(store.tag("Bad Name", &d1).is_err());
    assert_eq!(store.tag("x", &hash::sha256(b"absent")).unwrap_err().kind(), io::ErrorKind::NotFound);

    let img = store.inspect("busybox").unwrap();
    assert_eq!((img.name.as_deref(), &img.digest, &img.manifest, &img.config), (Some("busybox:latest"), &d1, &m1, &c1));
    assert_eq!(img.descriptor().size, store.blob_size(&d1).unwrap());

    let list = store.images().unwrap();
    let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["alias:latest", "busybox:latest", "my/app:1.0"]);
    let bb = &list[1];
    assert_eq!(bb.created.as_deref(), Some("2024-01-02T03:04:05Z"));
    assert_eq!(bb.size, store.blob_size(&d1).unwrap() + m1.config.size + m1.layers[0].size);

    assert_eq!(store.rmi("busybox").unwrap(), d1);
    assert_eq!(store.rmi("busybox").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert!(store.resolve("busybox").is_err());
    // Still there by digest until pruned.
    assert_eq!(store.resolve(d1.as_str()).unwrap(), d1);
}

#[test]
fn concurrent_tag_updates_are_not_lost() {
    let t = Tmp::new("store-conc");
    let store = Arc::new(Store::open(t.p("s")).unwrap());
    let (d, _, _) = image(&store, b"l");
    // Threads each open their own lock fds, as separate processes would.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = Store::open(store.root()).unwrap();
            let d = d.clone();
            std::thread::spawn(move || {
                for j in 0..25 {
                    store.tag(&format!("t{i}:v{j}"), &d).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let list = store.images().unwrap();
    assert_eq!(list.len(), 200, "lost tag updates");
    // images.json is always whole JSON.
    let _: serde_json::Value = serde_json::from_slice(&fs::read(store.root().join("images.json")).unwrap()).unwrap();
}

#[test]
fn concurrent_blob_writers_of_the_same_content() {
    let t = Tmp::new("store-conc-blob");
    let store = Store::open(t.p("s")).unwrap();
    let data: Vec<u8> = (0..(4 << 20)).map(|i| (i % 253) as u8).collect();
    let data = Arc::new(data);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let data = data.clone();
            std::thread::spawn(move || store.put_blob("x", &mut &data[..]).unwrap())
        })
        .collect();
    let ds: Vec<Descriptor> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(ds.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(store.read_blob(&ds[0].digest).unwrap(), *data);
    assert!(tmp_entries(&store).is_empty());
}

#[test]
fn cache_entries_and_prune() {
    let t = Tmp::new("store-prune");
    let store = Store::open(t.p("s")).unwrap();
    let (kept, mk, ck) = image(&store, b"kept-layer");
    store.tag("kept", &kept).unwrap();
    let (dropped, md, _) = image(&store, b"dropped-layer");
    store.tag("dropped", &dropped).unwrap();
    store.rmi("dropped").unwrap();
    // A cache entry keeps its blob (and layer dir) alive.
    let cached = store.put_blob_bytes(MEDIA_TYPE_OCI_LAYER, b"cached-layer").unwrap();
    let key = hash::sha256(b"step key");
    let entry = CacheEntry {
        layer: Some(CacheLayer { diff_id: cached.digest.clone(), blob: cached.clone() }),
        config: Some(berth_spec::image::ContainerConfig { env: vec!["A=1".into()], ..Default::default() }),
        ..Default::default()
    };
    store.cache_put(&key, &entry).unwrap();
    assert_eq!(store.cache_get(&key).unwrap(), Some(entry.clone()));
    assert_eq!(store.cache_get(&hash::sha256(b"other")).unwrap(), None);
    // Layer dirs: one referenced by the kept image, one by the cache, one by nothing.
    for d in [&ck.rootfs.diff_ids[0], &cached.digest, &hash::sha256(b"orphan")] {
        fs::create_dir_all(store.layer_dir(d).join("x")).unwrap();
    }
    let orphan_blob = store.put_blob_bytes("x", b"orphan").unwrap();
    fs::write(store.root().join("tmp/leftover-of-a-crash"), b"x").unwrap();

    let r = store.prune(&PruneOptions::default()).unwrap();
    // dropped: manifest, config, layer; plus the orphan blob.
    assert_eq!(r.blobs, 4, "{r:?}");
    assert_eq!(r.layers, 1);
    assert_eq!(r.temp, 1);
    assert!(!store.has_blob(&dropped) && !store.has_blob(&md.config.digest) && !store.has_blob(&orphan_blob.digest));
    assert!(store.has_blob(&kept) && store.has_blob(&mk.config.digest) && store.has_blob(&mk.layers[0].digest));
    assert!(store.has_blob(&cached.digest));
    assert!(store.has_layer_dir(&ck.rootfs.diff_ids[0]) && store.has_layer_dir(&cached.digest));
    assert!(!store.has_layer_dir(&hash::sha256(b"orphan")));
    assert_eq!(store.inspect("kept").unwrap().digest, kept);

    // Dropping the cache frees its blob; a cache entry whose blob is gone reads as a miss.
    let r = store.prune(&PruneOptions { cache: true }).unwrap();
    assert_eq!((r.cache_entries, r.blobs, r.layers), (1, 1, 1));
    store.cache_put(&key, &entry).unwrap();
    assert_eq!(store.cache_get(&key).unwrap(), None);
}

#[test]
fn prune_waits_for_leases() {
    let t = Tmp::new("store-lease");
    let store = Store::open(t.p("s")).unwrap();
    let lease = store.lease().unwrap();
    let blob = store.put_blob_bytes("x", b"untagged work in progress").unwrap();
    let s2 = store.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let r = s2.prune(&PruneOptions::default()).unwrap();
        tx.send(()).unwrap();
        r
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "prune ran while a lease was held");
    assert!(store.has_blob(&blob.digest));
    drop(lease);
    let r = h.join().unwrap();
    assert_eq!(r.blobs, 1);
}

#[test]
fn layers_unpack_once_and_are_checked() {
    let t = Tmp::new("store-layers");
    let store = Store::open(t.p("s")).unwrap();
    let src = t.mkdir("src");
    fs::write(src.join("f"), b"content").unwrap();
    let blob = crate::layer::diff(&store, &src, &crate::layer::DiffOptions::default()).unwrap();
    let dir = store.ensure_layer(&blob.descriptor, &blob.diff_id).unwrap();
    assert_eq!(dir, store.layer_dir(&blob.diff_id));
    assert_eq!(fs::read(dir.join("f")).unwrap(), b"content");
    assert_eq!(store.ensure_layer(&blob.descriptor, &blob.diff_id).unwrap(), dir);
    // A config that lies about the diff_id is caught; nothing is left behind.
    let liar = hash::sha256(b"not the diff id");
    let e = store.ensure_layer(&blob.descriptor, &liar).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(!store.has_layer_dir(&liar));
    assert!(tmp_entries(&store).is_empty(), "{:?}", tmp_entries(&store));
    // Adopting a dir when the layer exists keeps the existing one and removes ours.
    let other = store.temp_dir("upper").unwrap().keep();
    fs::write(other.join("g"), b"g").unwrap();
    assert_eq!(store.adopt_layer_dir(&blob.diff_id, &other).unwrap(), dir);
    assert!(!other.exists());
    assert!(!dir.join("g").exists());
    // Lowerdirs of an image, top first.
    let src2 = t.mkdir("src2");
    fs::write(src2.join("h"), b"h").unwrap();
    let blob2 = crate::layer::diff(&store, &src2, &crate::layer::DiffOptions::default()).unwrap();
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs { typ: "layers".into(), diff_ids: vec![blob.diff_id.clone(), blob2.diff_id.clone()] },
        ..Default::default()
    };
    let cd = store.put_config(&config).unwrap();
    let md = store.put_manifest(&Manifest::new(cd, vec![blob.descriptor.clone(), blob2.descriptor.clone()])).unwrap();
    store.tag("two", &md.digest).unwrap();
    let dirs = store.image_lowerdirs(&store.inspect("two").unwrap()).unwrap();
    assert_eq!(dirs, [store.layer_dir(&blob2.diff_id), store.layer_dir(&blob.diff_id)]);
}

#[test]
fn store_dir_follows_flag_then_env() {
    assert_eq!(store_dir(Some(Path::new("/x"))), PathBuf::from("/x"));
    // The env var is process-wide; only read it here.
    match std::env::var_os("BERTH_STORE") {
        Some(v) if !v.is_empty() => assert_eq!(store_dir(None), PathBuf::from(v)),
        _ => assert_eq!(store_dir(None), PathBuf::from(DEFAULT_STORE)),
    }
}
