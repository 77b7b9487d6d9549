//! Failures: the error words engines match on, and that a failed create leaves nothing
//! behind — no process, no mount, no cgroup, no state. These tests count processes, so
//! each runs alone in this binary (`Test::exclusive`).

use berth_integration::*;

/// A bundle whose container gets its own cgroups path, so that a leftover cgroup is
/// found by name.
fn bundle_with_cgroup(t: &Test) -> (Bundle, String) {
    let mut b = t.bundle();
    let cg = t.cgroups_path("c");
    b.set("/linux/cgroupsPath", json!(cg));
    (b, cg)
}

#[test]
fn malformed_config_json_is_reported_naming_the_file() {
    let t = Test::exclusive("bad_json");
    let before = t.snapshot();
    let b = t.bundle();
    b.write();
    std::fs::write(b.config_path(), "{ \"ociVersion\": \"1.0.2\", not json").unwrap();
    let o = t.rt.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &t.id("")]);
    o.failed();
    if flavor().is_runc() {
        // runc 1.1 prints only Go's JSON error ("invalid character ..."), not the file.
        o.stderr_has("invalid character");
    } else {
        o.stderr_has("config.json");
    }
    t.assert_nothing_left(&before, None);
}

#[test]
fn config_json_with_a_wrong_type_is_reported_naming_the_file() {
    let t = Test::exclusive("bad_type");
    let before = t.snapshot();
    let mut b = t.bundle();
    b.set("/process/args", json!("sh -c true"));
    let o = t.rt.create(&t.id(""), &b);
    o.failed();
    if flavor().is_runc() {
        // runc 1.1: "json: cannot unmarshal string into Go struct field Process.process.args ..."
        o.stderr_has("args");
    } else {
        o.stderr_has("config.json");
    }
    t.assert_nothing_left(&before, None);
}

#[test]
fn missing_config_json_is_reported() {
    let t = Test::exclusive("no_config");
    let before = t.snapshot();
    let dir = t.mkdir("empty-bundle");
    let o = t.rt.cmd(&["create", "--bundle", dir.to_str().unwrap(), &t.id("")]);
    o.failed().stderr_has("config.json");
    t.assert_nothing_left(&before, None);
}

#[test]
fn missing_bundle_directory_is_reported() {
    let t = Test::exclusive("no_bundle");
    let before = t.snapshot();
    let o = t.rt.cmd(&["create", "--bundle", t.path("not-there").to_str().unwrap(), &t.id("")]);
    o.failed();
    assert!(o.stderr.contains("no such file or directory") || o.stderr.contains("not found"), "{}", o.describe());
    t.assert_nothing_left(&before, None);
}

#[test]
fn missing_rootfs_is_reported() {
    let t = Test::exclusive("no_rootfs");
    let before = t.snapshot();
    let (mut b, cg) = bundle_with_cgroup(&t);
    b.set("/root/path", json!("no-such-rootfs"));
    let o = t.rt.create(&t.id(""), &b);
    o.failed();
    t.assert_nothing_left(&before, Some(&cg));
}

#[test]
fn executable_not_in_path_is_reported_and_leaves_nothing() {
    let t = Test::exclusive("exec_not_found");
    let before = t.snapshot();
    let (mut b, cg) = bundle_with_cgroup(&t);
    b.args(&["no-such-command", "arg"]);
    let o = t.rt.create(&t.id(""), &b);
    o.failed().stderr_has("executable file not found in $PATH").stderr_has("no-such-command");
    t.assert_nothing_left(&before, Some(&cg));
}

#[test]
fn missing_executable_path_is_reported_and_leaves_nothing() {
    let t = Test::exclusive("exec_no_file");
    let before = t.snapshot();
    let (mut b, cg) = bundle_with_cgroup(&t);
    b.args(&["/bin/no-such-file"]);
    let o = t.rt.create(&t.id(""), &b);
    o.failed().stderr_has("no such file or directory").stderr_has("/bin/no-such-file");
    t.assert_nothing_left(&before, Some(&cg));
}

#[test]
fn run_with_a_missing_executable_fails_and_leaves_nothing() {
    let t = Test::exclusive("run_not_found");
    let before = t.snapshot();
    let (mut b, cg) = bundle_with_cgroup(&t);
    b.args(&["no-such-command"]);
    let o = t.rt.run(&t.id(""), &b);
    o.failed().stderr_has("executable file not found in $PATH");
    t.assert_nothing_left(&before, Some(&cg));
}

#[test]
fn non_executable_file_is_reported_and_leaves_nothing() {
    let t = Test::exclusive("exec_denied");
    let before = t.snapshot();
    let (mut b, cg) = bundle_with_cgroup(&t);
    b.args(&["/etc/passwd"]);
    let o = t.rt.create(&t.id(""), &b);
    o.failed().stderr_has("permission denied");
    t.assert_nothing_left(&before, Some(&cg));
}

#[test]
fn failed_bind_mount_leaves_nothing() {
    let t = Test::exclusive("bad_mount");
    let before = t.snapshot();
    let (mut b, cg) = bundle_with_cgroup(&t);
    b.bind(&t.path("no-such-source"), "/data", &[]);
    let o = t.rt.create(&t.id(""), &b);
    o.failed().stderr_has("no-such-source");
    t.assert_nothing_left(&before, Some(&cg));
}

#[test]
fn failed_sysctl_late_in_setup_leaves_nothing() {
    let t = Test::exclusive("bad_sysctl");
    let before = t.snapshot();
    let (mut b, cg) = bundle_with_cgroup(&t);
    b.set("/linux/sysctl", json!({"net.ipv4.no_such_sysctl_berth": "1"}));
    let o = t.rt.create(&t.id(""), &b);
    o.failed().stderr_has("no_such_sysctl_berth");
    t.assert_nothing_left(&before, Some(&cg));
}

#[test]
fn create_of_an_existing_id_fails_and_keeps_the_existing_container() {
    let t = Test::exclusive("dup_id");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    t.rt.create(&id, &b).ok();
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap() as i32;
    t.rt.create(&id, &b).failed().stderr_has("exists");
    assert_eq!(t.rt.status(&id), "created");
    assert_eq!(t.rt.state(&id)["pid"].as_i64().unwrap() as i32, pid);
    assert!(procs::alive(pid));
}

#[test]
fn delete_removes_processes_cgroups_and_state() {
    let t = Test::exclusive("delete_all");
    let before = t.snapshot();
    let id = t.id("");
    let (mut b, cg) = bundle_with_cgroup(&t);
    b.sh("sleep 100 & sleep 100");
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    // While it runs, its cgroups exist and hold its processes.
    let dirs = host::cgroup_dirs(&cg);
    assert!(!dirs.is_empty(), "no cgroup at {cg}");
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap();
    let procs_file = std::fs::read_to_string(dirs[0].join("cgroup.procs")).unwrap();
    assert!(procs_file.lines().any(|l| l == pid.to_string()), "init {pid} not in {}: {procs_file}", dirs[0].display());
    t.rt.delete_force(&id).ok();
    t.assert_nothing_left(&before, Some(&cg));
}
