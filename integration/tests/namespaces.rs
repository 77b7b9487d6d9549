//! linux.namespaces (new ones, and joined by path), hostname and domainname, checked
//! from inside the container and against the host's namespaces.

use berth_integration::*;
use std::collections::BTreeMap;

/// Runs `b` to completion and returns its stdout; panics unless it exits 0.
#[track_caller]
fn run_ok(t: &Test, b: &Bundle) -> String {
    let o = t.rt.run(&t.id(""), b);
    o.ok();
    o.stdout
}

/// `readlink /proc/self/ns/X` for each X, as printed by the container, by name.
fn ns_script(kinds: &[&str]) -> String {
    kinds.iter().map(|k| format!("echo {k}=$(readlink /proc/self/ns/{k});")).collect()
}

fn parse_kv(out: &str) -> BTreeMap<String, String> {
    out.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const KINDS: &[&str] = &["pid", "mnt", "net", "ipc", "uts", "cgroup"];

#[test]
fn every_configured_namespace_is_new() {
    let t = Test::new("ns_new");
    let mut b = t.bundle();
    // The default config asks for pid, network, ipc, uts, mount and cgroup namespaces.
    b.sh(&ns_script(KINDS));
    let inside = parse_kv(&run_ok(&t, &b));
    for k in KINDS {
        let host = host::ns_link("self", k);
        let c = inside.get(*k).unwrap_or_else(|| panic!("no {k} line in {inside:?}"));
        assert!(c.starts_with(&format!("{k}:[")), "{k}: {c}");
        assert_ne!(c, &host, "the container shares the host's {k} namespace");
    }
}

#[test]
fn a_namespace_not_in_the_config_is_the_hosts() {
    let t = Test::new("ns_absent");
    let mut b = t.bundle();
    b.without_namespace("network").without_namespace("ipc");
    b.sh(&ns_script(&["net", "ipc", "uts"]));
    let inside = parse_kv(&run_ok(&t, &b));
    assert_eq!(inside["net"], host::ns_link("self", "net"));
    assert_eq!(inside["ipc"], host::ns_link("self", "ipc"));
    assert_ne!(inside["uts"], host::ns_link("self", "uts"));
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let t = Test::new("ns_pid");
    let mut b = t.bundle();
    b.sh("echo $$; ps -o pid | wc -l");
    let out = run_ok(&t, &b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"));
    // Only this container's processes are visible: the header, sh, ps and wc.
    let n: usize = lines.next().unwrap_or("0").trim().parse().unwrap();
    assert!(n <= 4, "{n} lines of ps: the container sees other processes\n{out}");
}

#[test]
fn network_namespace_has_only_loopback() {
    let t = Test::new("ns_net");
    let mut b = t.bundle();
    b.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    assert_eq!(run_ok(&t, &b).trim(), "lo");
}

#[test]
fn cgroup_namespace_roots_the_containers_cgroups() {
    let t = Test::new("ns_cgroup");
    let mut b = t.bundle();
    b.sh("cat /proc/self/cgroup");
    let out = run_ok(&t, &b);
    assert!(!out.is_empty());
    for l in out.lines() {
        assert!(l.ends_with(":/"), "cgroup line {l:?} is not the namespace root\n{out}");
    }
}

#[test]
fn hostname_and_domainname_are_set_in_the_uts_namespace() {
    let t = Test::new("hostname");
    let mut b = t.bundle();
    b.set("/hostname", json!("box-name"));
    b.set("/domainname", json!("example.test"));
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    let out = run_ok(&t, &b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box-name");
    if flavor().is_runc_before(1, 2) {
        // runc 1.1 ignores "domainname" (support came in runc 1.2).
        assert_eq!(lines[1], "(none)");
    } else {
        assert_eq!(lines[1], "example.test");
    }
    // The host's name is untouched.
    assert_ne!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim(), "box-name");
}

#[test]
fn namespaces_are_joined_by_path() {
    let t = Test::new("ns_join");
    let owner = t.id("owner");
    let mut a = t.bundle();
    a.args(&["sleep", "100"]);
    a.set("/hostname", json!("owner-host"));
    t.rt.create(&owner, &a).ok();
    let pid = t.rt.state(&owner)["pid"].as_i64().unwrap();

    let mut b = t.bundle();
    b.remove("/hostname"); // setting it would rename the owner's uts namespace
    for (typ, link) in [("network", "net"), ("ipc", "ipc"), ("uts", "uts")] {
        b.namespace(typ, Some(&format!("/proc/{pid}/ns/{link}")));
    }
    b.sh(&format!("{} echo host=$(hostname)", ns_script(&["net", "ipc", "uts", "mnt"])));
    let inside = parse_kv(&run_ok(&t, &b));
    for k in ["net", "ipc", "uts"] {
        assert_eq!(inside[k], host::ns_link(&pid.to_string(), k), "{k} namespace not joined");
    }
    assert_eq!(inside["host"], "owner-host");
    // The mount namespace was not in the list of joined ones: it is new.
    assert_ne!(inside["mnt"], host::ns_link(&pid.to_string(), "mnt"));
}

#[test]
fn pid_namespace_is_joined_by_path() {
    let t = Test::new("ns_join_pid");
    let owner = t.id("owner");
    let mut a = t.bundle();
    a.args(&["sleep", "100"]);
    t.rt.create(&owner, &a).ok();
    t.rt.start(&owner).ok();
    let pid = t.rt.state(&owner)["pid"].as_i64().unwrap();

    let mut b = t.bundle();
    b.namespace("pid", Some(&format!("/proc/{pid}/ns/pid")));
    // The owner's sleep is pid 1 of the joined namespace.
    b.sh("cat /proc/1/cmdline | tr '\\0' ' '; echo; echo self=$$");
    let out = run_ok(&t, &b);
    assert!(out.starts_with("sleep 100"), "{out}");
    assert!(!out.contains("self=1\n"), "the joiner became pid 1 of a new namespace\n{out}");
}

#[test]
fn time_namespace_is_new_with_the_configured_offsets() {
    let t = Test::new("ns_time");
    let mut b = t.bundle();
    b.namespace("time", None);
    // 1000 days of boot time: /proc/uptime inside shows it.
    b.set("/linux/timeOffsets", json!({"boottime": {"secs": 86_400_000, "nanosecs": 0}}));
    b.sh("readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime");
    let o = t.rt.run(&t.id(""), &b);
    if flavor().is_runc_before(1, 2) {
        // runc 1.1 has no time namespace support (added in runc 1.2): it refuses the config.
        o.failed().stderr_has("time");
        return;
    }
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_ne!(lines[0], host::ns_link("self", "time"), "the time namespace is the host's");
    let uptime: u64 = lines[1].parse().unwrap_or_else(|_| panic!("uptime {:?}", lines[1]));
    assert!(uptime >= 86_400_000, "uptime {uptime}s: the boottime offset was not applied");
}

/// The host's "/" as mountinfo shows it: its options and propagation.
fn host_root_entry() -> (String, Vec<String>) {
    let m = host::mountinfo("self").into_iter().find(|m| m.mount_point == "/").expect("a / mount");
    (m.options, m.optional)
}

#[test]
fn without_a_mount_namespace_the_container_shares_the_hosts_and_leaves_no_mounts() {
    let t = Test::new("ns_no_mnt");
    let id = t.id("");
    let mut b = t.bundle();
    b.without_namespace("mount");
    // These would change the host's own mounts: refused without a mount namespace.
    b.remove("/linux/maskedPaths").remove("/linux/readonlyPaths");
    std::fs::write(b.rootfs().join("marker"), "in-rootfs").unwrap();
    b.sh("readlink /proc/self/ns/mnt; cat /marker; echo; test -e /proc/self/status && echo proc-mounted; \
          touch /x 2>/dev/null && echo root-rw || echo root-ro; echo done; exec sleep 100");
    let root_before = host_root_entry();
    let created = t.rt.create(&id, &b);
    created.ok();
    // The container's mounts are made in the host's namespace, below its rootfs.
    let rootfs = b.rootfs();
    let during = host::mounts_under(&rootfs);
    assert!(during.contains(&rootfs.join("proc").to_string_lossy().into_owned()), "{during:?}");
    t.rt.start(&id).ok();
    let out = created.wait_stdout("done\n", std::time::Duration::from_secs(20));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], host::ns_link("self", "mnt"), "not the host's mount namespace");
    assert_eq!(&lines[1..3], ["in-rootfs", "proc-mounted"], "not chrooted into its rootfs with /proc: {out}");
    // runc ignores root.readonly without a mount namespace; berth makes its own bind of
    // the rootfs read-only (the host's filesystem stays writable).
    assert_eq!(lines[3], if flavor().is_runc() { "root-rw" } else { "root-ro" });
    std::fs::write(t.path("still-writable"), "x").unwrap();
    // exec enters the container's root too, though there is no mount namespace to join.
    let e = t.rt.cmd(&["exec", &id, "cat", "/marker"]);
    if flavor().is_runc() {
        // runc's exec stays in the host's root, where there is no /marker.
        assert!(!e.success(), "{}", e.describe());
    } else {
        assert_eq!(e.ok().stdout, "in-rootfs");
    }
    t.rt.kill(&id, "KILL").ok();
    t.rt.wait_status(&id, "stopped", std::time::Duration::from_secs(20));
    t.rt.delete(&id).ok();
    assert_eq!(host_root_entry(), root_before, "the host's / changed");
    let left = host::mounts_under(&b.dir);
    if flavor().is_runc() {
        // runc makes the mounts in the host's namespace and leaves them there.
        assert!(!left.is_empty(), "runc is expected to leave its mounts");
        host::umount(&rootfs).unwrap();
        assert_eq!(host::mounts_under(&b.dir), Vec::<String>::new());
    } else {
        assert_eq!(left, Vec::<String>::new(), "mounts left in the host's mount namespace");
    }
}

#[test]
fn without_a_mount_namespace_masked_paths_are_refused() {
    let t = Test::new("ns_no_mnt_masked");
    let mut b = t.bundle();
    b.without_namespace("mount");
    t.rt.run(&t.id(""), &b).failed().stderr_has("unable to restrict sys entries without a private MNT namespace");
    assert_eq!(host::mounts_under(&b.dir), Vec::<String>::new());
}
