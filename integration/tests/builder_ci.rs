//! End-to-end tests of `berth-build` in CI pipelines (issue 16): reproducible digests
//! (unchanged rebuilds, SOURCE_DATE_EPOCH), `--platform`, and the docker/buildx build
//! flags (outputs, RUN settings, caches in a directory, ssh, named contexts...). Same
//! needs as tests/builder.rs: root, busybox-static, the built binaries; the `--pull` and
//! index tests also start a docker-registry, as tests/registry_build.rs does.

use berth_integration::builder_support::{run_cmd, sha256_hex, Bt, BuildOutput, Out};
use berth_integration::Value;
use std::path::Path;
use std::process::Command;

/// `sh -c SCRIPT` in `dir`.
fn sh(dir: &Path, script: &str) -> Out {
    run_cmd(Command::new("sh").arg("-c").arg(script).current_dir(dir), dir)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const EPOCH: &str = "1600000000";
const EPOCH_RFC3339: &str = "2020-09-13T12:26:40Z";

/// Every kind of step: layers from the context and from RUN (files made now), and
/// metadata-only steps, before and after them.
const CI_APP: &str = r#"FROM base
ENV APP=/app
LABEL org.example.stage=one
COPY app.txt $APP/
RUN echo built > $APP/run.txt && mkdir -p /var/cache/app
LABEL org.example.stage=two
CMD ["cat", "/app/app.txt"]
"#;

/// A Bt whose store also holds `base`: its busybox imported with the fixed epoch, so
/// two such stores start from the same base image (the default import is dated now).
fn with_base(name: &str) -> Bt {
    let b = Bt::new(name);
    // Relative (the command runs in the test dir): the path is in the image's history.
    b.bb_env(&["import", "busybox.tar", "base"], &[("SOURCE_DATE_EPOCH", EPOCH)]).ok();
    b
}

/// Builds `ctx` with `extra` flags and env; returns the image id from --iidfile.
fn build_id(b: &Bt, ctx: &Path, extra: &[&str], env: &[(&str, &str)]) -> (String, Out) {
    let iid = b.path("iid");
    let _ = std::fs::remove_file(&iid);
    let mut a = vec!["build", "--progress", "plain", "--iidfile", iid.to_str().unwrap()];
    a.extend_from_slice(extra);
    a.push(ctx.to_str().unwrap());
    let o = b.bb_env(&a, env);
    o.ok();
    (read(&iid), o)
}

#[test]
fn unchanged_rebuild_gives_the_same_digest() {
    let b = with_base("ci-rebuild");
    let ctx = b.context("ctx", &[("Dockerfile", CI_APP), ("app.txt", "hello\n")]);
    let (first, _) = build_id(&b, &ctx, &["-t", "app:1"], &[]);
    // Every time written is in seconds: a rebuild in another second would show "now".
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, o) = build_id(&b, &ctx, &["-t", "app:1"], &[]);
    assert!(o.step_was_cached("RUN echo built"), "{}", o.describe());
    assert_eq!(first, second, "an unchanged rebuild changed the image digest\n{}", o.describe());
    // Metadata-only steps and the image take the time of the last step that ran.
    let v = b.inspect("app:1");
    let hist = v["Config"]["history"].as_array().unwrap();
    let run_time = hist.iter().find(|h| h["created_by"].as_str().is_some_and(|c| c.starts_with("RUN"))).unwrap()["created"].clone();
    assert_eq!(hist.last().unwrap()["created_by"], "CMD [\"cat\",\"/app/app.txt\"]");
    assert_eq!(hist.last().unwrap()["created"], run_time, "{v}");
    assert_eq!(v["Config"]["created"], run_time, "{v}");
    // A changed label is a new config, and so a new digest, still without running anything.
    let changed = b.context("ctx2", &[("Dockerfile", &CI_APP.replace("stage=two", "stage=three")), ("app.txt", "hello\n")]);
    let (third, o) = build_id(&b, &changed, &[], &[]);
    assert!(o.step_was_cached("RUN echo built"), "{}", o.describe());
    assert_ne!(first, third);
    b.assert_clean();
}

/// The mtimes of every entry of the layer tars of the image `id` in the store, as
/// `YYYY-MM-DD HH:MM:SS` (UTC).
fn layer_mtimes(b: &Bt, id: &str) -> Vec<String> {
    let v = b.inspect(id);
    let mut out = Vec::new();
    for l in v["Manifest"]["layers"].as_array().unwrap() {
        let digest = l["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
        let blob = b.store.join("blobs/sha256").join(&digest);
        let o = sh(&b.t.dir, &format!("tar --utc --full-time -tvzf {}", blob.display()));
        o.ok();
        for line in o.stdout.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            out.push(format!("{} {}", f[3], f[4]));
        }
    }
    out
}

#[test]
fn same_source_date_epoch_gives_the_same_digest_in_clean_stores_whatever_the_file_times() {
    // Two checkouts on "different days": other stores, other file mtimes (all after
    // the epoch, as a checkout's are), RUN at other times.
    let one = with_base("ci-epoch-1");
    let two = with_base("ci-epoch-2");
    let base_one = one.inspect("base")["Digest"].clone();
    assert_eq!(base_one, two.inspect("base")["Digest"], "the two imports of busybox differ");
    let ctx1 = one.context("ctx", &[("Dockerfile", CI_APP), ("app.txt", "hello\n")]);
    let ctx2 = two.context("ctx", &[("Dockerfile", CI_APP), ("app.txt", "hello\n")]);
    sh(&ctx1, "touch -d '2024-03-01 10:00:00' app.txt Dockerfile .").ok();
    sh(&ctx2, "touch -d '2025-07-15 18:30:00' app.txt Dockerfile .").ok();

    // The first store builds without the epoch first: its cache then holds layers with
    // the real mtimes, which the epoch build must clamp without running the steps again.
    build_id(&one, &ctx1, &[], &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (a, o) = build_id(&one, &ctx1, &["--build-arg", &format!("SOURCE_DATE_EPOCH={EPOCH}")], &[]);
    assert!(o.step_was_cached("RUN echo built"), "{}", o.describe());
    assert!(!o.stderr.contains("not consumed"), "SOURCE_DATE_EPOCH is reported as unused:\n{}", o.describe());
    // The second, clean, with the environment variable instead of the build arg.
    let (c, _) = build_id(&two, &ctx2, &[], &[("SOURCE_DATE_EPOCH", EPOCH)]);
    assert_eq!(a, c, "same SOURCE_DATE_EPOCH, different digests");
    // A third, clean too, with the build arg and its files from yet another day.
    let three = with_base("ci-epoch-3");
    let ctx3 = three.context("ctx", &[("Dockerfile", CI_APP), ("app.txt", "hello\n")]);
    sh(&ctx3, "touch -d '2026-01-02 03:04:05' app.txt Dockerfile .").ok();
    let (d, _) = build_id(&three, &ctx3, &["--build-arg", &format!("SOURCE_DATE_EPOCH={EPOCH}")], &[]);
    assert_eq!(c, d, "two clean builds with the same SOURCE_DATE_EPOCH differ");
    three.assert_clean();

    let v = two.inspect(&c);
    assert_eq!(v["Config"]["created"], EPOCH_RFC3339);
    let hist = v["Config"]["history"].as_array().unwrap();
    assert!(hist.iter().all(|h| h["created"] == EPOCH_RFC3339), "{v}");
    // rewrite-timestamp: no mtime in any layer is after the epoch, and the files made
    // after it (the context's, RUN's) are at it.
    let times = layer_mtimes(&two, &c);
    let epoch_time = "2020-09-13 12:26:40";
    assert!(!times.is_empty());
    assert!(times.iter().all(|t| t.as_str() <= epoch_time), "{times:?}");
    assert!(times.iter().filter(|t| *t == epoch_time).count() >= 3, "{times:?}");

    // A bad epoch is refused, naming it.
    let o = one.build(&ctx1, &["--build-arg", "SOURCE_DATE_EPOCH=yesterday"]);
    o.failed();
    assert!(o.stderr.contains("SOURCE_DATE_EPOCH") && o.stderr.contains("yesterday"), "{}", o.describe());
    one.assert_clean();
    two.assert_clean();
}

/// Whether the progress shows a step `text` (`#N [..] text`); the error's excerpt of
/// the Dockerfile may hold the text without the step having started.
fn step_started(o: &Out, text: &str) -> bool {
    o.stderr.lines().any(|l| l.starts_with('#') && l.contains(text))
}

/// The host's platform as berth-build names it, and one it cannot run.
fn host_and_foreign() -> (&'static str, &'static str) {
    if std::env::consts::ARCH == "x86_64" {
        ("linux/amd64", "linux/arm64")
    } else {
        (if std::env::consts::ARCH == "aarch64" { "linux/arm64" } else { "linux/unknown" }, "linux/amd64")
    }
}

#[test]
fn a_platform_the_host_cannot_run_is_refused_before_any_step() {
    let b = Bt::new("ci-platform");
    let (host, foreign) = host_and_foreign();
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo ran > /ran\n")]);
    let (id, _) = build_id(&b, &ctx, &["--platform", host], &[]);
    let v = b.inspect(&id);
    assert_eq!(format!("{}/{}", v["Config"]["os"].as_str().unwrap(), v["Config"]["architecture"].as_str().unwrap()), host);

    let o = b.build(&ctx, &["--platform", foreign, "--no-cache"]);
    o.failed();
    assert!(o.stderr.contains(&format!("--platform {foreign}")) && o.stderr.contains(host), "{}", o.describe());
    assert!(!step_started(&o, "RUN echo ran"), "a step ran:\n{}", o.describe());
    let o = b.build(&ctx, &["--platform", &format!("{host},{foreign}")]);
    o.failed();
    assert!(o.stderr.contains("multi-platform"), "{}", o.describe());

    let ctx =
        b.context("ctx2", &[("Dockerfile", &format!("FROM busybox AS a\nRUN echo ran > /ran\nFROM --platform={foreign} busybox\nCOPY --from=a /ran /\n"))]);
    let o = b.build(&ctx, &["--no-cache"]);
    o.failed();
    assert!(o.stderr.contains(&format!("Dockerfile:3: FROM --platform {foreign}")), "{}", o.describe());
    assert!(!step_started(&o, "RUN echo ran"), "a step ran:\n{}", o.describe());
    // The automatic platform args name the host's.
    let ctx = b.context("ctx3", &[("Dockerfile", "FROM --platform=$BUILDPLATFORM busybox\nRUN echo ran > /ran\n")]);
    b.build(&ctx, &["--platform", host]).ok();
    b.assert_clean();
}

/// Rewrites the one image of the OCI layout `dir` to say it is for `platform`
/// (config `os`/`architecture`, and the index entry), as a foreign image would.
fn retarget(dir: &Path, platform: &str) {
    let (os, arch) = platform.split_once('/').unwrap();
    let blob = |d: &str| dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let put = |v: &Value| -> (String, usize) {
        let bytes = serde_json::to_vec(v).unwrap();
        let d = format!("sha256:{}", sha256_hex(&bytes));
        std::fs::write(blob(&d), &bytes).unwrap();
        (d, bytes.len())
    };
    let index_path = dir.join("index.json");
    let mut index: Value = serde_json::from_str(&read(&index_path)).unwrap();
    let mut manifest: Value = serde_json::from_str(&read(&blob(index["manifests"][0]["digest"].as_str().unwrap()))).unwrap();
    let mut config: Value = serde_json::from_str(&read(&blob(manifest["config"]["digest"].as_str().unwrap()))).unwrap();
    config["os"] = os.into();
    config["architecture"] = arch.into();
    let (d, n) = put(&config);
    manifest["config"]["digest"] = d.into();
    manifest["config"]["size"] = n.into();
    let (d, n) = put(&manifest);
    let entry = &mut index["manifests"][0];
    entry["digest"] = d.into();
    entry["size"] = n.into();
    if entry.get("platform").is_some() {
        entry["platform"] = serde_json::json!({"os": os, "architecture": arch});
    }
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn a_base_image_for_another_platform_is_refused_before_any_step() {
    let b = Bt::new("ci-foreign-base");
    let (host, foreign) = host_and_foreign();
    let layout = b.path("layout");
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\n")]);
    b.build(&ctx, &["-t", "foreign:1", "-o", &format!("type=oci,dest={},tar=false", layout.display())]).ok();
    retarget(&layout, foreign);
    sh(&b.t.dir, &format!("tar -C {} -cf foreign.tar .", layout.display())).ok();
    b.bb(&["load", "foreign.tar", "foreign:arm"]).ok();

    let df = "FROM busybox AS first\nRUN echo ran > /ran\nFROM foreign:arm\nCOPY --from=first /ran /ran\n";
    let ctx = b.context("ctx2", &[("Dockerfile", df)]);
    for flags in [&[][..], &["--platform", host][..]] {
        let mut f = vec!["--no-cache"];
        f.extend_from_slice(flags);
        let o = b.build(&ctx, &f);
        o.failed();
        assert!(
            o.stderr.contains("Dockerfile:3") && o.stderr.contains("\"foreign:arm\"") && o.stderr.contains(foreign) && o.stderr.contains(host),
            "{}",
            o.describe()
        );
        assert!(!step_started(&o, "RUN echo ran"), "a step ran:\n{}", o.describe());
    }
    // The same base for the host's platform builds.
    let ok = b.context("ctx3", &[("Dockerfile", &df.replace("foreign:arm", "foreign:1"))]);
    b.build(&ok, &["--platform", host]).ok();
    b.assert_clean();
}

#[test]
fn label_annotation_and_metadata_file_describe_the_image_as_buildx_does() {
    let b = Bt::new("ci-meta");
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nLABEL a=from-dockerfile keep=yes\n")]);
    let layout = b.path("layout");
    let meta = b.path("meta.json");
    let o = b.build(
        &ctx,
        &[
            "-t",
            "ann:1",
            "--label",
            "a=from-flag",
            "--label",
            "b=2",
            "--annotation",
            "org.opencontainers.image.title=app",
            "--annotation",
            "manifest:m=1",
            "--annotation",
            "manifest-descriptor:d=1",
            "--annotation",
            "index:i=1",
            "--provenance=false",
            "--sbom=false",
            "--metadata-file",
            meta.to_str().unwrap(),
            "-o",
            &format!("type=oci,dest={},tar=false", layout.display()),
        ],
    );
    o.ok();
    let v = b.inspect("ann:1");
    let labels = &v["Config"]["config"]["Labels"];
    assert_eq!((labels["a"].as_str(), labels["b"].as_str(), labels["keep"].as_str()), (Some("from-flag"), Some("2"), Some("yes")), "{v}");
    let ann = &v["Manifest"]["annotations"];
    assert_eq!((ann["org.opencontainers.image.title"].as_str(), ann["m"].as_str()), (Some("app"), Some("1")), "{v}");
    assert!(ann.get("d").is_none() && ann.get("i").is_none(), "{v}");
    let index: Value = serde_json::from_str(&read(&layout.join("index.json"))).unwrap();
    assert_eq!(index["annotations"]["i"], "1", "{index}");
    assert_eq!(index["manifests"][0]["annotations"]["d"], "1", "{index}");
    assert_eq!(index["manifests"][0]["digest"], v["Digest"], "{index}");

    let m: Value = serde_json::from_str(&read(&meta)).unwrap();
    assert_eq!(m["containerimage.digest"], v["Digest"], "{m}");
    assert_eq!(m["containerimage.config.digest"], v["Manifest"]["config"]["digest"], "{m}");
    assert_eq!(m["containerimage.descriptor"]["digest"], v["Digest"], "{m}");
    assert!(m["image.name"].as_str().unwrap().contains("ann:1"), "{m}");

    for (flags, says) in [
        (&["--provenance=true"][..], "--provenance=true"),
        (&["--provenance=mode=max"][..], "--provenance=mode=max"),
        (&["--sbom"][..], "--sbom=true"),
        (&["--annotation", "index-descriptor:x=1"][..], "index-descriptor:x=1"),
        (&["--label", "=x"][..], "--label"),
    ] {
        let o = b.build(&ctx, flags);
        o.failed();
        assert!(o.stderr.contains(says), "{says}: {}", o.describe());
    }
    b.assert_clean();
}

#[test]
fn run_steps_get_add_host_shm_size_and_ulimit() {
    let b = Bt::new("ci-run-settings");
    let df = "FROM busybox\nRUN grep registry.test /etc/hosts > /hosts; grep ' /dev/shm ' /proc/mounts > /shm; grep 'open files' /proc/self/limits > /nofile\n";
    let ctx = b.context("ctx", &[("Dockerfile", df)]);
    let flags = ["--add-host", "registry.test:10.1.2.3", "--add-host", "v6.test=[fd00::1]", "--shm-size", "128m", "--ulimit", "nofile=4096:8192"];
    for network in ["host", "none"] {
        let out = b.path(&format!("out-{network}"));
        let mut f = flags.to_vec();
        let o = format!("type=local,dest={}", out.display());
        f.extend_from_slice(&["--network", network, "-o", &o]);
        b.build(&ctx, &f).ok();
        assert_eq!(read(&out.join("hosts")), "10.1.2.3\tregistry.test\n", "network {network}");
        assert!(read(&out.join("shm")).contains("size=131072k"), "{}", read(&out.join("shm")));
        let nofile: Vec<String> = read(&out.join("nofile")).split_whitespace().map(str::to_string).collect();
        assert_eq!(nofile[3..5], ["4096", "8192"], "{nofile:?}");
    }
    // Other settings are another step: it runs again.
    let o = b.build(&ctx, &["--add-host", "registry.test:10.9.9.9", "--network", "none"]);
    o.ok();
    assert!(!o.step_was_cached("RUN grep"), "{}", o.describe());
    for bad in [&["--add-host", "registry.test"][..], &["--shm-size", "lots"][..], &["--ulimit", "nofile=9:1"][..], &["--cgroup-parent", "../x"][..]] {
        let o = b.build(&ctx, bad);
        o.failed();
        assert!(o.stderr.contains(bad[0]) && o.stderr.contains(bad[1]), "{}", o.describe());
    }
    b.assert_clean();
}

/// Removes the cgroup directory tree `rel` (below every hierarchy) on drop.
struct CgroupGuard(String);

impl CgroupGuard {
    fn dirs(&self) -> Vec<std::path::PathBuf> {
        let root = Path::new("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            return vec![root.join(&self.0)];
        }
        std::fs::read_dir(root).map(|d| d.flatten().map(|e| e.path().join(&self.0)).collect()).unwrap_or_default()
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        for d in self.dirs() {
            for sub in std::fs::read_dir(&d).map(|r| r.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default() {
                let _ = std::fs::remove_dir(sub);
            }
            let _ = std::fs::remove_dir(&d);
        }
    }
}

#[test]
fn cgroup_parent_puts_run_containers_under_it() {
    let b = Bt::new("ci-cgroup-parent");
    let guard = CgroupGuard(format!("berth-ci-{}", std::process::id()));
    assert!(guard.dirs().iter().all(|d| !d.exists()), "{:?} exists already", guard.dirs());
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nRUN sleep 4\n")]);
    let parent = format!("/{}", guard.0);
    let builder = {
        let mut c = Command::new(berth_integration::builder_support::builder_bin());
        c.arg("--store").arg(&b.store).args(["build", "--progress", "plain", "--cgroup-parent", &parent]).arg(&ctx);
        let dir = b.t.dir.clone();
        std::thread::spawn(move || run_cmd(c.current_dir(&dir), &dir))
    };
    // While RUN sleeps, its processes are in a cgroup below the parent.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut seen = Vec::new();
    while seen.is_empty() && std::time::Instant::now() < deadline && !builder.is_finished() {
        for d in guard.dirs() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let procs = std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
                if e.path().is_dir() && !procs.trim().is_empty() {
                    seen.push(e.path());
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = builder.join().expect("build thread");
    o.ok();
    assert!(!seen.is_empty(), "no RUN process was ever under {parent}\n{}", o.describe());
    b.assert_clean();
}

#[test]
fn rm_and_force_rm_are_accepted_and_no_container_is_left_either_way() {
    let b = Bt::new("ci-rm");
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo ok > /ok\n")]);
    b.build(&ctx, &["--rm", "--force-rm", "--no-cache"]).ok();
    b.assert_clean();
    let bad = b.context("bad", &[("Dockerfile", "FROM busybox\nRUN echo failing; exit 3\n")]);
    let o = b.build(&bad, &["--rm=false", "--force-rm=true"]);
    o.failed();
    assert!(o.stderr.contains("exit code 3"), "{}", o.describe());
    b.assert_clean();
}

#[test]
fn secret_from_an_environment_variable_reaches_run_and_not_the_image() {
    let b = Bt::new("ci-secret-env");
    let df = "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /got\n";
    let ctx = b.context("ctx", &[("Dockerfile", df)]);
    let out = b.path("out");
    let o = b.bb_env(
        &["build", "--progress", "plain", "--secret", "id=tok,env=CI_TOKEN", "-o", &format!("type=local,dest={}", out.display()), ctx.to_str().unwrap()],
        &[("CI_TOKEN", "s3cr3t-value")],
    );
    o.ok();
    assert_eq!(read(&out.join("got")), "s3cr3t-value");
    assert!(!out.join("run/secrets/tok").exists());
    b.assert_clean();
}

/// The entry names of the tar file `p`.
fn tar_names(b: &Bt, p: &Path) -> Vec<String> {
    let o = sh(&b.t.dir, &format!("tar -tf {}", p.display()));
    o.ok();
    o.stdout.lines().map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string()).collect()
}

#[test]
fn outputs_are_tarballs_by_default_directories_with_tar_false_and_stdout_with_dest_dash() {
    let b = Bt::new("ci-outputs");
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nRUN mkdir /app && echo built > /app/built.txt\n"), ("unused", "x")]);
    let p = |n: &str| b.path(n).display().to_string();
    let outs = [
        format!("type=tar,dest={}", p("rootfs.tar")),
        format!("type=oci,dest={}", p("oci.tar")),
        format!("type=oci,dest={},tar=false", p("oci-dir")),
        format!("type=docker,dest={}", p("docker.tar")),
        format!("type=docker,dest={},tar=false", p("docker-dir")),
    ];
    let mut flags = vec!["-t", "outs:1", "--build-arg", "SOURCE_DATE_EPOCH=1600000000"];
    for o in &outs {
        flags.extend_from_slice(&["-o", o]);
    }
    b.build(&ctx, &flags).ok();

    let rootfs = tar_names(&b, &b.path("rootfs.tar"));
    assert!(rootfs.contains(&"app/built.txt".to_string()) && rootfs.contains(&"bin/busybox".to_string()), "{rootfs:?}");
    // The rootfs tar has the image's clamped times.
    let o = sh(&b.t.dir, "tar --utc --full-time -tvf rootfs.tar app/built.txt");
    o.ok();
    assert!(o.stdout.contains("2020-09-13 12:26:40"), "{}", o.stdout);
    let oci = tar_names(&b, &b.path("oci.tar"));
    assert!(oci.contains(&"index.json".to_string()) && oci.contains(&"oci-layout".to_string()), "{oci:?}");
    assert!(b.path("oci-dir/index.json").is_file() && b.path("oci-dir/oci-layout").is_file());
    let docker = tar_names(&b, &b.path("docker.tar"));
    assert!(docker.contains(&"manifest.json".to_string()), "{docker:?}");
    let m: Value = serde_json::from_str(&read(&b.path("docker-dir/manifest.json"))).unwrap();
    assert_eq!(m[0]["RepoTags"][0], "outs:1", "{m}");
    assert!(b.path("docker-dir").join(m[0]["Config"].as_str().unwrap()).is_file());

    // dest=-: the tarball is the whole of stdout.
    let bin = berth_integration::builder_support::builder_bin();
    for (typ, inside) in [("tar", "app/built.txt"), ("oci", "index.json"), ("docker", "manifest.json")] {
        let o = sh(
            &b.t.dir,
            &format!("{} --store {} build --progress plain -o type={typ},dest=- {} > stdout-{typ}.tar", bin.display(), b.store.display(), ctx.display()),
        );
        o.ok();
        let names = tar_names(&b, &b.path(&format!("stdout-{typ}.tar")));
        assert!(names.contains(&inside.to_string()), "{typ}: {names:?}");
    }
    for (bad, says) in [
        ("type=local,dest=-".to_string(), "stdout"),
        (format!("type=oci,dest={},tar=maybe", p("x")), "tar=\"maybe\""),
        (format!("type=tar,dest={},tar=false", p("x")), "tar="),
        (format!("type=zip,dest={}", p("x")), "\"zip\""),
    ] {
        let o = b.build(&ctx, &["-o", &bad]);
        o.failed();
        assert!(o.stderr.contains(says), "{bad}: {}", o.describe());
    }
    let o = b.build(&ctx, &["-q", "-o", "type=tar,dest=-"]);
    o.failed();
    assert!(o.stderr.contains("-q"), "{}", o.describe());
    b.assert_clean();
}

#[test]
fn ignorefile_and_a_per_dockerfile_dockerignore_win_over_the_contexts() {
    let b = Bt::new("ci-ignore");
    let ctx = b.context(
        "ctx",
        &[
            ("app.Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
            (".dockerignore", "a.txt\n"),
            ("app.Dockerfile.dockerignore", "b.txt\n"),
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("c.txt", "c"),
        ],
    );
    b.write(&b.path("other.ignore"), "c.txt\n*.Dockerfile*\n");
    let listing = |flags: &[&str], out: &str| -> Vec<String> {
        let dest = b.path(out);
        let o = format!("type=local,dest={}", dest.display());
        let mut f = flags.to_vec();
        // -f relative to the working directory (the test dir), not to the context.
        f.extend_from_slice(&["-f", "ctx/app.Dockerfile", "-o", &o]);
        b.build(&ctx, &f).ok();
        let mut v: Vec<String> = std::fs::read_dir(dest.join("ctx")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    assert_eq!(listing(&[], "out1"), [".dockerignore", "a.txt", "app.Dockerfile", "app.Dockerfile.dockerignore", "c.txt"]);
    assert_eq!(listing(&["--ignorefile", "other.ignore"], "out2"), [".dockerignore", "a.txt", "b.txt"]);
    let o = b.build(&ctx, &["-f", "ctx/app.Dockerfile", "--ignorefile", "missing.ignore"]);
    o.failed();
    assert!(o.stderr.contains("--ignorefile missing.ignore"), "{}", o.describe());
    b.assert_clean();
}

#[test]
fn quiet_prints_only_the_image_id_and_help_lists_the_flags() {
    let b = Bt::new("ci-quiet");
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo noisy-step-output\n")]);
    let iid = b.path("iid");
    let o = b.bb(&["build", "-q", "--iidfile", iid.to_str().unwrap(), ctx.to_str().unwrap()]);
    o.ok();
    assert_eq!(o.stdout, format!("{}\n", read(&iid)), "{}", o.describe());
    assert_eq!(o.stderr, "", "{}", o.describe());
    // A failing quiet build still says why, step output included.
    let bad = b.context("bad", &[("Dockerfile", "FROM busybox\nRUN echo why-it-failed; exit 7\n")]);
    let o = b.bb(&["build", "-q", bad.to_str().unwrap()]);
    o.failed();
    assert!(o.stdout.is_empty() && o.stderr.contains("why-it-failed") && o.stderr.contains("exit code 7"), "{}", o.describe());

    let h = b.bb(&["build", "--help"]);
    h.ok();
    for flag in [
        "--label",
        "--annotation",
        "--add-host",
        "--shm-size",
        "--ulimit",
        "--cgroup-parent",
        "--rm ",
        "--force-rm",
        "--pull",
        "--metadata-file",
        "--provenance",
        "--sbom",
        "--ignorefile",
        "--platform",
        "-q, --quiet",
    ] {
        assert_eq!(h.stdout.lines().filter(|l| l.contains(flag)).count(), 1, "{flag}:\n{}", h.stdout);
    }
    b.assert_clean();
}

#[test]
fn pull_looks_the_base_up_in_its_registry_even_when_stored() {
    use berth_integration::registry_support::{Registry, RegistryConfig};
    let b = Bt::new("ci-pull");
    let mut reg = Registry::start(&b.path("registry"), &RegistryConfig::default());
    let base = format!("{}/base:1", reg.host);
    b.bb(&["push", "busybox", &base]).ok();
    let v2 = b.context("v2", &[("Dockerfile", "FROM busybox\nRUN echo v2 > /version\n")]);
    b.build(&v2, &["-t", "v2"]).ok();
    let ctx = b.context("ctx", &[("Dockerfile", &format!("FROM {base}\nRUN if [ -f /version ]; then cat /version; else echo v1; fi > /seen\n"))]);
    let seen = |flags: &[&str], out: &str| -> String {
        let dest = b.path(out);
        let o = format!("type=local,dest={}", dest.display());
        let mut f = flags.to_vec();
        f.extend_from_slice(&["-o", &o]);
        b.build(&ctx, &f).ok();
        read(&dest.join("seen"))
    };
    assert_eq!(seen(&[], "out1"), "v1\n");
    // The tag moves in the registry; the store still has the old image under the name.
    b.bb(&["push", "v2", &base]).ok();
    assert_eq!(seen(&["--no-cache"], "out2"), "v1\n");
    assert_eq!(seen(&["--pull"], "out3"), "v2\n");
    // --pull asks the registry: without it, the build fails, naming the base.
    reg.stop();
    let o = b.build(&ctx, &["--pull"]);
    o.failed();
    assert!(o.stderr.contains("--pull") && o.stderr.contains(&base), "{}", o.describe());
    b.assert_clean();
}

#[test]
fn a_base_whose_index_lacks_the_hosts_platform_is_refused_naming_both() {
    use berth_build::registry::{self, AuthConfig, Client, ClientOptions, PushOptions, Reference};
    use berth_build::store::Store;
    use berth_integration::registry_support::{Registry, RegistryConfig};
    use berth_spec::image::{Manifest, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST};
    let b = Bt::new("ci-index-platform");
    let reg = Registry::start(&b.path("registry"), &RegistryConfig::default());
    let (host, foreign) = host_and_foreign();
    let (os, arch) = foreign.split_once('/').unwrap();
    // An index with one foreign manifest (busybox's layers, a config saying so).
    let store = Store::open(&b.store).unwrap();
    let bb = store.inspect("busybox").unwrap();
    let mut cfg: Value = serde_json::from_slice(&store.read_blob(&bb.manifest.config.digest).unwrap()).unwrap();
    cfg["architecture"] = arch.into();
    let cdesc = store.put_blob_bytes(MEDIA_TYPE_OCI_CONFIG, &serde_json::to_vec(&cfg).unwrap()).unwrap();
    let m = store.put_manifest(&Manifest::new(cdesc, bb.manifest.layers.clone())).unwrap();
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [
        {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": m.digest.as_str(), "size": m.size, "platform": {"architecture": arch, "os": os}}]}))
    .unwrap();
    let client = Client::new(ClientOptions { auth: AuthConfig::none(), ..ClientOptions::default() }).unwrap();
    let name = format!("{}/foreign-only:1", reg.host);
    registry::push(&client, &Reference::parse(&name).unwrap(), &store, &index, MEDIA_TYPE_OCI_INDEX, &PushOptions::default()).unwrap();
    drop(store);

    let ctx = b.context("ctx", &[("Dockerfile", &format!("FROM busybox AS first\nRUN echo ran > /ran\nFROM {name}\nCOPY --from=first /ran /ran\n"))]);
    let o = b.build(&ctx, &["--platform", host]);
    o.failed();
    assert!(
        o.stderr.contains("Dockerfile:3") && o.stderr.contains(&name) && o.stderr.contains(&format!("no image for platform {host} (available: {foreign})")),
        "{}",
        o.describe()
    );
    assert!(!step_started(&o, "RUN echo ran"), "a step ran:\n{}", o.describe());
    b.assert_clean();
}

#[test]
fn a_local_cache_dir_makes_a_fresh_stores_build_all_hits_with_the_same_digest() {
    let one = with_base("ci-local-cache-1");
    let two = with_base("ci-local-cache-2");
    let cache = one.path("ci-cache");
    let ctx1 = one.context("ctx", &[("Dockerfile", CI_APP), ("app.txt", "hello\n")]);
    let ctx2 = two.context("ctx", &[("Dockerfile", CI_APP), ("app.txt", "hello\n")]);
    let (a, o) = build_id(&one, &ctx1, &["--cache-to", &format!("type=local,dest={},mode=max", cache.display())], &[]);
    assert!(o.stderr.contains("exported 2 cache record(s)"), "{}", o.describe());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Another machine's empty cache: a warning, the build runs.
    let (_, o) = build_id(&two, &ctx2, &["--cache-from", &format!("type=local,src={}", two.path("nothing-yet").display())], &[]);
    assert!(o.stderr.contains("[warning] no cache in"), "{}", o.describe());
    let fresh = with_base("ci-local-cache-3");
    let ctx3 = fresh.context("ctx", &[("Dockerfile", CI_APP), ("app.txt", "hello\n")]);
    let (c, o) = build_id(&fresh, &ctx3, &["--cache-from", &format!("type=local,src={}", cache.display())], &[]);
    assert!(o.stderr.contains("imported 2 cache record(s)"), "{}", o.describe());
    assert!(o.step_was_cached("COPY app.txt") && o.step_was_cached("RUN echo built"), "{}", o.describe());
    // The cache carries the steps' times too: the very same image, without an epoch.
    assert_eq!(a, c, "{}", o.describe());
    let o = fresh.build(&ctx3, &["--cache-to", "type=local"]);
    o.failed();
    assert!(o.stderr.contains("type=local,dest=DIR"), "{}", o.describe());
    one.assert_clean();
    two.assert_clean();
    fresh.assert_clean();
}

#[test]
fn ssh_agent_sockets_reach_run_mounts_and_not_the_image() {
    let b = Bt::new("ci-ssh");
    // A stand-in agent: a listening socket (the RUN only checks it is there).
    let sock = b.path("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&sock).expect("bind agent socket");
    let df = "FROM busybox\n\
        RUN --mount=type=ssh [ -S \"$SSH_AUTH_SOCK\" ] && echo \"$SSH_AUTH_SOCK\" > /default.txt\n\
        RUN --mount=type=ssh,id=deploy,target=/tmp/agent [ -S /tmp/agent ] && echo deploy > /deploy.txt\n\
        RUN --mount=type=ssh,id=absent echo optional-by-default > /absent.txt\n";
    let ctx = b.context("ctx", &[("Dockerfile", df)]);
    let out = b.path("out");
    let s = sock.to_str().unwrap();
    let o = b.bb_env(
        &[
            "build",
            "--progress",
            "plain",
            "--ssh",
            "default",
            "--ssh",
            &format!("deploy={s}"),
            "-o",
            &format!("type=local,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
        &[("SSH_AUTH_SOCK", s)],
    );
    o.ok();
    assert_eq!(read(&out.join("default.txt")), "/run/buildkit/ssh_agent.0\n");
    assert_eq!(read(&out.join("deploy.txt")), "deploy\n");
    assert_eq!(read(&out.join("absent.txt")), "optional-by-default\n");
    assert!(!out.join("run/buildkit/ssh_agent.0").exists() && !out.join("tmp/agent").exists(), "the socket's mount point is in the image");

    let req = b.context("req", &[("Dockerfile", "FROM busybox\nRUN --mount=type=ssh,id=absent,required true\n")]);
    let o = b.build(&req, &[]);
    o.failed();
    assert!(o.stderr.contains("no ssh agent \"absent\" forwarded"), "{}", o.describe());
    b.write(&b.path("id_ed25519"), "not a socket");
    let o = b.build(&req, &["--ssh", "default=id_ed25519"]);
    o.failed();
    assert!(o.stderr.contains("--ssh default") && o.stderr.contains("not a socket"), "{}", o.describe());
    b.assert_clean();
}

#[test]
fn build_contexts_replace_stages_and_images_and_give_copy_a_directory() {
    let b = Bt::new("ci-build-context");
    let docs = b.context("docs", &[("readme.txt", "read me\n")]);
    let df = "FROM busybox AS base\nRUN echo from-stage > /which\nFROM base\nCOPY --from=docs / /docs/\nRUN --mount=type=bind,from=docs,target=/d cat /d/readme.txt > /mounted.txt\n";
    let ctx = b.context("ctx", &[("Dockerfile", df)]);
    let build = |out: &str| -> Out {
        let o = format!("type=local,dest={}", b.path(out).display());
        let d = format!("docs={}", docs.display());
        let o = b.build(&ctx, &["--build-context", &d, "--build-context", "base=docker-image://busybox", "-o", &o]);
        o.ok();
        o
    };
    let o = build("out1");
    // The stage named base is replaced by the image: it is not built at all.
    assert!(!o.stderr.contains("echo from-stage"), "{}", o.describe());
    assert!(!b.path("out1/which").exists());
    assert_eq!(read(&b.path("out1/docs/readme.txt")), "read me\n");
    assert_eq!(read(&b.path("out1/mounted.txt")), "read me\n");
    // The directory's content is in the cache key.
    let o = build("out2");
    assert!(o.step_was_cached("COPY --from=docs"), "{}", o.describe());
    b.write(&docs.join("readme.txt"), "changed\n");
    let o = build("out3");
    assert!(!o.step_was_cached("COPY --from=docs") && !o.step_was_cached("RUN cat /d/readme.txt"), "{}", o.describe());
    assert_eq!(read(&b.path("out3/mounted.txt")), "changed\n");

    let d = format!("docs={}", docs.display());
    for (flags, says) in [
        (vec!["--build-context", "src=https://example.invalid/x.tar"], "only docker-image://REF and local directories"),
        (vec!["--build-context", "src=no-such-dir"], "no-such-dir is not a directory"),
        (vec!["--build-context", "base"], "--build-context \"base\""),
    ] {
        let o = b.build(&ctx, &flags);
        o.failed();
        assert!(o.stderr.contains(says), "{}", o.describe());
    }
    let from_dir = b.context("fromdir", &[("Dockerfile", "FROM docs\n")]);
    let o = b.build(&from_dir, &["--build-context", &d]);
    o.failed();
    assert!(o.stderr.contains("Dockerfile:1") && o.stderr.contains("cannot be a base image"), "{}", o.describe());
    b.assert_clean();
}
