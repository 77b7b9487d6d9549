//! End-to-end tests of `berth-build`: Dockerfiles built on a busybox base imported with
//! `berth-build import`, their outputs read by the peers (skopeo, umoci + runc, podman)
//! and run by berth; the cache; errors and what a failure leaves behind (nothing).
//!
//! Needs root, busybox-static, the debug or release builds of berth, berth-shim and
//! berth-build (`cargo build -p berth -p berth-shim -p berth-build`), and for the peer
//! checks skopeo, umoci, runc and podman (each check is skipped, saying so, when its tool
//! is missing).

use berth_integration::builder_support::{serve, sha256_hex, Bt, BuildOutput, Out};
use berth_integration::{Opts, Value};
use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"].iter().any(|d| Path::new(d).join(tool).exists())
}

/// `sh -c SCRIPT` in `dir`.
fn sh(dir: &Path, script: &str) -> Out {
    berth_integration::builder_support::run_cmd(Command::new("sh").arg("-c").arg(script).current_dir(dir), dir)
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).expect("json")
}

const APP: &str = r#"FROM busybox
LABEL org.example.app=demo
ENV GREETING=hello APP_DIR=/app
ARG FLAVOR=plain
RUN mkdir -p $APP_DIR && echo "$GREETING from a $FLAVOR build" > $APP_DIR/built.txt
COPY greet.sh $APP_DIR/
WORKDIR $APP_DIR
EXPOSE 8080
USER test
ENTRYPOINT ["/bin/sh", "/app/greet.sh"]
CMD ["world"]
"#;

const GREET: &str = "cat /app/built.txt; echo \"args: $*\"; id -u; pwd\n";

#[test]
fn builds_and_every_output_runs() {
    let b = Bt::new("bld-outputs");
    let ctx = b.context("ctx", &[("Dockerfile", APP), ("greet.sh", GREET)]);
    let oci = b.path("oci");
    let bundle = b.path("bundle");
    let out = b.build(
        &ctx,
        &[
            "-t",
            "demo/app:1.0",
            "--build-arg",
            "FLAVOR=custom",
            "--output",
            &format!("type=oci,dest={},tar=false", oci.display()),
            "--output",
            &format!("type=bundle,dest={}", bundle.display()),
            "--output",
            &format!("type=docker-archive,dest={}", b.path("docker.tar").display()),
            "--output",
            &format!("type=oci-archive,dest={}", b.path("oci.tar").display()),
            "--output",
            &format!("type=local,dest={}", b.path("local").display()),
        ],
    );
    out.ok();
    assert!(out.stderr.contains("#2 [2/4] RUN mkdir -p $APP_DIR"), "{}", out.describe());
    b.assert_clean();

    // The bundle runs with berth.
    let id = b.t.id("bundle");
    let r = b.t.rt.cmd_opts(&["run", "--bundle", bundle.to_str().unwrap(), &id], &Opts::default());
    r.ok();
    assert_eq!(r.stdout, "hello from a custom build\nargs: world\n1000\n/app\n", "{}", r.describe());

    // The store knows it.
    let imgs = b.bb(&["images"]);
    imgs.ok();
    assert!(imgs.stdout.contains("demo/app") && imgs.stdout.contains("1.0"), "{}", imgs.describe());
    let v = b.inspect("demo/app:1.0");
    let cfg = &v["Config"]["config"];
    assert_eq!(cfg["Env"], serde_json::json!(["GREETING=hello", "APP_DIR=/app"]));
    assert_eq!(cfg["User"], "test");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/sh", "/app/greet.sh"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["world"]));
    assert_eq!(cfg["Labels"]["org.example.app"], "demo");
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some());
    let history = v["Config"]["history"].as_array().unwrap();
    let layers = v["Manifest"]["layers"].as_array().unwrap();
    assert_eq!(history.iter().filter(|h| h["empty_layer"] != true).count(), layers.len(), "{v}");
    assert!(history.iter().any(|h| h["created_by"] == "ENV GREETING=hello APP_DIR=/app" && h["empty_layer"] == true), "{v}");
    let h = b.bb(&["history", "demo/app:1.0"]);
    h.ok();
    assert!(h.stdout.contains("RUN /bin/sh -c mkdir"), "{}", h.describe());

    // skopeo finds the manifest in the OCI layout by the tag.
    if have("skopeo") {
        let o = sh(&b.t.dir, &format!("skopeo inspect oci:{}:1.0", oci.display()));
        o.ok();
        let v: Value = serde_json::from_str(&o.stdout).expect("skopeo json");
        assert_eq!(v["Layers"].as_array().unwrap().len(), layers.len());
        assert_eq!(v["Labels"]["org.example.app"], "demo");
        let o = sh(&b.t.dir, &format!("skopeo inspect oci-archive:{}", b.path("oci.tar").display()));
        o.ok();
        let o = sh(&b.t.dir, &format!("skopeo inspect docker-archive:{}", b.path("docker.tar").display()));
        o.ok();
        let v: Value = serde_json::from_str(&o.stdout).expect("skopeo json");
        assert_eq!(v["Layers"].as_array().unwrap().len(), layers.len(), "{}", o.describe());
    } else {
        eprintln!("skopeo is not installed: skipping its checks");
    }
    let m = sh(&b.t.dir, "tar -xOf docker.tar manifest.json");
    m.ok();
    assert!(m.stdout.contains("\"demo/app:1.0\""), "docker-archive RepoTags: {}", m.stdout);
    assert_eq!(std::fs::read_to_string(b.path("local/app/built.txt")).unwrap(), "hello from a custom build\n");
}

#[test]
fn oci_output_runs_under_umoci_runc_and_podman() {
    let b = Bt::new("bld-peers");
    let ctx = b.context("ctx", &[("Dockerfile", APP), ("greet.sh", GREET)]);
    let oci = b.path("oci");
    b.build(&ctx, &["-t", "peer:v1", "--output", &format!("type=oci,dest={},tar=false", oci.display())]).ok();
    if have("umoci") && have("runc") {
        let bundle = b.path("umoci-bundle");
        sh(&b.t.dir, &format!("umoci unpack --image {}:v1 {}", oci.display(), bundle.display())).ok();
        // umoci asks for a terminal; the test has none.
        let cfgp = bundle.join("config.json");
        let mut cfg = json_file(&cfgp);
        cfg["process"]["terminal"] = Value::Bool(false);
        std::fs::write(&cfgp, serde_json::to_vec(&cfg).unwrap()).unwrap();
        let root = b.path("runc-root");
        let id = format!("bld-peers-{}", std::process::id());
        let o = sh(&bundle, &format!("runc --root {} run {id} </dev/null", root.display()));
        let _ = sh(&bundle, &format!("runc --root {} delete --force {id}", root.display()));
        o.ok();
        assert_eq!(o.stdout, "hello from a plain build\nargs: world\n1000\n/app\n", "{}", o.describe());
    } else {
        eprintln!("umoci or runc is not installed: skipping");
    }
    if have("podman") && have("runc") {
        let pm = b.t.mkdir("podman");
        std::fs::write(
            pm.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        let d = pm.display();
        let o = sh(
            &pm,
            &format!(
                "CONTAINERS_CONF={d}/containers.conf podman --root {d}/root --runroot {d}/runroot --tmpdir {d}/tmp --storage-driver vfs \
                 --runtime /usr/sbin/runc run --rm --network none oci:{}:v1 podman",
                oci.display()
            ),
        );
        let _ = sh(
            &pm,
            &format!("CONTAINERS_CONF={d}/containers.conf podman --root {d}/root --runroot {d}/runroot --tmpdir {d}/tmp --storage-driver vfs system reset -f"),
        );
        o.ok();
        assert!(o.stdout.contains("hello from a plain build\nargs: podman\n1000\n/app\n"), "{}", o.describe());
    } else {
        eprintln!("podman or runc is not installed: skipping");
    }
    b.assert_clean();
}

/// A RUN that appends to a file in a cache mount (a host dir in the store) shows which
/// steps ran.
const COUNTED: &str = r#"FROM busybox
RUN --mount=type=cache,id=log,target=/log echo one >> /log/runs
COPY a.txt /a.txt
RUN --mount=type=cache,id=log,target=/log echo two >> /log/runs
COPY b.txt /b.txt
RUN --mount=type=cache,id=log,target=/log echo three >> /log/runs
"#;

#[test]
fn cache_hits_run_nothing_and_a_changed_source_reruns_what_follows() {
    let b = Bt::new("bld-cache");
    let ctx = b.context("ctx", &[("Dockerfile", COUNTED), ("a.txt", "a1"), ("b.txt", "b1")]);
    let log = b.store.join("cache-mounts/log/runs");
    let runs = || std::fs::read_to_string(&log).unwrap_or_default();
    let first = b.build(&ctx, &["-t", "c:1"]);
    first.ok();
    assert_eq!(runs(), "one\ntwo\nthree\n");
    assert_eq!(first.cached_steps(), 0, "{}", first.describe());

    let again = b.build(&ctx, &["-t", "c:2"]);
    again.ok();
    assert_eq!(runs(), "one\ntwo\nthree\n", "a cache hit ran a step\n{}", again.describe());
    assert_eq!(again.cached_steps(), 5, "{}", again.describe());
    assert_eq!(b.inspect("c:1")["Manifest"]["layers"], b.inspect("c:2")["Manifest"]["layers"]);

    // Touching a file (same content) changes nothing.
    sh(&ctx, "touch -d '2001-01-01' a.txt").ok();
    b.build(&ctx, &[]).ok();
    assert_eq!(runs(), "one\ntwo\nthree\n");

    b.write(&ctx.join("b.txt"), "b2");
    let o = b.build(&ctx, &[]);
    o.ok();
    assert_eq!(runs(), "one\ntwo\nthree\nthree\n", "{}", o.describe());
    assert!(o.step_was_cached("COPY a.txt") && !o.step_was_cached("COPY b.txt"), "{}", o.describe());

    b.write(&ctx.join("a.txt"), "a2");
    b.build(&ctx, &[]).ok();
    assert_eq!(runs(), "one\ntwo\nthree\nthree\ntwo\nthree\n");

    let o = b.build(&ctx, &["--no-cache"]);
    o.ok();
    assert_eq!(o.cached_steps(), 0);
    assert_eq!(runs().lines().count(), 9);
    b.assert_clean();
}

#[test]
fn multi_stage_builds_only_the_needed_stages() {
    let b = Bt::new("bld-stages");
    let df = r#"FROM busybox AS base
RUN echo base > /base.txt

FROM base AS broken
RUN echo this stage must not be built; exit 9

FROM busybox AS builder
ARG MSG=compiled
RUN mkdir /out && echo "$MSG" > /out/bin.txt && echo secret > /out/not-copied

FROM base
COPY --from=builder /out/bin.txt /usr/bin.txt
COPY --from=0 /base.txt /from-index.txt
COPY --from=busybox /etc/passwd /passwd-from-image
RUN cat /base.txt /usr/bin.txt /from-index.txt && test ! -e /out
"#;
    let ctx = b.context("ctx", &[("Dockerfile", df)]);
    let o = b.build(&ctx, &["-t", "ms:1", "--output", &format!("type=local,dest={}", b.path("rootfs").display())]);
    o.ok();
    assert!(!o.stderr.contains("must not be built"), "{}", o.describe());
    assert!(o.stderr.contains("base\ncompiled\nbase") || o.stderr.contains(" compiled"), "{}", o.describe());
    assert_eq!(std::fs::read_to_string(b.path("rootfs/usr/bin.txt")).unwrap(), "compiled\n");
    assert!(!b.path("rootfs/out").exists());
    assert!(std::fs::read_to_string(b.path("rootfs/passwd-from-image")).unwrap().contains("root:x:0:0"));

    // --target stops at a stage; the broken one is still never built.
    let o = b.build(&ctx, &["--target", "builder", "-t", "ms:builder"]);
    o.ok();
    assert!(!o.stderr.contains("must not be built"));
    let v = b.inspect("ms:builder");
    assert_eq!(v["Manifest"]["layers"].as_array().unwrap().len(), 2);
    let o = b.build(&ctx, &["--target", "broken"]);
    o.failed().stderr_has("Dockerfile:5: RUN failed: exit code 9");
    b.build(&ctx, &["--target", "nosuch"]).failed().stderr_has("nosuch");
    b.assert_clean();
}

#[test]
fn failures_at_a_line_show_the_dockerfile_excerpt_around_it() {
    let b = Bt::new("bld-excerpt");
    // A failing step: the step's line marked, two lines before it and one after.
    let ctx = b.context("run", &[("Dockerfile", "FROM busybox\nRUN true\nRUN false\nCOPY a b\nCMD x\n")]);
    b.build(&ctx, &[])
        .failed()
        .stderr_has("Dockerfile:3\n--------------------\n   1 |     FROM busybox\n   2 |     RUN true\n   3 | >>> RUN false\n   4 |     COPY a b\n--------------------\n")
        .stderr_has("Dockerfile:3: RUN failed: exit code 1");
    b.assert_clean();
    // An instruction over several lines has all of them marked.
    let ctx = b.context("multi", &[("Dockerfile", "FROM busybox\nRUN true \\\n  && false\nCMD x\n")]);
    b.build(&ctx, &[]).failed().stderr_has(
        "Dockerfile:2\n--------------------\n   1 |     FROM busybox\n   2 | >>> RUN true \\\n   3 | >>>   && false\n   4 |     CMD x\n--------------------\n",
    );
    b.assert_clean();
    // A parse error: the same excerpt, before anything runs.
    let ctx = b.context("unknown", &[("Dockerfile", "FROM busybox\nRUN true\nFOOBAR x\n")]);
    b.build(&ctx, &[])
        .failed()
        .stderr_has("Dockerfile:3\n--------------------\n   1 |     FROM busybox\n   2 |     RUN true\n   3 | >>> FOOBAR x\n--------------------\n")
        .stderr_has("Dockerfile:3: unknown instruction: FOOBAR");
    b.assert_clean();
}

#[test]
fn errors_name_the_line_and_leave_nothing_behind() {
    let b = Bt::new("bld-errors");
    let cases: &[(&str, &str)] = &[
        ("FROM busybox\nRUN true\nFOOBAR x\n", "Dockerfile:3: unknown instruction: FOOBAR"),
        ("FROM busybox\nCOPY --chmod=999 a /\n", "Dockerfile:2:"),
        ("FROM busybox\nRUN echo out; echo err >&2; exit 3\n", "RUN failed: exit code 3"),
        ("FROM busybox\nCOPY missing.txt /\n", "\"missing.txt\" not found"),
        ("FROM busybox\nCOPY ../outside.txt /\n", "forbidden path outside the build context"),
        ("FROM busybox\nCOPY link-out /\n", "outside the build context"),
        ("FROM nosuchimage\nRUN true\n", "nosuchimage"),
        ("FROM busybox\nRUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n", "secret nope not found"),
        ("FROM busybox\nUSER ghost\nRUN true\n", "unable to find user ghost"),
        ("FROM busybox\nCOPY --from=busybox /../x /y\n", "Dockerfile:2: forbidden path /../x: it leaves the image busybox"),
        ("FROM busybox\nCOPY --from=busybox /nope /y\n", "Dockerfile:2: \"/nope\" not found in the image busybox"),
    ];
    b.write(&b.path("outside.txt"), "x");
    for (i, (df, want)) in cases.iter().enumerate() {
        let ctx = b.context(&format!("ctx{i}"), &[("Dockerfile", df)]);
        let _ = std::os::unix::fs::symlink("../outside.txt", ctx.join("link-out"));
        let o = b.build(&ctx, &[]);
        o.failed().stderr_has(want);
        if want.contains("exit code 3") {
            assert!(o.stderr.contains(" out\n") && o.stderr.contains(" err\n"), "the output is shown\n{}", o.describe());
            assert!(o.stderr.contains("Dockerfile:2:"), "{}", o.describe());
        }
        b.assert_clean();
    }
    // A variable doubled line after line is stopped at 1 MiB, naming the line, before it
    // eats the machine's memory (line 23 would make it 2 MiB).
    let doubling = format!("FROM busybox\nENV A=x\n{}", "ENV A=$A$A\n".repeat(40));
    let ctx = b.context("doubling", &[("Dockerfile", &doubling)]);
    b.build(&ctx, &[]).failed().stderr_has("Dockerfile:23:").stderr_has("more than the 1048576 allowed");
    b.assert_clean();
    // The store still works.
    b.bb(&["images"]).ok();
    let ctx = b.context("good", &[("Dockerfile", "FROM busybox\nRUN echo fine > /f\n")]);
    b.build(&ctx, &["-t", "good"]).ok();
    b.assert_clean();
}

#[test]
fn run_mounts_and_network() {
    let b = Bt::new("bld-mounts");
    let df = r#"FROM busybox AS tools
RUN mkdir /tools && echo tool-data > /tools/t.txt

FROM busybox
RUN --mount=type=cache,target=/var/cache/x,id=c1 echo cached >> /var/cache/x/f && wc -l < /var/cache/x/f > /cache-count
RUN --mount=type=bind,source=data,target=/data cat /data/in.txt > /bound && ! touch /data/new 2>/dev/null
RUN --mount=type=bind,source=data,target=/data,rw echo scribble > /data/scratch && cat /data/scratch
RUN --mount=type=bind,from=tools,source=/tools,target=/t cp /t/t.txt /from-stage
RUN --mount=type=tmpfs,target=/scratch grep -q " /scratch tmpfs" /proc/mounts && echo tmp > /scratch/x
RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /secret-len && test "$(tr a-z A-Z < /run/secrets/token)" = S3CRET
RUN --mount=type=secret,id=token,env=TOKEN test "$(echo $TOKEN | tr a-z A-Z)" = S3CRET
RUN --network=none sh -c 'grep -c : /proc/net/dev > /net-none'
RUN sh -c 'grep -c : /proc/net/dev > /net-host'
"#;
    let ctx = b.context("ctx", &[("Dockerfile", df), ("data/in.txt", "from context\n")]);
    b.write(&b.path("token"), "s3cret");
    let secret = format!("id=token,src={}", b.path("token").display());
    let o = b.build(&ctx, &["--secret", &secret, "--output", &format!("type=local,dest={}", b.path("out").display())]);
    o.ok();
    let rd = |p: &str| std::fs::read_to_string(b.path("out").join(p)).unwrap_or_else(|e| panic!("{p}: {e}\n{}", o.describe()));
    assert_eq!(rd("cache-count").trim(), "1");
    assert_eq!(rd("bound"), "from context\n");
    assert!(!ctx.join("data/scratch").exists(), "a rw bind mount wrote into the context");
    assert_eq!(rd("from-stage"), "tool-data\n");
    assert_eq!(rd("secret-len").trim(), "6");
    // Mount points made for the run are not in the image.
    for p in ["data", "t", "scratch", "run/secrets", "var/cache/x"] {
        assert!(!b.path("out").join(p).exists(), "/{p} left in the image");
    }
    assert_eq!(rd("net-none").trim(), "1", "only lo with --network=none");
    let host_ifaces = std::fs::read_to_string("/proc/net/dev").unwrap().lines().filter(|l| l.contains(':')).count();
    assert_eq!(rd("net-host").trim(), host_ifaces.to_string(), "host network by default");
    // The cache mount persists in the store; the secret never reaches a layer or config
    // (the Dockerfile only names it in upper case).
    assert_eq!(std::fs::read_to_string(b.store.join("cache-mounts/c1/f")).unwrap(), "cached\n");
    let grep = sh(&b.store, "grep -r -l s3cret blobs layers || true");
    assert!(grep.stdout.trim().is_empty(), "the secret is in the store: {}", grep.stdout);

    // --network none for the whole build.
    let ctx2 = b.context("ctx2", &[("Dockerfile", "FROM busybox\nRUN grep -c : /proc/net/dev > /n\n")]);
    b.build(&ctx2, &["--network", "none", "--output", &format!("type=local,dest={}", b.path("out2").display())]).ok();
    assert_eq!(std::fs::read_to_string(b.path("out2/n")).unwrap().trim(), "1");
    b.assert_clean();
}

#[test]
fn copy_and_add_features() {
    use std::os::unix::fs::MetadataExt;
    let b = Bt::new("bld-copy");
    let df = r#"FROM busybox AS src
RUN mkdir -p /gen && echo generated > /gen/g.txt

FROM busybox
COPY --chown=test:extra --chmod=640 files/one.txt /owned/
COPY --chmod=u=rwx,go=rx files/one.txt /sym-mode
COPY --chown=1234 files/dir/ /numeric/
COPY files/*.md /docs/
COPY --exclude=*.log files/dir /excl/
COPY --parents files/dir/./deep/x.txt /parents/
COPY --link files/one.txt /linked/one.txt
COPY --from=src /gen/g.txt /gen.txt
COPY <<EOF /etc/inline.conf
value=$HOME_VAL
EOF
ADD archive.tar.gz /unpacked/
ADD --chown=test plain.tar /plain-unpacked/
RUN <<EOF
#!/bin/sh
echo "script ran as $(id -u)" > /script.out
EOF
RUN ln -s /etc /evil-link
COPY files/one.txt /evil-link/through-link.txt
"#;
    let ctx = b.context(
        "ctx",
        &[
            ("Dockerfile", df),
            ("files/one.txt", "one\n"),
            ("files/a.md", "A"),
            ("files/b.md", "B"),
            ("files/dir/keep.txt", "keep"),
            ("files/dir/skip.log", "log"),
            ("files/dir/deep/x.txt", "deep"),
            ("tar-src/inner/t.txt", "in tar\n"),
        ],
    );
    sh(&ctx, "tar -czf archive.tar.gz -C tar-src . && tar -cf plain.tar -C tar-src inner").ok();
    let o = b.build(&ctx, &["--output", &format!("type=local,dest={}", b.path("out").display())]);
    o.ok();
    let out = b.path("out");
    let md = |p: &str| std::fs::symlink_metadata(out.join(p)).unwrap_or_else(|e| panic!("{p}: {e}\n{}", o.describe()));
    let m = md("owned/one.txt");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1001, 0o640));
    assert_eq!(md("owned").uid(), 1000, "created parents take the --chown");
    assert_eq!(md("sym-mode").mode() & 0o7777, 0o755);
    assert_eq!((md("numeric/keep.txt").uid(), md("numeric/keep.txt").gid()), (1234, 1234));
    assert!(out.join("docs/a.md").exists() && out.join("docs/b.md").exists());
    assert!(out.join("excl/keep.txt").exists() && !out.join("excl/skip.log").exists());
    assert_eq!(std::fs::read_to_string(out.join("parents/deep/x.txt")).unwrap(), "deep");
    assert_eq!(std::fs::read_to_string(out.join("linked/one.txt")).unwrap(), "one\n");
    assert_eq!(std::fs::read_to_string(out.join("gen.txt")).unwrap(), "generated\n");
    assert_eq!(std::fs::read_to_string(out.join("etc/inline.conf")).unwrap(), "value=\n");
    assert_eq!(std::fs::read_to_string(out.join("unpacked/inner/t.txt")).unwrap(), "in tar\n");
    assert_eq!(md("plain-unpacked/inner/t.txt").uid(), 1000);
    assert_eq!(std::fs::read_to_string(out.join("script.out")).unwrap(), "script ran as 0\n");
    // The symlink led inside the image's /etc, not the host's.
    assert_eq!(std::fs::read_to_string(out.join("etc/through-link.txt")).unwrap(), "one\n");
    assert!(!Path::new("/etc/through-link.txt").exists());
    b.assert_clean();
}

#[test]
fn add_urls_checksums_and_hostile_archives() {
    let b = Bt::new("bld-add");
    let body = b"downloaded content\n".to_vec();
    let sum = sha256_hex(&body);
    let port = serve(body.clone(), 3);
    let df =
        format!("FROM busybox\nADD --checksum=sha256:{sum} http://127.0.0.1:{port}/files/dl.txt /web/\nADD http://127.0.0.1:{port}/other.txt /web/named.txt\n");
    let ctx = b.context("ctx", &[("Dockerfile", &df)]);
    let o = b.build(&ctx, &["--output", &format!("type=local,dest={}", b.path("out").display())]);
    o.ok();
    assert_eq!(std::fs::read(b.path("out/web/dl.txt")).unwrap(), body);
    assert_eq!(std::fs::read(b.path("out/web/named.txt")).unwrap(), body);
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(b.path("out/web/dl.txt")).unwrap();
    assert_eq!((m.mode() & 0o777, m.mtime()), (0o600, 784_111_777), "mode 0600, mtime from Last-Modified");

    let bad = format!("FROM busybox\nADD --checksum=sha256:{} http://127.0.0.1:{port}/dl.txt /x\n", "0".repeat(64));
    let ctx = b.context("bad", &[("Dockerfile", &bad)]);
    b.build(&ctx, &[]).failed().stderr_has("digest mismatch");

    // A tar with a `..` entry is refused, nothing lands outside.
    let ctx = b.context("hostile", &[("Dockerfile", "FROM busybox\nADD evil.tar /x/\n")]);
    let py = "import tarfile,io\nt=tarfile.open('evil.tar','w')\nd=b'pwned'\ni=tarfile.TarInfo('../../escaped.txt'); i.size=len(d); t.addfile(i, io.BytesIO(d))\nt.close()\n";
    std::fs::write(ctx.join("mk.py"), py).unwrap();
    sh(&ctx, "python3 mk.py").ok();
    b.build(&ctx, &[]).failed().stderr_has("refused");
    assert!(!b.t.dir.join("escaped.txt").exists() && !ctx.join("escaped.txt").exists());
    b.assert_clean();
}

#[test]
fn reproducible_with_source_date_epoch() {
    let b = Bt::new("bld-repro");
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo same > /f && touch /g\nCOPY x /x\nENV A=1\n"), ("x", "x")]);
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    let a = b.bb_env(&["build", "--progress", "plain", "--no-cache", "-q", ctx.to_str().unwrap()], &epoch);
    a.ok();
    let c = b.bb_env(&["build", "--progress", "plain", "--no-cache", "-q", ctx.to_str().unwrap()], &epoch);
    c.ok();
    assert_eq!(a.stdout.trim(), c.stdout.trim(), "two --no-cache builds with SOURCE_DATE_EPOCH differ");
    let v = b.inspect(a.stdout.trim());
    assert_eq!(v["Config"]["created"], "2023-11-14T22:13:20Z");
    assert!(v["Config"]["history"].as_array().unwrap().iter().rev().take(3).all(|h| h["created"] == "2023-11-14T22:13:20Z"), "{v}");
    b.assert_clean();
}

#[test]
fn metadata_onbuild_and_zstd() {
    let b = Bt::new("bld-meta");
    let parent = r#"FROM busybox
MAINTAINER someone@example.com
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --retries=2 CMD true
VOLUME /data
ONBUILD RUN echo triggered > /onbuild.txt
CMD echo parent
"#;
    let ctx = b.context("parent", &[("Dockerfile", parent)]);
    b.build(&ctx, &["-t", "parent", "--compression", "zstd"]).ok();
    let v = b.inspect("parent");
    let c = &v["Config"];
    assert_eq!(c["author"], "someone@example.com");
    assert_eq!(c["config"]["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(c["config"]["Cmd"], serde_json::json!(["/bin/sh", "-ec", "echo parent"]));
    assert_eq!(c["config"]["StopSignal"], "SIGQUIT");
    assert_eq!(c["config"]["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert!(c["config"]["Volumes"].get("/data").is_some());
    assert_eq!(c["config"]["OnBuild"], serde_json::json!(["RUN echo triggered > /onbuild.txt"]));

    let ctx = b.context("child", &[("Dockerfile", "FROM parent\nRUN cat /onbuild.txt\n")]);
    let o = b.build(&ctx, &["-t", "child", "--compression", "zstd", "--output", &format!("type=local,dest={}", b.path("out").display())]);
    o.ok();
    assert!(o.stderr.contains("triggered"), "{}", o.describe());
    assert_eq!(std::fs::read_to_string(b.path("out/onbuild.txt")).unwrap(), "triggered\n");
    let v = b.inspect("child");
    assert!(v["Config"]["config"].get("OnBuild").is_none(), "triggers are not inherited: {v}");
    let layers = v["Manifest"]["layers"].as_array().unwrap();
    assert!(layers.iter().skip(1).all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"), "{v}");
    b.assert_clean();
}

#[test]
fn store_commands() {
    let b = Bt::new("bld-store");
    b.bb(&["tag", "busybox", "my/base:v2"]).ok();
    let imgs = b.bb(&["images"]);
    assert!(imgs.stdout.contains("my/base") && imgs.stdout.contains("v2"), "{}", imgs.describe());
    let ctx = b.context("ctx", &[("Dockerfile", "FROM my/base:v2\nRUN echo x > /x\n")]);
    b.build(&ctx, &["-t", "temp"]).ok();
    b.bb(&["rmi", "temp"]).ok();
    b.bb(&["rmi", "temp"]).failed();
    let p = b.bb(&["prune"]);
    p.ok();
    assert!(p.stdout.contains("Removed"), "{}", p.describe());
    // Still cached: the layer is kept by its cache entry.
    let o = b.build(&ctx, &[]);
    o.ok();
    assert_eq!(o.cached_steps(), 1, "{}", o.describe());
    b.bb(&["prune", "--cache"]).ok();
    let o = b.build(&ctx, &[]);
    o.ok();
    assert_eq!(o.cached_steps(), 0, "{}", o.describe());
    b.bb(&["inspect", "nosuch"]).failed();
    b.bb(&["bogus"]).failed();
    b.assert_clean();
}

#[test]
fn many_layers_fit_in_one_overlay_mount() {
    // 60 layers of store paths (~100 bytes each here) would not fit in the one page of
    // mount options; the short per-build links do.
    let b = Bt::new("bld-layers");
    let mut df = String::from("FROM busybox\n");
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..60 {
        df.push_str(&format!("COPY f{i} /layers/\n"));
        files.push((format!("f{i}"), format!("{i}\n")));
    }
    df.push_str("RUN cat /layers/* | wc -l > /count\n");
    files.push(("Dockerfile".into(), df));
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let ctx = b.context("ctx", &refs);
    let long = b.store.join("layers").join("0".repeat(64)).to_string_lossy().len();
    assert!(long * 61 > 4096, "the store path is too short for this test to mean anything");
    let o = b.build(&ctx, &["--output", &format!("type=local,dest={}", b.path("out").display())]);
    o.ok();
    assert_eq!(std::fs::read_to_string(b.path("out/count")).unwrap().trim(), "60");
    b.assert_clean();
}

#[test]
fn interrupted_build_cleans_up() {
    // Interrupted twice: as soon as the RUN step is announced (its container is usually
    // still being created), and once its command runs.
    for while_running in [false, true] {
        interrupt_a_run(while_running);
    }
}

fn interrupt_a_run(while_running: bool) {
    use std::time::{Duration, Instant};
    let b = Bt::new("bld-sigint");
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo started; sleep 60\n")]);
    let err = b.path("build.err");
    let mut cmd = Command::new(berth_integration::builder_support::builder_bin());
    cmd.arg("--store").arg(&b.store).args(["build", "--progress", "plain"]).arg(&ctx);
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::fs::File::create(&err).unwrap());
    let mut child = berth_integration::procs::spawn(&mut cmd).expect("spawn berth-build");
    let deadline = Instant::now() + Duration::from_secs(120);
    // Mid-create: the runtime has recorded the container (state.json, written first) but
    // the command has not printed yet. Running: the command's own output line.
    let creating = || {
        let dirs = |p: &std::path::Path| std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| e.path()).collect::<Vec<_>>();
        dirs(&b.store.join("tmp")).iter().flat_map(|d| dirs(&d.join("state"))).any(|c| c.join("state.json").exists())
    };
    let reached = |text: &str| {
        if while_running {
            text.lines().any(|l| l.trim_end().ends_with(" started") && !l.contains("RUN"))
        } else {
            creating() || text.lines().any(|l| l.trim_end().ends_with(" started") && !l.contains("RUN"))
        }
    };
    while !reached(&std::fs::read_to_string(&err).unwrap_or_default()) {
        assert!(Instant::now() < deadline, "the RUN did not start: {}", std::fs::read_to_string(&err).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(1));
    }
    berth_integration::procs::signal(child.id() as i32, 2); // SIGINT
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "berth-build did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    berth_integration::procs::untrack(child.id());
    assert_eq!(status.code(), Some(130), "{}", std::fs::read_to_string(&err).unwrap_or_default());
    std::thread::sleep(Duration::from_millis(500));
    b.assert_clean();
    // The store still works.
    let ctx = b.context("ok", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    b.build(&ctx, &[]).ok();
}
