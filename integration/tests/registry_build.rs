//! berth-build's registry commands end to end, against a real docker-registry started
//! by each test on 127.0.0.1 (integration/src/registry_support.rs): once plain, once
//! with htpasswd auth and a self-signed TLS certificate. What berth-build pushes is read
//! back by skopeo and run by podman; a second, empty store builds FROM it; a second
//! push sends no layer (the registry's access log counts the upload POSTs); the remote
//! cache makes every step a hit from an empty store; a wrong password, an unknown tag
//! and a registry that is down fail with the ref or host named and leave nothing in
//! the store. An index is pulled for `--platform` (or the host's), and found again in
//! the store by its digest; `load` reads oci- and docker-archives.
//!
//! Needs root, busybox-static, docker-registry, skopeo, podman, runc, openssl,
//! htpasswd, and target/release/{berth,berth-shim,berth-build}
//! (`cargo build --release --workspace`).
//!
//!     cargo test --release -p berth-integration --test registry_build

use berth_integration::builder_support::{builder_bin, run_cmd, Bt, BuildOutput, Out};
use berth_integration::registry_support::{need, Podman, Registry, RegistryConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `berth-build --store STORE ARGS` with `env`, in `dir`.
fn bb(dir: &Path, store: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(builder_bin());
    c.arg("--store").arg(store).args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    run_cmd(&mut c, dir)
}

/// `berth-build login ... --password-stdin HOST` with `password` on stdin.
fn login(dir: &Path, args: &[&str], password: &str) -> std::process::Output {
    let mut c = Command::new(builder_bin());
    c.current_dir(dir).arg("login").args(args).arg("--password-stdin").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = berth_integration::procs::spawn(&mut c).expect("run berth-build login");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write password");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for login");
    berth_integration::procs::untrack(pid);
    out
}

fn skopeo_inspect(reference: &str, extra: &[&str]) -> Value {
    need("skopeo");
    let o = berth_integration::procs::output(
        Command::new("skopeo").arg("inspect").args(extra).arg(format!("docker://{reference}")).env("HOME", std::env::temp_dir()),
    )
    .expect("run skopeo");
    assert!(o.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("skopeo inspect prints JSON")
}

/// The files a store holds (blobs, layers, names, cache entries), less its lock files
/// and empty directories: what a failed command must not have added.
fn store_files(store: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![store.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                if p.parent() == Some(&store.join("layers")) {
                    out.push(p.display().to_string());
                }
                stack.push(p);
            } else if !p.to_string_lossy().ends_with(".lock") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// The manifest digest of a name in the test's store.
fn image_id(bt: &Bt, name: &str) -> String {
    bt.inspect(name)["Digest"].as_str().expect("inspect has a Digest").to_string()
}

const APP: &str = "FROM {BASE}\nRUN echo built-by-berth > /hello\nCOPY msg /msg\nCMD [\"sh\", \"-c\", \"cat /hello /msg\"]\n";

fn app_context(bt: &Bt, name: &str, base: &str) -> PathBuf {
    bt.context(name, &[("Dockerfile", &APP.replace("{BASE}", base)), ("msg", "message-from-context\n")])
}

#[test]
fn plain_registry_push_inspect_run_build_from_it_and_reuse_its_cache() {
    let bt = Bt::new("regb-plain");
    let mut reg = Registry::start(&bt.path("registry"), &RegistryConfig::default());
    let h = reg.host.clone();
    let base = format!("{h}/base/busybox:1");
    let app = format!("{h}/app:1");
    let cache = format!("{h}/app:buildcache");

    // The imported busybox goes up; the pushed digest is printed.
    let o = bt.bb(&["push", "busybox", &base]);
    o.ok();
    let base_id = image_id(&bt, "busybox");
    assert_eq!(o.stdout.trim(), base_id, "{}", o.describe());

    // A build FROM the pushed base (not in the store under that name: resolved in the
    // registry, its blobs already here), pushed with --push, its cache exported.
    let ctx = app_context(&bt, "ctx", &base);
    let iid = bt.path("iid");
    // A fixed SOURCE_DATE_EPOCH: the cached build below must make the very same image.
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    let cache_to = format!("type=registry,ref={cache}");
    let o = bt.bb_env(
        &["build", "--progress", "plain", "-t", &app, "--push", "--cache-to", &cache_to, "--iidfile", iid.to_str().unwrap(), ctx.to_str().unwrap()],
        &epoch,
    );
    o.ok();
    let id = std::fs::read_to_string(&iid).expect("iidfile");
    o.stderr_has(&format!("pushed {app} {id}"));
    o.stderr_has(&format!("exported 2 cache record(s) to {cache}"));

    // skopeo reads it back: the same manifest digest, the base's layer plus two.
    let v = skopeo_inspect(&app, &["--tls-verify=false"]);
    assert_eq!(v["Digest"], id.as_str(), "{v}");
    assert_eq!(v["Layers"].as_array().map(|l| l.len()), Some(3), "{v}");
    assert_eq!(v["Os"], "linux", "{v}");
    let cfg = skopeo_inspect(&app, &["--tls-verify=false", "--config"]);
    assert_eq!(cfg["config"]["Cmd"][2], "cat /hello /msg", "{cfg}");

    // podman pulls it from the insecure registry and runs it.
    let pm = Podman::new(&bt.path("podman"));
    let out = pm.run(&["--tls-verify=false"], &app, &[]);
    assert_eq!(out, "built-by-berth\nmessage-from-context\n", "podman run {app}");

    // A second, empty store builds FROM it: pulled, its layers unpacked, RUN on top.
    let store2 = bt.path("store2");
    let ctx2 = bt.context("ctx2", &[("Dockerfile", &format!("FROM {app}\nRUN cat /hello /msg > /both\nCMD [\"cat\", \"/both\"]\n"))]);
    let o = bb(&bt.t.dir, &store2, &["build", "--progress", "plain", "-t", "derived:1", ctx2.to_str().unwrap()], &[]);
    o.ok();
    o.stderr_has(&format!("{h}/app:1: resolved to {id}"));
    let o = bb(&bt.t.dir, &store2, &["images", "--format", "json"], &[]);
    let names: Vec<String> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|i| format!("{}:{}", i["Repository"].as_str().unwrap(), i["Tag"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [app.clone(), "derived:1".to_string()], "the pulled base is tagged by its reference");
    let out = bb(
        &bt.t.dir,
        &store2,
        &["build", "--progress", "plain", "--output", &format!("type=local,dest={}", bt.path("flat").display()), ctx2.to_str().unwrap()],
        &[],
    );
    out.ok();
    assert_eq!(std::fs::read_to_string(bt.path("flat/both")).unwrap(), "built-by-berth\nmessage-from-context\n");

    // Pushing again sends no blob: every HEAD finds it (counted by the client) and the
    // registry sees no new upload session.
    let uploads = reg.requests("POST", "/blobs/uploads/");
    assert!(uploads >= 3, "the first pushes started uploads: {uploads}\n{}", reg.log());
    let o = bt.bb(&["push", &app]);
    o.ok();
    o.stderr_has("0 blob(s) uploaded, 4 already there, 0 mounted");
    assert_eq!(o.stdout.trim(), id);
    assert_eq!(reg.requests("POST", "/blobs/uploads/"), uploads, "a second push started an upload");
    // Into another repository of the registry: mounted, not uploaded.
    let o = bt.bb(&["push", &app, &format!("{h}/copy/app:1")]);
    o.ok();
    o.stderr_has("0 blob(s) uploaded, 0 already there, 4 mounted");

    // A fresh machine: an empty store and the registry cache. Every step is a hit and
    // the image is the same.
    let store3 = bt.path("store3");
    let iid3 = bt.path("iid3");
    let o = bb(
        &bt.t.dir,
        &store3,
        &["build", "--progress", "plain", "--cache-from", &format!("type=registry,ref={cache}"), "--iidfile", iid3.to_str().unwrap(), ctx.to_str().unwrap()],
        &epoch,
    );
    o.ok();
    o.stderr_has(&format!("imported 2 cache record(s) from {cache}"));
    assert!(o.step_was_cached("RUN echo built-by-berth"), "{}", o.describe());
    assert!(o.step_was_cached("COPY msg /msg"), "{}", o.describe());
    assert_eq!(o.cached_steps(), 2, "{}", o.describe());
    assert_eq!(std::fs::read_to_string(&iid3).unwrap(), id, "the cached build makes the same image");

    // An unknown tag: pull and FROM fail naming the ref; the empty store stays empty.
    let empty = bt.path("empty");
    let o = bb(&bt.t.dir, &empty, &["pull", &format!("{h}/app:nope")], &[]);
    o.failed();
    o.stderr_has(&format!("pull {h}/app:nope: manifest unknown (404)"));
    let ctx_bad = bt.context("ctx-bad", &[("Dockerfile", &format!("FROM busybox AS ok\nFROM {h}/app:nope\nRUN true\n"))]);
    let o = bb(&bt.t.dir, &empty, &["build", "--progress", "plain", ctx_bad.to_str().unwrap()], &[]);
    o.failed();
    o.stderr_has(&format!("Dockerfile:2: base image \"{h}/app:nope\" is not in the store"));
    o.stderr_has(&format!("pull {h}/app:nope: manifest unknown (404)"));
    assert_eq!(store_files(&empty), Vec::<String>::new(), "a failed pull left files in the store");

    // The registry down: the host is named, nothing is stored, the exit is non-zero.
    reg.stop();
    let o = bb(&bt.t.dir, &empty, &["pull", &app], &[]);
    o.failed();
    o.stderr_has(&format!("pull {app}: connect {h}: connection refused"));
    let o = bt.bb(&["push", &app]);
    o.failed();
    o.stderr_has(&format!("push {app}: connect {h}: connection refused"));
    let o = bb(&bt.t.dir, &empty, &["build", "--progress", "plain", ctx.to_str().unwrap()], &[]);
    o.failed();
    o.stderr_has(&format!("Dockerfile:1: base image \"{base}\" is not in the store"));
    o.stderr_has(&format!("connect {h}: connection refused"));
    assert_eq!(store_files(&empty), Vec::<String>::new(), "a failed build left files in the store");
    bt.assert_clean();
}

#[test]
fn htpasswd_tls_registry_with_login_and_docker_config() {
    let bt = Bt::new("regb-auth");
    let reg = Registry::start(&bt.path("registry"), &RegistryConfig { htpasswd: Some(("berth".into(), "s3cret".into())), tls: true, token: None });
    let h = reg.host.clone();
    let app = format!("{h}/secure/app:1");
    let authfile = bt.path("auth/auth.json");
    let af = authfile.to_str().unwrap();
    let ca = reg.ca.clone().unwrap();
    // No login file or docker config of the machine's is read.
    let home = bt.t.mkdir("home");
    let env: Vec<(&str, &str)> = vec![("HOME", home.to_str().unwrap()), ("BERTH_AUTH_FILE", af), ("DOCKER_CONFIG", home.to_str().unwrap())];

    // The certificate is not trusted: refused, the host named.
    let o = bt.bb_env(&["push", "--creds", "berth:s3cret", "busybox", &app], &env);
    o.failed();
    o.stderr_has(&format!("push {app}: tls {h}: "));
    // No credentials, then a wrong password: 401, the ref named.
    let o = bt.bb_env(&["push", "--tls-verify=false", "busybox", &app], &env);
    o.failed();
    o.stderr_has(&format!("push {app}: "));
    o.stderr_has(&format!("no credentials for {h} (berth-build login {h})"));
    let o = login(&bt.t.dir, &["--tls-verify=false", "--authfile", af, "-u", "berth", &h], "wrong");
    assert!(!o.status.success(), "login with a wrong password succeeded");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("login {h}: ")) && err.contains("(401)"), "{err}");
    assert!(!authfile.exists(), "a failed login wrote {af}");

    // login checks and stores the credentials; push and pull use them.
    let o = login(&bt.t.dir, &["--cert-file", ca.to_str().unwrap(), "--authfile", af, "-u", "berth", &h], "s3cret");
    assert!(o.status.success(), "login: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Login Succeeded");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&authfile).unwrap().permissions().mode() & 0o777, 0o600, "the login file is private");
    // Chunked upload: the 1.3 MB busybox layer goes up in 256 KiB PATCHes.
    let patches = reg.requests("PATCH", "/blobs/uploads/");
    let o = bt.bb_env(&["push", "--cert-file", ca.to_str().unwrap(), "--chunk-size", "262144", "busybox", &app], &env);
    o.ok();
    let id = image_id(&bt, "busybox");
    assert_eq!(o.stdout.trim(), id);
    assert!(reg.requests("PATCH", "/blobs/uploads/") - patches >= 5, "no chunked upload seen:\n{}", reg.log());
    let v = skopeo_inspect(&app, &["--tls-verify=false", "--creds", "berth:s3cret"]);
    assert_eq!(v["Digest"], id.as_str(), "{v}");
    let pm = Podman::new(&bt.path("podman"));
    let out = pm.run(&["--tls-verify=false", "--creds", "berth:s3cret"], &app, &["echo", "ran-from-the-tls-registry"]);
    assert_eq!(out.trim(), "ran-from-the-tls-registry");

    // An empty store builds FROM it with --tls-verify=false and the login file.
    let store2 = bt.path("store2");
    let ctx = bt.context("ctx", &[("Dockerfile", &format!("FROM {app}\nRUN echo on-top > /top\n"))]);
    let mut args = vec!["build", "--progress", "plain", "--tls-verify=false", "-t", "top:1", ctx.to_str().unwrap()];
    let o = bb(&bt.t.dir, &store2, &args, &env);
    o.ok();
    o.stderr_has(&format!("{app}: resolved to {id}"));

    // docker's config.json (auths, base64) is read too.
    let docker_home = bt.t.mkdir("docker");
    std::fs::write(
        docker_home.join("config.json"),
        format!("{{\"auths\": {{\"https://{h}\": {{\"auth\": \"{}\"}}}}}}", "YmVydGg6czNjcmV0"), // berth:s3cret
    )
    .unwrap();
    let denv = [("HOME", home.to_str().unwrap()), ("BERTH_AUTH_FILE", "/nonexistent/auth.json"), ("DOCKER_CONFIG", docker_home.to_str().unwrap())];
    let store3 = bt.path("store3");
    let o = bb(&bt.t.dir, &store3, &["pull", "--insecure-registry", &h, &app], &denv);
    o.ok();
    assert_eq!(o.stdout.trim(), id);

    // logout removes them: the next pull into an empty store is refused and stores nothing.
    let o = bt.bb(&["logout", "--authfile", af, &h]);
    o.ok();
    assert_eq!(o.stdout.trim(), format!("Removed login credentials for {h}"));
    let o = bt.bb(&["logout", "--authfile", af, &h]);
    o.failed();
    o.stderr_has(&format!("not logged in to {h}"));
    let empty = bt.path("empty");
    args = vec!["pull", "--tls-verify=false", &app];
    let o = bb(&bt.t.dir, &empty, &args, &env);
    o.failed();
    o.stderr_has(&format!("pull {h}/secure/app:1: "));
    o.stderr_has("(401)");
    let o = bb(&bt.t.dir, &empty, &["pull", "--tls-verify=false", "--creds", "berth:wrong", &app], &env);
    o.failed();
    o.stderr_has(&format!("the credentials for {h} were rejected"));
    assert_eq!(store_files(&empty), Vec::<String>::new(), "a refused pull left files in the store");
    bt.assert_clean();
}

#[test]
fn load_reads_oci_and_docker_archives_into_an_empty_store() {
    let bt = Bt::new("regb-load");
    let ctx = app_context(&bt, "ctx", "busybox");
    let (oci, docker) = (bt.path("img.oci.tar"), bt.path("img.docker.tar"));
    let iid = bt.path("iid");
    let o = bt.build(
        &ctx,
        &[
            "-t",
            "loadme:1",
            "--iidfile",
            iid.to_str().unwrap(),
            "--output",
            &format!("type=oci-archive,dest={}", oci.display()),
            "--output",
            &format!("type=docker-archive,dest={}", docker.display()),
        ],
    );
    o.ok();
    let id = std::fs::read_to_string(&iid).unwrap();
    for (archive, same_id) in [(&oci, true), (&docker, false)] {
        let store = bt.path(&format!("store-{}", archive.file_name().unwrap().to_string_lossy()));
        let o = bb(&bt.t.dir, &store, &["load", archive.to_str().unwrap()], &[]);
        o.ok();
        assert!(o.stdout.starts_with("Loaded image: loadme:1 ("), "{}", o.describe());
        if same_id {
            // An OCI layout carries the manifest itself: the same image id.
            assert!(o.stdout.contains(&id), "{}", o.describe());
        }
        // It runs: flattened, the files of both steps are there.
        let flat = store.with_extension("flat");
        let ctx2 = bt.context(&format!("ctx-{}", store.file_name().unwrap().to_string_lossy()), &[("Dockerfile", "FROM loadme:1\n")]);
        bb(&bt.t.dir, &store, &["build", "--progress", "plain", "--output", &format!("type=local,dest={}", flat.display()), ctx2.to_str().unwrap()], &[]).ok();
        assert_eq!(std::fs::read_to_string(flat.join("hello")).unwrap(), "built-by-berth\n");
        assert_eq!(std::fs::read_to_string(flat.join("msg")).unwrap(), "message-from-context\n");
    }
    // Not an archive: the file named, nothing stored.
    let junk = bt.path("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all").unwrap();
    let empty = bt.path("empty");
    let o = bb(&bt.t.dir, &empty, &["load", junk.to_str().unwrap()], &[]);
    o.failed();
    o.stderr_has(&junk.display().to_string());
    assert_eq!(store_files(&empty), Vec::<String>::new());
}

#[test]
fn an_index_is_pulled_for_the_platform_asked_and_found_locally_by_digest() {
    use berth_build::registry::{self, AuthConfig, Client, ClientOptions, PushOptions, Reference};
    use berth_build::store::Store;
    use berth_spec::image::{Descriptor, Manifest, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST};

    let bt = Bt::new("regb-index");
    let mut reg = Registry::start(&bt.path("registry"), &RegistryConfig::default());
    let h = reg.host.clone();
    // An arm64 twin of busybox (same layers, another config) beside the amd64 one.
    let store = Store::open(&bt.store).unwrap();
    let amd = store.inspect("busybox").unwrap();
    let mut cfg: Value = serde_json::from_slice(&store.read_blob(&amd.manifest.config.digest).unwrap()).unwrap();
    cfg["architecture"] = "arm64".into();
    let cdesc = store.put_blob_bytes(MEDIA_TYPE_OCI_CONFIG, &serde_json::to_vec(&cfg).unwrap()).unwrap();
    let arm = store.put_manifest(&Manifest::new(cdesc, amd.manifest.layers.clone())).unwrap();
    let entry = |d: &Descriptor, arch: &str| {
        serde_json::json!({"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": d.digest.as_str(), "size": d.size,
            "platform": {"architecture": arch, "os": "linux"}})
    };
    let amd_desc = Descriptor::new(MEDIA_TYPE_OCI_MANIFEST, amd.digest.clone(), amd.manifest_size);
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [entry(&amd_desc, "amd64"), entry(&arm, "arm64")]}))
    .unwrap();
    // The store is the registry client's blob store: the index push sends both manifests.
    let client = Client::new(ClientOptions { auth: AuthConfig::none(), ..ClientOptions::default() }).unwrap();
    let multi = format!("{h}/multi:1");
    let pushed = registry::push(&client, &Reference::parse(&multi).unwrap(), &store, &index, MEDIA_TYPE_OCI_INDEX, &PushOptions::default()).unwrap();

    // --platform picks the entry; the digest printed is the index's.
    let s_arm = bt.path("store-arm");
    let o = bb(&bt.t.dir, &s_arm, &["pull", "--platform", "linux/arm64", &multi], &[]);
    o.ok();
    assert_eq!(o.stdout.trim(), pushed.digest.as_str());
    let v: Value = serde_json::from_str(&bb(&bt.t.dir, &s_arm, &["inspect", &multi], &[]).stdout).unwrap();
    assert_eq!((v["Digest"].as_str(), v["Config"]["architecture"].as_str()), (Some(arm.digest.as_str()), Some("arm64")), "{v}");
    // The host's platform by default.
    let s_host = bt.path("store-host");
    bb(&bt.t.dir, &s_host, &["pull", &multi], &[]).ok();
    let v: Value = serde_json::from_str(&bb(&bt.t.dir, &s_host, &["inspect", &multi], &[]).stdout).unwrap();
    assert_eq!(v["Digest"].as_str(), Some(amd.digest.as_str()), "{v}");
    // A platform the index lacks: the choices are named, nothing is stored.
    let empty = bt.path("empty");
    let o = bb(&bt.t.dir, &empty, &["pull", "--platform", "linux/s390x", &multi], &[]);
    o.failed();
    o.stderr_has(&format!("pull {multi}: no image for platform linux/s390x (available: linux/amd64, linux/arm64)"));
    assert_eq!(store_files(&empty), Vec::<String>::new());

    // FROM repo@<index digest> with the registry gone: the stored index gives the
    // host's manifest, nothing is fetched, RUN runs on it.
    reg.stop();
    let ctx = bt.context("ctx", &[("Dockerfile", &format!("FROM {h}/multi@{}\nRUN echo from-the-index > /f\n", pushed.digest))]);
    let flat = bt.path("flat");
    let o = bb(&bt.t.dir, &s_host, &["build", "--progress", "plain", "--output", &format!("type=local,dest={}", flat.display()), ctx.to_str().unwrap()], &[]);
    o.ok();
    assert_eq!(std::fs::read_to_string(flat.join("f")).unwrap(), "from-the-index\n");
    bt.assert_clean();
}
