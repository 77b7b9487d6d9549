//! End-to-end tests of `berth-build` in CI pipelines (issue 16): reproducible digests
//! (unchanged rebuilds, SOURCE_DATE_EPOCH), `--platform`, and the docker/buildx build
//! flags. Same needs as tests/builder.rs: root, busybox-static, the built binaries.

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
    let base_one = one.inspect("base")["Id"].clone();
    assert_eq!(base_one, two.inspect("base")["Id"], "the two imports of busybox differ");
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
    assert!(!o.stderr.contains("RUN echo ran"), "a step ran:\n{}", o.describe());
    let o = b.build(&ctx, &["--platform", &format!("{host},{foreign}")]);
    o.failed();
    assert!(o.stderr.contains("multi-platform"), "{}", o.describe());

    let ctx =
        b.context("ctx2", &[("Dockerfile", &format!("FROM busybox AS a\nRUN echo ran > /ran\nFROM --platform={foreign} busybox\nCOPY --from=a /ran /\n"))]);
    let o = b.build(&ctx, &["--no-cache"]);
    o.failed();
    assert!(o.stderr.contains(&format!("Dockerfile:3: FROM --platform {foreign}")), "{}", o.describe());
    assert!(!o.stderr.contains("RUN echo ran"), "a step ran:\n{}", o.describe());
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
    b.build(&ctx, &["-t", "foreign:1", "-o", &format!("type=oci,dest={}", layout.display())]).ok();
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
        assert!(!o.stderr.contains("RUN echo ran"), "a step ran:\n{}", o.describe());
    }
    // The same base for the host's platform builds.
    let ok = b.context("ctx3", &[("Dockerfile", &df.replace("foreign:arm", "foreign:1"))]);
    b.build(&ok, &["--platform", host]).ok();
    b.assert_clean();
}
