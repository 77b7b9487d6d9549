//! The systemd cgroup driver (`--systemd-cgroup`) against a real systemd: the container
//! is a transient scope unit in the slice its cgroupsPath names, its limits are unit
//! properties (they survive `systemctl daemon-reload`) and cgroup v2 files, update changes
//! both, pause/exec/kill work in the scope, delete stops the unit.
//!
//! These need systemd as PID 1 on pure cgroup v2, which the VM lane gives
//! (`bash integration/scripts/vm-lane.sh`); on a host without it they print why and
//! pass, except under the lane (`BERTH_VM_LANE` set), where that is a failure. The test
//! that checks the refusal without systemd runs where systemd is absent.
//!
//! `BERTH_RUNTIME=/usr/sbin/runc` runs the same tests against runc's systemd driver.

use berth_integration::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").exists()
}

fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Whether this host can run the test; under the VM lane it must.
fn host_has_systemd_on_v2(what: &str) -> bool {
    if systemd_running() && pure_v2() {
        return true;
    }
    let why = format!("{what}: needs systemd as PID 1 on pure cgroup v2 (systemd: {}, pure v2: {})", systemd_running(), pure_v2());
    assert!(std::env::var_os("BERTH_VM_LANE").is_none(), "in the VM lane: {why}");
    eprintln!("skipped {why}; run it in the VM lane (integration/scripts/vm-lane.sh)");
    false
}

/// A slice of this test's own (no `-`: that would nest it in a parent slice shared with
/// other tests); stopped, with whatever is left in it, at the end. Made before the
/// test's `Test`, so that it is stopped after the containers are deleted (a container's
/// init ignores the SIGTERM of a stop, which would then wait out systemd's timeout).
struct Slice {
    name: String,
}

impl Slice {
    fn new() -> Slice {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Slice { name: format!("berthit{}x{n}.slice", std::process::id()) }
    }
}

impl Drop for Slice {
    fn drop(&mut self) {
        let _ = Command::new("systemctl").args(["stop", &self.name]).status();
        let _ = Command::new("systemctl").args(["reset-failed", &self.name]).output();
    }
}

/// The test's runtime with `--systemd-cgroup` before every command (a wrapper script),
/// as engines call it with the systemd driver.
fn with_systemd_flag(t: &mut Test) {
    let wrapper = t.dir.join("runtime-systemd");
    std::fs::write(&wrapper, format!("#!/bin/sh\nexec {} --systemd-cgroup \"$@\"\n", t.rt.bin.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.rt.bin = wrapper;
}

/// `systemctl show UNIT -p NAME --value`.
fn unit_property(unit: &str, name: &str) -> String {
    let o = Command::new("systemctl").args(["show", unit, "-p", name, "--value"]).output().expect("systemctl show");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The scope's directory in the unified hierarchy.
fn scope_dir(slice: &str, unit: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(slice).join(unit)
}

#[track_caller]
fn read(dir: &Path, file: &str) -> String {
    let p = dir.join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
}

/// A container in the test's slice running `script`; returns (id, unit name).
fn scoped(t: &Test, slice: &Slice, suffix: &str, script: &str, resources: Value) -> (String, String, Bundle) {
    let id = t.id(suffix);
    let mut b = t.bundle();
    b.sh(script);
    b.set("/linux/cgroupsPath", json!(format!("{}:berthit:{id}", slice.name)));
    if let Value::Object(r) = resources {
        for (k, v) in r {
            b.set(&format!("/linux/resources/{k}"), v);
        }
    }
    t.rt.create(&id, &b).ok();
    (id.clone(), format!("berthit-{id}.scope"), b)
}

fn init_pid(t: &Test, id: &str) -> i64 {
    t.rt.state(id)["pid"].as_i64().expect("state has a pid")
}

#[test]
fn a_container_is_a_delegated_transient_scope_in_the_slice_its_cgroups_path_names() {
    if !host_has_systemd_on_v2("scope") {
        return;
    }
    let slice = Slice::new();
    let mut t = Test::new("sd_scope");
    with_systemd_flag(&mut t);
    let (id, unit, _) = scoped(&t, &slice, "a", "sleep 100", json!({}));
    let pid = init_pid(&t, &id);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(own.trim(), format!("0::/{}/{unit}", slice.name), "the init's cgroup");
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert_eq!(unit_property(&unit, "Slice"), slice.name);
    assert_eq!(unit_property(&unit, "Delegate"), "yes");
    assert_eq!(unit_property(&unit, "ControlGroup"), format!("/{}/{unit}", slice.name));
    assert!(read(&scope_dir(&slice.name, &unit), "cgroup.procs").lines().any(|l| l == pid.to_string()));
    t.rt.start(&id).ok();
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn limits_are_unit_properties_and_v2_files_and_survive_a_daemon_reload() {
    if !host_has_systemd_on_v2("limits") {
        return;
    }
    let slice = Slice::new();
    let mut t = Test::new("sd_limits");
    with_systemd_flag(&mut t);
    let resources = json!({
        "memory": {"limit": 104857600, "reservation": 52428800},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 42},
        "blockIO": {"weight": 500}
    });
    let (id, unit, _) = scoped(&t, &slice, "l", "sleep 100", resources);
    let dir = scope_dir(&slice.name, &unit);
    let check = |when: &str| {
        assert_eq!(unit_property(&unit, "MemoryMax"), "104857600", "{when}");
        assert_eq!(unit_property(&unit, "MemoryLow"), "52428800", "{when}");
        assert_eq!(unit_property(&unit, "TasksMax"), "42", "{when}");
        assert_eq!(unit_property(&unit, "CPUQuotaPerSecUSec"), "500ms", "{when}");
        assert_eq!(unit_property(&unit, "CPUWeight"), "20", "{when}");
        assert_eq!(unit_property(&unit, "AllowedCPUs"), "0", "{when}");
        assert_eq!(read(&dir, "memory.max"), "104857600", "{when}");
        assert_eq!(read(&dir, "memory.low"), "52428800", "{when}");
        assert_eq!(read(&dir, "pids.max"), "42", "{when}");
        assert_eq!(read(&dir, "cpu.max"), "50000 100000", "{when}");
        assert_eq!(read(&dir, "cpu.weight"), "20", "{when}");
        assert_eq!(read(&dir, "cpuset.cpus"), "0", "{when}");
    };
    check("after create");
    // systemd rewrites a unit's cgroup files from its properties on reload: limits that
    // were only written to the files would be lost here.
    assert!(Command::new("systemctl").arg("daemon-reload").status().unwrap().success());
    check("after daemon-reload");
    t.rt.start(&id).ok();
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn update_changes_the_units_properties_and_the_files() {
    if !host_has_systemd_on_v2("update") {
        return;
    }
    let slice = Slice::new();
    let mut t = Test::new("sd_update");
    with_systemd_flag(&mut t);
    let (id, unit, _) =
        scoped(&t, &slice, "u", "sleep 100", json!({"memory": {"limit": 104857600}, "pids": {"limit": 42}, "cpu": {"quota": 50000, "period": 100000}}));
    t.rt.start(&id).ok();
    t.rt.cmd(&["update", "--memory", "209715200", "--pids-limit", "77", "--cpu-quota", "25000", &id]).ok();
    let dir = scope_dir(&slice.name, &unit);
    assert_eq!(unit_property(&unit, "MemoryMax"), "209715200");
    assert_eq!(unit_property(&unit, "TasksMax"), "77");
    assert_eq!(unit_property(&unit, "CPUQuotaPerSecUSec"), "250ms");
    assert_eq!(read(&dir, "memory.max"), "209715200");
    assert_eq!(read(&dir, "pids.max"), "77");
    assert_eq!(read(&dir, "cpu.max"), "25000 100000");
    assert!(Command::new("systemctl").arg("daemon-reload").status().unwrap().success());
    assert_eq!(read(&dir, "memory.max"), "209715200", "after daemon-reload");
    assert_eq!(read(&dir, "pids.max"), "77", "after daemon-reload");
}

#[test]
fn pause_exec_and_kill_all_work_in_the_scope() {
    if !host_has_systemd_on_v2("pause/exec") {
        return;
    }
    let slice = Slice::new();
    let mut t = Test::new("sd_pause");
    with_systemd_flag(&mut t);
    let (id, unit, _) = scoped(&t, &slice, "p", "sleep 100", json!({}));
    t.rt.start(&id).ok();
    let dir = scope_dir(&slice.name, &unit);
    let exec = t.rt.spawn(&["exec", &id, "sleep", "50"], &Opts::default());
    wait_until(Duration::from_secs(10), "the exec'd process in the scope", || read(&dir, "cgroup.procs").lines().count() == 2);
    t.rt.cmd(&["pause", &id]).ok();
    assert_eq!(t.rt.status(&id), "paused");
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    assert!(read(&dir, "cgroup.events").lines().any(|l| l == "frozen 1"));
    t.rt.cmd(&["resume", &id]).ok();
    assert_eq!(t.rt.status(&id), "running");
    assert!(read(&dir, "cgroup.events").lines().any(|l| l == "frozen 0"));
    t.rt.cmd(&["kill", "--all", &id, "KILL"]).ok();
    t.rt.wait_status(&id, "stopped", Duration::from_secs(20));
    let out = exec.wait(Duration::from_secs(20));
    assert!(!out.success(), "the exec'd sleep was killed too: {}", out.describe());
}

#[test]
fn delete_stops_the_unit_and_its_cgroup_goes() {
    if !host_has_systemd_on_v2("delete") {
        return;
    }
    let slice = Slice::new();
    let mut t = Test::new("sd_delete");
    with_systemd_flag(&mut t);
    // A created container, a running one (forced), a stopped one.
    let (a, unit_a, _) = scoped(&t, &slice, "c", "sleep 100", json!({"memory": {"limit": 104857600}}));
    let (b, unit_b, _) = scoped(&t, &slice, "r", "sleep 100", json!({}));
    t.rt.start(&b).ok();
    let (c, unit_c, _) = scoped(&t, &slice, "s", "exit 0", json!({}));
    t.rt.start(&c).ok();
    t.rt.wait_status(&c, "stopped", Duration::from_secs(20));
    t.rt.cmd(&["delete", &a]).ok();
    t.rt.cmd(&["delete", "--force", &b]).ok();
    t.rt.cmd(&["delete", &c]).ok();
    for unit in [unit_a, unit_b, unit_c] {
        assert_eq!(unit_property(&unit, "LoadState"), "not-found", "{unit} after delete");
        assert!(!scope_dir(&slice.name, &unit).exists(), "{unit}'s cgroup after delete");
    }
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn a_scope_name_in_use_is_refused_and_the_first_container_keeps_it() {
    if !host_has_systemd_on_v2("unit exists") {
        return;
    }
    let slice = Slice::new();
    let mut t = Test::new("sd_exists");
    with_systemd_flag(&mut t);
    let (id, unit, _) = scoped(&t, &slice, "one", "sleep 100", json!({}));
    let id2 = t.id("two");
    let mut b = t.bundle();
    b.sh("sleep 100");
    b.set("/linux/cgroupsPath", json!(format!("{}:berthit:{id}", slice.name)));
    let out = t.rt.create(&id2, &b);
    if matches!(flavor(), Flavor::Berth) {
        out.failed().stderr_has("already exists");
        assert!(t.rt.list_ids().iter().all(|i| *i != id2), "the second container is not left behind");
    } else {
        // runc 1.1 takes an existing unit for its own and joins the second init to it.
        out.ok();
    }
    assert_eq!(unit_property(&unit, "ActiveState"), "active", "the first container's scope");
    let pid = init_pid(&t, &id);
    assert!(read(&scope_dir(&slice.name, &unit), "cgroup.procs").lines().any(|l| l == pid.to_string()));
}

#[test]
fn a_failed_create_leaves_no_unit() {
    if !host_has_systemd_on_v2("failed create") {
        return;
    }
    let slice = Slice::new();
    let mut t = Test::new("sd_failed");
    with_systemd_flag(&mut t);
    let id = t.id("f");
    let mut b = t.bundle();
    b.args(&["/no/such/binary"]);
    b.set("/linux/cgroupsPath", json!(format!("{}:berthit:{id}", slice.name)));
    // The missing executable is found out in the container, after the scope exists.
    t.rt.create(&id, &b).failed();
    let unit = format!("berthit-{id}.scope");
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
    assert!(!scope_dir(&slice.name, &unit).exists());
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn property_annotations_reach_the_unit() {
    if !host_has_systemd_on_v2("annotations") {
        return;
    }
    let slice = Slice::new();
    let mut t = Test::new("sd_annotations");
    with_systemd_flag(&mut t);
    let id = t.id("an");
    let mut b = t.bundle();
    b.sh("sleep 100");
    b.set("/linux/cgroupsPath", json!(format!("{}:berthit:{id}", slice.name)));
    b.set("/annotations", json!({"org.systemd.property.TimeoutStopUSec": "uint64 5000000", "org.systemd.property.CollectMode": "'inactive-or-failed'"}));
    t.rt.create(&id, &b).ok();
    let unit = format!("berthit-{id}.scope");
    assert_eq!(unit_property(&unit, "TimeoutStopUSec"), "5s");
    assert_eq!(unit_property(&unit, "CollectMode"), "inactive-or-failed");
}

#[test]
fn without_systemd_the_driver_refuses_and_says_why() {
    if systemd_running() {
        eprintln!("skipped: systemd runs here (this checks the refusal where it does not)");
        return;
    }
    let mut t = Test::new("sd_absent");
    with_systemd_flag(&mut t);
    let id = t.id("x");
    let mut b = t.bundle();
    b.sh("sleep 100");
    b.set("/linux/cgroupsPath", json!(format!("system.slice:berthit:{id}")));
    let out = t.rt.create(&id, &b);
    out.failed();
    if matches!(flavor(), Flavor::Berth) {
        out.stderr_has("systemd is not running on this host");
    }
    assert!(t.rt.list_ids().is_empty());
}
