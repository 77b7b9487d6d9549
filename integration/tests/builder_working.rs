//! End-to-end tests of berth-build's working containers (`from`, `run`, `copy`, `config`,
//! `commit`, `rm`, `containers`: buildah's scripted builds), `import --change`, `save`,
//! and the listing commands' `--format`, `--filter` and image ids.
//!
//! Needs root, busybox-static, the debug or release builds of berth, berth-shim and
//! berth-build, and skopeo (for `save`). Each test has a store of its own in its temp dir
//! (see `builder_support::Bt`), removed with it even when the test fails.

use berth_build::export::{export, ExportFormat, ExportOptions};
use berth_build::store::Store;
use berth_integration::builder_support::{builder_bin, Bt, Out};
use berth_integration::{procs, Value};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// `from busybox`: the container's name.
fn from(b: &Bt, extra: &[&str]) -> String {
    let mut a = vec!["from"];
    a.extend_from_slice(extra);
    a.push("busybox");
    let o = b.bb(&a);
    o.ok();
    o.stdout.trim().to_string()
}

/// The file names in a stored layer blob (gzip tar), as `tar -t` lists them.
fn layer_entries(b: &Bt, digest: &str) -> Vec<String> {
    let blob = b.store.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let o = Command::new("tar").arg("-tzf").arg(&blob).output().expect("run tar");
    assert!(o.status.success(), "tar -tzf {}: {}", blob.display(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string()).filter(|l| !l.is_empty()).collect()
}

/// A working container with a file made by RUN, a file deleted by RUN, a copied file and
/// config changes, committed as `name`.
fn made_and_committed(b: &Bt, name: &str) -> (String, Out) {
    let c = from(b, &[]);
    b.bb(&["run", &c, "--", "sh", "-c", "echo made-by-run > /made.txt && rm /bin/ls"]).ok();
    let src = b.path("src/a.txt");
    b.write(&src, "copied\n");
    b.bb(&["copy", &c, src.to_str().unwrap(), "/app/"]).ok();
    b.bb(&[
        "config",
        &c,
        "--env",
        "GREETING=hello world",
        "--cmd",
        r#"["sh", "-c", "cat /made.txt /app/a.txt; echo $GREETING; pwd; ls /bin/ls 2>&1 || true"]"#,
        "--workdir",
        "/app",
        "--label",
        "org.example=yes",
        "--port",
        "8080",
        "--user",
        "0:0",
    ])
    .ok();
    let o = b.bb(&["commit", &c, name]);
    o.ok();
    (c, o)
}

#[test]
fn commit_of_a_working_container_is_one_layer_of_its_changes_with_its_config_and_history() {
    let b = Bt::new("bw-commit");
    let base = b.inspect("busybox");
    let (c, o) = made_and_committed(&b, "wc/app:1");
    let v = b.inspect("wc/app:1");
    // commit prints the image id: the config digest.
    assert_eq!(o.stdout.trim(), v["Id"].as_str().unwrap(), "{}", o.describe());
    let base_layers = base["Manifest"]["layers"].as_array().unwrap();
    let layers = v["Manifest"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), base_layers.len() + 1, "{v}");
    assert_eq!(&layers[..base_layers.len()], &base_layers[..]);
    let mut top = layer_entries(&b, layers.last().unwrap()["digest"].as_str().unwrap());
    top.sort();
    assert_eq!(top, ["app", "app/a.txt", "bin", "bin/.wh.ls", "made.txt"], "the new layer holds only the changes");

    let cfg = &v["Config"]["config"];
    assert_eq!(cfg["Env"], serde_json::json!(["GREETING=hello world"]));
    assert_eq!(cfg["Cmd"][0], "sh");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["User"], "0:0");
    assert_eq!(cfg["Labels"]["org.example"], "yes");
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    let history = v["Config"]["history"].as_array().unwrap();
    assert_eq!(history.iter().filter(|h| h["empty_layer"] != true).count(), layers.len(), "{v}");
    let last = history.last().unwrap();
    let by = last["created_by"].as_str().unwrap();
    assert!(by.contains("RUN sh -c echo made-by-run") && by.contains("COPY"), "{last}");
    assert!(history.iter().any(|h| h["created_by"] == "ENV GREETING=hello world" && h["empty_layer"] == true), "{v}");

    // The container goes on from the committed image: the next commit has only what
    // changed since.
    b.bb(&["run", &c, "--", "sh", "-c", "echo second > /second.txt"]).ok();
    b.bb(&["commit", &c, "wc/app:2"]).ok();
    let v2 = b.inspect("wc/app:2");
    let layers2 = v2["Manifest"]["layers"].as_array().unwrap();
    assert_eq!(&layers2[..layers.len()], &layers[..]);
    assert_eq!(layer_entries(&b, layers2.last().unwrap()["digest"].as_str().unwrap()), ["second.txt"]);
    b.bb(&["rm", &c]).ok();
    b.assert_clean();
}

#[test]
fn committed_image_runs_with_berth() {
    let b = Bt::new("bw-runs");
    let (c, _) = made_and_committed(&b, "wc/run:1");
    let bundle = b.path("bundle");
    let store = Store::open(&b.store).expect("open store");
    export(&store, "wc/run:1", ExportFormat::Bundle, &bundle, &ExportOptions::default()).expect("export bundle");
    let id = b.t.id("run");
    let out = b.t.rt.cmd(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    out.ok();
    assert_eq!(out.stdout, "made-by-run\ncopied\nhello world\n/app\nls: /bin/ls: No such file or directory\n", "{}", out.describe());
    b.bb(&["rm", &c]).ok();
    b.assert_clean();
}

#[test]
fn run_takes_volumes_and_exits_with_the_commands_status() {
    let b = Bt::new("bw-run");
    let c = from(&b, &[]);
    let vol = b.t.mkdir("vol");
    b.write(&vol.join("in.txt"), "from the host\n");
    let o = b.bb(&["run", "-v", &format!("{}:/mnt", vol.display()), &c, "--", "sh", "-c", "cat /mnt/in.txt; echo back > /mnt/out.txt"]);
    o.ok();
    assert_eq!(o.stdout, "from the host\n", "{}", o.describe());
    assert_eq!(std::fs::read_to_string(vol.join("out.txt")).unwrap(), "back\n");
    let o = b.bb(&["run", &c, "--", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", o.describe());
    // The bind mount's target is not part of the container's changes.
    b.bb(&["commit", &c, "wc/vol:1"]).ok();
    let v = b.inspect("wc/vol:1");
    assert_eq!(v["Manifest"]["layers"], b.inspect("busybox")["Manifest"]["layers"], "no change, no new layer: {v}");
    b.bb(&["rm", &c]).ok();
    b.assert_clean();
}

#[test]
fn containers_lists_them_named_as_buildah_names_them() {
    let b = Bt::new("bw-list");
    assert_eq!(from(&b, &[]), "busybox-working-container");
    assert_eq!(from(&b, &[]), "busybox-working-container-1");
    assert_eq!(from(&b, &["--name", "mine"]), "mine");
    let o = b.bb(&["from", "--name", "mine", "busybox"]);
    o.failed().stderr_has("\"mine\" is already in use");
    // By image id: named after the image's name.
    let id = b.inspect("busybox")["Id"].as_str().unwrap().to_string();
    let o = b.bb(&["from", &id[7..17]]);
    o.ok();
    assert_eq!(o.stdout, "busybox-working-container-2\n", "{}", o.describe());
    b.bb(&["rm", "busybox-working-container-2"]).ok();
    let o = b.bb(&["containers"]);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID") && lines[0].contains("IMAGE NAME"), "{}", o.describe());
    assert_eq!(lines.len(), 4, "{}", o.describe());
    let o = b.bb(&["containers", "--format", "{{.Name}} {{.ImageName}}"]);
    assert_eq!(o.stdout, "busybox-working-container busybox\nbusybox-working-container-1 busybox\nmine busybox\n", "{}", o.describe());
    let o = b.bb(&["containers", "--format", "{{.Nope}}"]);
    o.failed().stderr_has("Nope");
    b.bb(&["rm", "busybox-working-container", "busybox-working-container-1", "mine"]).ok();
    assert_eq!(b.bb(&["containers", "-q"]).stdout, "");
    b.assert_clean();
}

#[test]
fn rm_leaves_no_mounts_or_dirs_and_unknown_containers_are_refused() {
    let b = Bt::new("bw-rm");
    let c = from(&b, &[]);
    b.bb(&["run", &c, "--", "sh", "-c", "echo x > /x"]).ok();
    // Nothing is mounted between commands.
    let mounts = berth_integration::host::mounts_under(&b.store);
    assert!(mounts.is_empty(), "mounts left after run: {mounts:?}");
    b.bb(&["rm", &c]).ok();
    assert!(!b.store.join("containers").join(&c).exists());
    for args in
        [vec!["run", &c, "--", "true"], vec!["copy", &c, "/etc/hostname", "/"], vec!["config", &c, "--env", "A=1"], vec!["commit", &c, "x:1"], vec!["rm", &c]]
    {
        let o = b.bb(&args);
        o.failed().stderr_has("no working container named");
    }
    b.bb(&["inspect", "x:1"]).failed();
    let o = b.bb(&["from", "no/such-image:1"]);
    o.failed();
    assert_eq!(b.bb(&["containers", "-q"]).stdout, "", "a failed from leaves no container");
    b.assert_clean();
}

#[test]
fn prune_keeps_what_a_working_container_uses() {
    let b = Bt::new("bw-prune");
    let c = from(&b, &[]);
    // The base loses its only name: only the container holds its layers now.
    b.bb(&["rmi", "busybox"]).ok();
    b.bb(&["prune"]).ok();
    let o = b.bb(&["run", &c, "--", "sh", "-c", "echo still here > /x; cat /x"]);
    o.ok();
    assert_eq!(o.stdout, "still here\n");
    b.bb(&["commit", &c, "kept:1"]).ok();
    b.bb(&["rm", &c]).ok();
    b.bb(&["prune"]).ok();
    b.inspect("kept:1");
    b.assert_clean();
}

#[test]
fn import_change_sets_the_config() {
    let b = Bt::new("bw-import");
    let dir = b.t.mkdir("root");
    b.write(&dir.join("hello.txt"), "hi\n");
    let tar = b.path("root.tar");
    assert!(Command::new("tar").arg("-C").arg(&dir).arg("-cf").arg(&tar).arg(".").status().unwrap().success());
    let t = tar.to_str().unwrap();
    b.bb(&["import", "--change", r#"CMD ["cat", "/hello.txt"]"#, "--change", "ENV A=1", "-c", "WORKDIR /srv", t, "imp:1"]).ok();
    let cfg = &b.inspect("imp:1")["Config"]["config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat", "/hello.txt"]));
    assert_eq!(cfg["Env"], serde_json::json!(["A=1"]));
    assert_eq!(cfg["WorkingDir"], "/srv");
    let o = b.bb(&["import", "--change", "RUN echo no", t, "imp:2"]);
    o.failed().stderr_has("only config instructions");
    b.bb(&["inspect", "imp:2"]).failed();
    b.assert_clean();
}

#[test]
fn save_writes_archives_that_skopeo_reads() {
    let b = Bt::new("bw-save");
    let (c, o) = made_and_committed(&b, "wc/save:1");
    let id = o.stdout.trim().to_string();
    let layers = b.inspect("wc/save:1")["Manifest"]["layers"].as_array().unwrap().len();
    let short = &id["sha256:".len().."sha256:".len() + 12];
    for (format, transport, by) in [("docker-archive", "docker-archive", "wc/save:1"), ("oci-archive", "oci-archive", short)] {
        let file = b.path(&format!("{format}.tar"));
        b.bb(&["save", "--format", format, "-o", file.to_str().unwrap(), by]).ok();
        let out = Command::new("skopeo").arg("inspect").arg(format!("{transport}:{}", file.display())).output().expect("run skopeo");
        assert!(out.status.success(), "skopeo inspect {format}: {}", String::from_utf8_lossy(&out.stderr));
        let v = json(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(v["Layers"].as_array().map(|l| l.len()), Some(layers), "{format}: {v}");
        assert_eq!(v["Labels"]["org.example"], "yes", "{format}: {v}");
        let cfg = Command::new("skopeo").args(["inspect", "--config"]).arg(format!("{transport}:{}", file.display())).output().unwrap();
        assert!(cfg.status.success());
        assert_eq!(berth_integration::builder_support::sha256_hex(&cfg.stdout).len(), 64);
    }
    b.bb(&["save", "-o", b.path("x.tar").to_str().unwrap(), "no/such:1"]).failed();
    assert!(!b.path("x.tar").exists());
    b.bb(&["rm", &c]).ok();
    b.assert_clean();
}

/// Commits `busybox` with a label as `name`, created at `epoch` (SOURCE_DATE_EPOCH).
fn labelled(b: &Bt, name: &str, label: &str, epoch: &str) {
    let c = from(b, &[]);
    b.bb(&["config", &c, "--label", label]).ok();
    b.bb_env(&["commit", &c, name], &[("SOURCE_DATE_EPOCH", epoch)]).ok();
    b.bb(&["rm", &c]).ok();
}

#[test]
fn images_format_and_filter() {
    let b = Bt::new("bw-images");
    // Created in 2001 and 2033: busybox (imported now) is between them.
    labelled(&b, "app/one:1", "tier=web", "1000000000");
    labelled(&b, "app/two:2", "tier=db", "2000000000");
    let o = b.bb(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    o.ok();
    let ids: HashMap<String, String> = o.stdout.lines().map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).unwrap()).collect();
    assert_eq!(ids.len(), 3, "{}", o.describe());
    for (name, id) in &ids {
        let full = b.inspect(name)["Id"].as_str().unwrap().to_string();
        assert_eq!(id, &full["sha256:".len().."sha256:".len() + 12], "IMAGE ID is the config digest's first 12 hex digits");
    }
    let f = |filters: &[&str]| -> String {
        let mut a = vec!["images", "--format", "{{.Repository}}"];
        for x in filters {
            a.extend_from_slice(&["--filter", x]);
        }
        let o = b.bb(&a);
        o.ok();
        o.stdout
    };
    assert_eq!(f(&["reference=app/*"]), "app/one\napp/two\n");
    assert_eq!(f(&["reference=busy*"]), "busybox\n");
    assert_eq!(f(&["label=tier"]), "app/one\napp/two\n");
    assert_eq!(f(&["label=tier=db"]), "app/two\n");
    assert_eq!(f(&["dangling=true"]), "");
    assert_eq!(f(&["dangling=false", "reference=app/one"]), "app/one\n");
    assert_eq!(f(&["since=busybox"]), "app/two\n");
    assert_eq!(f(&["since=app/one:1"]), "app/two\nbusybox\n");
    assert_eq!(f(&["before=busybox"]), "app/one\n");
    assert_eq!(f(&["before=app/one:1"]), "");
    let o = b.bb(&["images", "--filter", "color=red"]);
    o.failed().stderr_has("unknown filter");
    let o = b.bb(&["images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}", "--filter", "reference=app/two"]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", o.describe());
    assert!(lines[0].starts_with("REPOSITORY") && lines[0].contains("TAG") && lines[0].contains("IMAGE ID"), "{}", o.describe());
    let rows: Vec<Value> = b.bb(&["images", "--format", "json"]).stdout.lines().map(json).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["Digest"].as_str().unwrap().starts_with("sha256:") && r["Size"].is_string()));
    let o = b.bb(&["images", "--format", "{{.Repository}} {{.Bogus}}"]);
    o.failed().stderr_has("Bogus");
    b.assert_clean();
}

#[test]
fn history_and_inspect_format() {
    let b = Bt::new("bw-hist");
    let (c, _) = made_and_committed(&b, "wc/h:1");
    let o = b.bb(&["history", "--format", "{{.CreatedBy}}|{{.Comment}}", "wc/h:1"]);
    o.ok();
    let first = o.stdout.lines().next().unwrap();
    assert!(first.starts_with("RUN sh -c echo made-by-run") && first.ends_with("|berth-build commit busybox-working-container"), "{}", o.describe());
    assert!(o.stdout.lines().any(|l| l.starts_with("EXPOSE 8080/tcp|")), "{}", o.describe());
    let o = b.bb(&["history", "--format", "table {{.ID}}\\t{{.Size}}", "wc/h:1"]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(lines[0].starts_with("IMAGE ID") && lines[0].contains("SIZE"), "{}", o.describe());
    assert!(lines[2..].iter().all(|l| l.starts_with("<missing>")), "{}", o.describe());
    b.bb(&["history", "--format", "{{.Nope}}", "wc/h:1"]).failed().stderr_has("Nope");

    let v = b.inspect("wc/h:1");
    let o = b.bb(&["inspect", "--format", "{{.Id}} {{.Os}} {{.Config.Env}} {{json .Config.Cmd}} {{.RepoTags}}", "wc/h:1"]);
    o.ok();
    let want =
        format!("{} linux [GREETING=hello world] {} [wc/h:1]\n", v["Id"].as_str().unwrap(), serde_json::to_string(&v["Config"]["config"]["Cmd"]).unwrap());
    assert_eq!(o.stdout, want);
    let o = b.bb(&["inspect", "--format", "{{json .RootFS.Layers}}", "wc/h:1"]);
    assert_eq!(json(&o.stdout), v["Config"]["rootfs"]["diff_ids"]);
    let o = b.bb(&["inspect", "--format", "json", "wc/h:1"]);
    let j = json(&o.stdout);
    assert_eq!(j["Architecture"], v["Config"]["architecture"]);
    assert_eq!(j["Config"]["WorkingDir"], "/app");
    b.bb(&["inspect", "--format", "{{.Config.Nope}}", "wc/h:1"]).failed().stderr_has("Nope");
    b.bb(&["rm", &c]).ok();
    b.assert_clean();
}

#[test]
fn rmi_by_short_id_and_ambiguous_prefixes_name_the_candidates() {
    let b = Bt::new("bw-rmi");
    // Two images whose ids (config digests) share their first 4 hex digits: configs
    // differing in the author until two collide.
    let store = Store::open(&b.store).expect("open store");
    let base = store.inspect("busybox").expect("busybox");
    let mut seen: HashMap<String, usize> = HashMap::new();
    let (i, j, prefix) = (0..)
        .find_map(|i| {
            let mut c = base.config.clone();
            c.author = Some(format!("author {i}"));
            let d = berth_build::store::hash::sha256(&serde_json::to_vec(&c).unwrap());
            let p = d.hex()[..4].to_string();
            seen.insert(p.clone(), i).map(|j| (i, j, p))
        })
        .unwrap();
    for (k, name) in [(i, "amb:a"), (j, "amb:b")] {
        let mut c = base.config.clone();
        c.author = Some(format!("author {k}"));
        let cd = store.put_config(&c).unwrap();
        let md = store.put_manifest(&berth_spec::image::Manifest::new(cd, base.manifest.layers.clone())).unwrap();
        store.tag(name, &md.digest).unwrap();
    }
    let ida = b.inspect("amb:a")["Id"].as_str().unwrap().to_string();
    let idb = b.inspect("amb:b")["Id"].as_str().unwrap().to_string();
    let o = b.bb(&["rmi", &prefix]);
    o.failed().stderr_has("ambiguous");
    assert!(o.stderr.contains(&ida[7..19]) && o.stderr.contains(&idb[7..19]), "the candidates are listed\n{}", o.describe());
    for cmd in ["inspect", "history", "from"] {
        b.bb(&[cmd, &prefix]).failed().stderr_has("ambiguous");
    }
    b.bb(&["save", "-o", b.path("amb.tar").to_str().unwrap(), &prefix]).failed().stderr_has("ambiguous");
    assert_eq!(b.bb(&["containers", "-q"]).stdout, "");
    // A longer, unique prefix removes the image (its only name).
    let o = b.bb(&["rmi", &ida[7..19]]);
    o.ok();
    assert!(o.stdout.contains("Untagged: amb:a") && o.stdout.contains(&ida), "{}", o.describe());
    b.bb(&["inspect", "amb:a"]).failed();
    b.inspect("amb:b");
    // An id with two names needs --force.
    b.bb(&["tag", "amb:b", "amb:c"]).ok();
    b.bb(&["rmi", &idb[7..19]]).failed().stderr_has("several names");
    let o = b.bb(&["rmi", "-f", &idb[7..19]]);
    o.ok();
    assert!(o.stdout.contains("amb:b") && o.stdout.contains("amb:c"), "{}", o.describe());
    b.assert_clean();
}

#[test]
fn sigterm_of_run_ends_the_command_and_leaves_the_container_usable() {
    let b = Bt::new("bw-sigterm");
    let c = from(&b, &[]);
    let out = b.path("run.out");
    let mut cmd = Command::new(builder_bin());
    cmd.arg("--store").arg(&b.store).args(["run", &c, "--", "sh", "-c", "echo started; exec sleep 300"]);
    cmd.stdin(Stdio::null()).stdout(std::fs::File::create(&out).unwrap()).stderr(Stdio::null());
    let mut child = procs::spawn(&mut cmd).expect("spawn berth-build run");
    let pid = child.id();
    // Killed and reaped even if an assertion below fails.
    struct Reap(Option<std::process::Child>);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Some(mut c) = self.0.take() {
                let _ = c.kill();
                let _ = c.wait();
                procs::untrack(c.id());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&out).unwrap_or_default().contains("started") {
        assert!(Instant::now() < deadline, "the command did not start");
        assert!(child.try_wait().unwrap().is_none(), "berth-build run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    procs::signal(pid as i32, libc::SIGTERM);
    let mut guard = Reap(Some(child));
    let c2 = guard.0.as_mut().unwrap();
    let status = loop {
        if let Some(s) = c2.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "berth-build run did not end after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    guard.0.take();
    procs::untrack(pid);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    // No process, mount or temp dir is left, and the container still works.
    b.assert_clean();
    let o = b.bb(&["run", &c, "--", "echo", "again"]);
    o.ok();
    assert_eq!(o.stdout, "again\n");
    b.bb(&["rm", &c]).ok();
    b.assert_clean();
}
