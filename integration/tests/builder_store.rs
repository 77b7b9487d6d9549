//! berth-build's image store and exports, checked with the tools that consume them:
//! a busybox rootfs tarball is imported (berth_build::layer::import_tarball), a second
//! layer with an overlay whiteout is added (berth_build::layer::diff), and each export is
//! read by a real peer:
//!
//! - `oci`: `skopeo inspect oci:DIR:TAG` (manifest, layers, config), `skopeo copy` to
//!   another layout (every blob re-verified), `umoci unpack` + `runc run` (the whiteout
//!   applied, the image's Cmd/Env/WorkingDir converted by umoci);
//! - `oci-archive`, `docker-archive` (plain and compressed layers): `skopeo inspect`;
//!   `podman load` + `podman run` when podman is installed (own --root/--runroot, vfs);
//! - `bundle`: `berth run` (target/{release,debug}/berth, or $BERTH_RUNTIME);
//! - `local`: the flattened tree equals the source rootfs less the deleted file.
//!
//! skopeo, umoci, podman and runc must be installed (.ci/run installs them; a missing
//! one fails the test). Needs root and busybox-static. Everything made (runc state, podman
//! storage, mounts) lives in the test's temp dir and is removed on drop, even on failure.

use berth_build::export::{export, ExportFormat, ExportOptions};
use berth_build::layer::{diff, import_tarball, DiffOptions, ImportOptions};
use berth_build::store::Store;
use berth_integration::registry_support::{self, need, Podman};
use berth_integration::{procs, rootfs, Test};
use berth_spec::image::{ContainerConfig, Descriptor, Digest, History, Manifest, RuntimeOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const TAG: &str = "bb:test";
const HELLO: &str = "hello from berth-build";

/// Runs a command to completion; its stdout (panics with its stderr unless it succeeds).
#[track_caller]
fn run(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&registry_support::run(cmd)).into_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The test image, in a store inside the test dir: busybox imported from a tarball with a
/// Cmd, plus a layer that deletes /bin/ls (an overlay whiteout) and adds /etc/motd.
struct Img {
    store: Store,
    digest: Digest,
    base_layer: Descriptor,
    top_layer: Descriptor,
}

fn make_image(t: &Test) -> Img {
    let tarball = t.path("busybox.tgz");
    run(Command::new("tar").arg("czf").arg(&tarball).arg("-C").arg(rootfs::base()).arg("."));
    let store = Store::open(t.path("store")).expect("open store");
    let opts = ImportOptions {
        config: Some(ContainerConfig {
            cmd: Some(vec!["sh".into(), "-c".into(), format!("echo {HELLO} $GREETING; pwd; cat /etc/motd; ls /bin/ls 2>&1 || true")]),
            env: vec!["GREETING=from-env".into()],
            working_dir: Some("/tmp".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let imp = import_tarball(&store, &tarball, "busybox-import", &opts).expect("import");

    // The second layer, as an overlay upper dir looks after `rm /bin/ls; echo > /etc/motd`.
    let upper = t.mkdir("upper");
    std::fs::create_dir_all(upper.join("bin")).unwrap();
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    let c = std::ffi::CString::new(upper.join("bin/ls").to_str().unwrap()).unwrap();
    // SAFETY: mknod(2) of a 0:0 char device (an overlay whiteout) with a valid C string.
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) }, 0, "mknod whiteout");
    std::fs::write(upper.join("etc/motd"), "motd from the second layer\n").unwrap();
    let top = diff(&store, &upper, &DiffOptions::default()).expect("diff");

    let base = store.inspect("busybox-import").expect("inspect import");
    let mut config = base.config.clone();
    config.rootfs.diff_ids.push(top.diff_id.clone());
    config.history.push(History { created_by: Some("RUN rm /bin/ls && echo > /etc/motd".into()), ..Default::default() });
    let cd = store.put_config(&config).unwrap();
    let md = store.put_manifest(&Manifest::new(cd, vec![imp.layer.descriptor.clone(), top.descriptor.clone()])).unwrap();
    store.tag(TAG, &md.digest).unwrap();
    Img { store, digest: md.digest, base_layer: imp.layer.descriptor, top_layer: top.descriptor }
}

/// runc with its state in the test dir; the container is force-deleted on drop.
struct Runc {
    root: PathBuf,
    id: String,
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = procs::output(Command::new("runc").arg("--root").arg(&self.root).args(["delete", "--force", &self.id]));
    }
}

fn check_output(out: &str, what: &str) {
    assert!(out.contains(&format!("{HELLO} from-env")), "{what}: no greeting in\n{out}");
    assert!(out.contains("motd from the second layer"), "{what}: the second layer is missing\n{out}");
    assert!(out.contains("/bin/ls: No such file or directory"), "{what}: the whiteout was not applied\n{out}");
}

#[test]
fn oci_layout_is_read_by_skopeo_umoci_and_runc() {
    let t = Test::new("bstore-oci");
    let img = make_image(&t);
    let layout = t.path("layout");
    export(&img.store, TAG, ExportFormat::Oci, &layout, &ExportOptions::default()).expect("export oci");

    need("skopeo");
    {
        let r = format!("oci:{}:test", layout.display());
        let v = json(&run(Command::new("skopeo").args(["inspect", &r])));
        assert_eq!(v["Digest"], img.digest.as_str(), "{v}");
        assert_eq!(v["Layers"], serde_json::json!([img.base_layer.digest.as_str(), img.top_layer.digest.as_str()]), "{v}");
        assert_eq!(v["Os"], "linux");
        let c = json(&run(Command::new("skopeo").args(["inspect", "--config", &r])));
        assert_eq!(c["config"]["WorkingDir"], "/tmp", "{c}");
        assert_eq!(c["rootfs"]["diff_ids"].as_array().map(|a| a.len()), Some(2), "{c}");
        // A copy reads and verifies every blob against its digest.
        let copy = format!("oci:{}:copied", t.path("layout-copy").display());
        run(Command::new("skopeo").args(["copy", "--quiet", &r, &copy]));
        let v = json(&run(Command::new("skopeo").args(["inspect", &copy])));
        assert_eq!(v["Layers"].as_array().map(|a| a.len()), Some(2), "{v}");
    }

    need("umoci");
    let bundle = t.path("umoci-bundle");
    run(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:test", layout.display())).arg(&bundle));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    assert!(!bundle.join("rootfs/bin/ls").exists(), "umoci applied the whiteout");
    let cfg_path = bundle.join("config.json");
    let mut cfg = json(&std::fs::read_to_string(&cfg_path).unwrap());
    assert_eq!(cfg["process"]["cwd"], "/tmp", "umoci read WorkingDir");
    assert_eq!(cfg["process"]["args"][0], "sh", "umoci read Cmd");
    cfg["process"]["terminal"] = serde_json::json!(false);
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    need("runc");
    let runc = Runc { root: t.path("runc-state"), id: format!("bstore-{}", std::process::id()) };
    let out = run(Command::new("runc").arg("--root").arg(&runc.root).args(["run", "-b"]).arg(&bundle).arg(&runc.id));
    check_output(&out, "runc run of umoci's bundle");
    assert!(out.lines().any(|l| l == "/tmp"), "cwd: {out}");
}

#[test]
fn archives_are_read_by_skopeo() {
    let t = Test::new("bstore-archives");
    let img = make_image(&t);
    let oci = t.path("img.oci.tar");
    export(&img.store, TAG, ExportFormat::OciArchive, &oci, &ExportOptions::default()).expect("export oci-archive");
    let plain = t.path("img.docker.tar");
    export(&img.store, TAG, ExportFormat::DockerArchive, &plain, &ExportOptions::default()).expect("export docker-archive");
    let gz = t.path("img.docker-gz.tar");
    let o = ExportOptions { docker_compressed: true, ..Default::default() };
    export(&img.store, TAG, ExportFormat::DockerArchive, &gz, &o).expect("export docker-archive, compressed");
    need("skopeo");
    let v = json(&run(Command::new("skopeo").arg("inspect").arg(format!("oci-archive:{}", oci.display()))));
    assert_eq!(v["Digest"], img.digest.as_str(), "{v}");
    for archive in [&plain, &gz] {
        // Named by its RepoTags entry (skopeo normalizes both to docker.io/library/bb:test).
        let r = format!("docker-archive:{}:{TAG}", archive.display());
        let v = json(&run(Command::new("skopeo").args(["inspect", &r])));
        assert_eq!(v["Layers"].as_array().map(|a| a.len()), Some(2), "{v}");
        let c = json(&run(Command::new("skopeo").args(["inspect", "--config", &r])));
        assert_eq!(c["config"]["Env"][0], "GREETING=from-env", "{c}");
        // skopeo copy to a layout: reads each layer and checks it against the diff_ids.
        let dest = format!("oci:{}:x", t.path(&format!("from-{}", archive.file_name().unwrap().to_string_lossy())).display());
        run(Command::new("skopeo").args(["copy", "--quiet", &r, &dest]));
    }
}

#[test]
fn docker_archive_loads_and_runs_in_podman() {
    let t = Test::new("bstore-podman");
    let img = make_image(&t);
    let pm = Podman::new(&t.mkdir("podman"));
    for (i, compressed) in [false, true].into_iter().enumerate() {
        let archive = t.path(&format!("img{i}.tar"));
        let name = format!("bb{i}:test");
        let o = ExportOptions { docker_compressed: compressed, name: Some(name.clone()), ..Default::default() };
        export(&img.store, TAG, ExportFormat::DockerArchive, &archive, &o).expect("export docker-archive");
        let out = run(pm.cmd().arg("load").arg("--quiet").arg("--input").arg(&archive));
        let loaded = out.lines().find_map(|l| l.split_once(": ").map(|x| x.1.trim().to_string())).unwrap_or_else(|| panic!("podman load said {out:?}"));
        assert!(loaded.contains(&format!("bb{i}")), "{out}");
        let out = pm.run_local(&loaded, &[]);
        check_output(&out, &format!("podman run (compressed layers: {compressed})"));
    }
}

#[test]
fn bundle_export_runs_with_berth() {
    let t = Test::new("bstore-bundle");
    let img = make_image(&t);
    let bundle = t.path("bundle");
    let o = ExportOptions { runtime: RuntimeOptions { env: vec!["EXTRA=1".into()], ..Default::default() }, ..Default::default() };
    export(&img.store, TAG, ExportFormat::Bundle, &bundle, &o).expect("export bundle");
    let cfg = json(&std::fs::read_to_string(bundle.join("config.json")).unwrap());
    assert_eq!(cfg["root"]["path"], "rootfs");
    assert_eq!(cfg["process"]["cwd"], "/tmp");
    let id = t.id("run");
    let out = t.rt.cmd(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    out.ok();
    check_output(&out.stdout, "berth run of the bundle export");
}

#[test]
fn local_export_is_the_rootfs_with_the_whiteout_applied() {
    let t = Test::new("bstore-local");
    let img = make_image(&t);
    let dest = t.path("local");
    export(&img.store, TAG, ExportFormat::Local, &dest, &ExportOptions::default()).expect("export local");
    let list = |root: &Path| -> Vec<String> {
        let out = run(Command::new("sh").arg("-c").arg(format!("cd {} && find . | sort", root.display())));
        out.lines().map(str::to_string).collect()
    };
    let mut want = list(rootfs::base());
    want.retain(|p| p != "./bin/ls");
    want.push("./etc/motd".into());
    want.sort();
    assert_eq!(list(&dest), want);
    let md = std::fs::symlink_metadata(dest.join("bin/sh")).unwrap();
    assert!(md.file_type().is_symlink());
    assert_eq!(std::fs::read_link(dest.join("bin/sh")).unwrap(), Path::new("busybox"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dest.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
}
