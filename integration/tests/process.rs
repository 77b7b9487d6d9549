//! The process: args, env, cwd, user (uid, gid, additionalGids, umask), capabilities,
//! rlimits, noNewPrivileges, oomScoreAdj, sysctl, and fields a runtime cannot apply
//! here, which must fail clearly rather than be ignored.

use berth_integration::*;
use std::collections::BTreeMap;

#[track_caller]
fn run_ok(t: &Test, b: &Bundle) -> String {
    let o = t.rt.run(&t.id(""), b);
    o.ok();
    o.stdout
}

/// /proc/self/status of the container's process, as a map.
#[track_caller]
fn status_inside(t: &Test, b: &mut Bundle) -> BTreeMap<String, String> {
    b.args(&["cat", "/proc/self/status"]);
    status_fields(&run_ok(t, b))
}

#[test]
fn args_are_passed_verbatim() {
    let t = Test::new("args");
    let mut b = t.bundle();
    b.args(&["sh", "-c", "printf '[%s]' \"$0\" \"$@\"", "zero", "with space", "it's", "$HOME", ""]);
    assert_eq!(run_ok(&t, &b), "[zero][with space][it's][$HOME][]");
}

#[test]
fn env_is_the_configs() {
    let t = Test::new("env");
    let mut b = t.bundle();
    b.env("WITH_SPACE=a b  c").env("EMPTY=").env("EQUALS=x=y");
    b.args(&["env"]);
    let out = run_ok(&t, &b);
    let got: Vec<&str> = out.lines().collect();
    let want: Vec<String> = b.config["process"]["env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    for w in &want {
        assert!(got.contains(&w.as_str()), "{w:?} missing from {got:?}");
    }
    // Nothing of the runtime's own environment; runc adds HOME when the config has none.
    for g in got.iter().filter(|g| !want.iter().any(|w| w == *g)) {
        assert!(g.starts_with("HOME="), "unexpected variable {g:?} in {got:?}");
    }
}

#[test]
fn cwd_is_the_working_directory() {
    let t = Test::new("cwd");
    let mut b = t.bundle();
    b.set("/process/cwd", json!("/etc"));
    b.args(&["pwd"]);
    assert_eq!(run_ok(&t, &b), "/etc\n");
}

#[test]
fn a_missing_cwd_is_created() {
    // As runc does (images often name a WORKDIR that is not in the rootfs).
    let t = Test::new("cwd_missing");
    let mut b = t.bundle();
    b.set("/process/cwd", json!("/does/not/exist"));
    b.args(&["pwd"]);
    assert_eq!(run_ok(&t, &b), "/does/not/exist\n");
}

#[test]
fn user_uid_gid_and_additional_gids_are_set() {
    let t = Test::new("user_ids");
    let mut b = t.bundle();
    b.set("/process/user", json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 1002]}));
    let st = status_inside(&t, &mut b);
    assert_eq!(st["Uid"].split_whitespace().collect::<Vec<_>>(), ["1000"; 4]);
    assert_eq!(st["Gid"].split_whitespace().collect::<Vec<_>>(), ["1001"; 4]);
    let mut groups: Vec<&str> = st["Groups"].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1002", "5"]);
}

#[test]
fn root_without_additional_gids_has_no_supplementary_groups() {
    let t = Test::new("user_nogroups");
    let mut b = t.bundle();
    let st = status_inside(&t, &mut b);
    assert_eq!(st["Uid"].split_whitespace().collect::<Vec<_>>(), ["0"; 4]);
    assert_eq!(st["Groups"], "", "supplementary groups leaked in: {:?}", st["Groups"]);
}

#[test]
fn umask_is_applied() {
    let t = Test::new("umask");
    let mut b = t.bundle();
    b.set("/process/user/umask", json!(0o027));
    b.sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    b.mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    assert_eq!(run_ok(&t, &b), "0027\n640\n");
}

/// The capability mask of these names, as /proc/self/status prints it.
fn mask(names: &[&str]) -> String {
    let bit = |n: &str| match n {
        "CAP_CHOWN" => 0,
        "CAP_KILL" => 5,
        "CAP_SETUID" => 7,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_AUDIT_WRITE" => 29,
        other => panic!("add {other} to the table"),
    };
    format!("{:016x}", names.iter().fold(0u64, |m, n| m | 1 << bit(n)))
}

#[test]
fn default_capabilities_are_runcs_three() {
    let t = Test::new("caps_default");
    let mut b = t.bundle();
    let st = status_inside(&t, &mut b);
    let three = mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(st["CapBnd"], three);
    assert_eq!(st["CapPrm"], three);
    assert_eq!(st["CapEff"], three);
    assert_eq!(st["CapInh"], mask(&[]));
    // Root's exec of a file without capabilities clears the ambient set.
    assert_eq!(st["CapAmb"], mask(&[]));
}

#[test]
fn all_five_capability_sets_are_applied_for_a_non_root_user() {
    let t = Test::new("caps_sets");
    let mut b = t.bundle();
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.set("/process/noNewPrivileges", json!(false));
    b.set(
        "/process/capabilities",
        json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID"],
            "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"],
            "effective": ["CAP_KILL"],
            "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
            "ambient": ["CAP_KILL"],
        }),
    );
    let st = status_inside(&t, &mut b);
    // After exec of a file without file capabilities, a non-root process keeps its
    // bounding and inheritable sets and gets permitted = effective = ambient.
    assert_eq!(st["CapBnd"], mask(&["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID"]));
    assert_eq!(st["CapInh"], mask(&["CAP_KILL", "CAP_NET_RAW"]));
    assert_eq!(st["CapAmb"], mask(&["CAP_KILL"]));
    assert_eq!(st["CapPrm"], mask(&["CAP_KILL"]));
    assert_eq!(st["CapEff"], mask(&["CAP_KILL"]));
}

#[test]
fn permitted_and_effective_capabilities_are_applied_for_root() {
    let t = Test::new("caps_root");
    let mut b = t.bundle();
    b.set(
        "/process/capabilities",
        json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_KILL", "CAP_CHOWN"],
        }),
    );
    // With noNewPrivileges root's exec cannot gain more than the permitted set.
    let st = status_inside(&t, &mut b);
    assert_eq!(st["CapBnd"], mask(&["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID"]));
    assert_eq!(st["CapPrm"], mask(&["CAP_KILL", "CAP_CHOWN"]));
    assert_eq!(st["CapEff"], mask(&["CAP_KILL", "CAP_CHOWN"]));
}

#[test]
fn an_absent_bounding_set_keeps_no_capability_and_unknown_names_are_skipped_with_a_warning() {
    let t = Test::new("caps_absent");
    let mut b = t.bundle();
    // As runc reads the spec: a set the config leaves out is empty; a name this kernel
    // (or the runtime) does not know, such as one from a newer engine, is only warned about.
    b.set("/process/capabilities", json!({"effective": ["CAP_KILL", "CAP_NOT_YET_INVENTED"], "permitted": ["CAP_KILL"]}));
    b.args(&["cat", "/proc/self/status"]);
    let o = t.rt.run(&t.id(""), &b);
    o.ok().stderr_has("CAP_NOT_YET_INVENTED");
    let st = status_fields(&o.stdout);
    // Root's exec keeps at most the bounding set in permitted and effective.
    for set in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(st[set], mask(&[]), "{set}");
    }
}

#[test]
fn go_nulls_in_a_config_read_as_absent() {
    let t = Test::new("go_nulls");
    let mut b = t.bundle();
    // What an engine written in Go sends for empty slices and maps.
    for p in ["/mounts/0/options", "/process/rlimits", "/annotations", "/linux/maskedPaths", "/linux/sysctl", "/linux/uidMappings"] {
        b.set(p, Value::Null);
    }
    b.set("/process/user/additionalGids", Value::Null);
    b.set("/hooks", json!({"prestart": null, "poststop": [{"path": "/bin/true", "args": null, "env": null}]}));
    b.set("/linux/resources/hugepageLimits", Value::Null);
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": null, "flags": null,
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": null}]}),
    );
    b.writable();
    b.sh("mkdir /made 2>&1; echo mkdir=$?; cat /proc/self/status");
    let out = run_ok(&t, &b);
    assert!(out.contains("mkdir=1"), "the seccomp rule with null args did not apply: {out}");
    assert_eq!(status_fields(&out)["CapBnd"], mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]));
}

#[test]
fn rlimits_are_set() {
    let t = Test::new("rlimits");
    let mut b = t.bundle();
    b.set(
        "/process/rlimits",
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        ]),
    );
    b.sh("ulimit -Sn; ulimit -Hn; grep -E '^Max (open files|core file size)' /proc/self/limits");
    let out = run_ok(&t, &b);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["512"]);
    assert_eq!(lines[1], ["1000"]);
    let core = lines.iter().find(|l| l.starts_with(&["Max", "core"])).expect("core limit line");
    assert_eq!(core[4..6], ["0", "4096"], "{out}");
}

#[test]
fn default_rlimit_is_1024_open_files() {
    let t = Test::new("rlimit_default");
    let mut b = t.bundle();
    b.sh("ulimit -Sn; ulimit -Hn");
    assert_eq!(run_ok(&t, &b), "1024\n1024\n");
}

#[test]
fn no_new_privileges_is_set_as_configured() {
    let t = Test::new("nnp");
    assert_eq!(host::status_field(std::process::id() as i32, "NoNewPrivs").as_deref(), Some("0"), "the test process already has no_new_privs");
    let mut b = t.bundle();
    assert_eq!(status_inside(&t, &mut b)["NoNewPrivs"], "1");
    b.set("/process/noNewPrivileges", json!(false));
    let o = t.rt.run(&t.id("off"), &b);
    o.ok();
    assert_eq!(status_fields(&o.stdout)["NoNewPrivs"], "0");
}

#[test]
fn oom_score_adj_is_set() {
    let t = Test::new("oom");
    let mut b = t.bundle();
    b.set("/process/oomScoreAdj", json!(567));
    b.args(&["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(run_ok(&t, &b), "567\n");
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces_only() {
    let t = Test::new("sysctl");
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_msgmax = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    let fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    let mut b = t.bundle();
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": fwd, "kernel.msgmax": "12345"}));
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax");
    assert_eq!(run_ok(&t, &b), format!("{fwd}\n12345\n"));
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(), host_fwd);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap(), host_msgmax);
}

#[test]
fn seccomp_is_enforced_or_refused_never_ignored() {
    let t = Test::new("seccomp");
    let mut b = t.bundle();
    b.writable();
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
        }),
    );
    b.sh("mkdir /made 2>&1; echo rc=$?");
    let o = t.rt.run(&t.id(""), &b);
    if o.success() {
        assert!(o.stdout.contains("Operation not permitted") && o.stdout.contains("rc=1"), "the seccomp filter was not applied:\n{}", o.describe());
        assert!(!b.rootfs().join("made").exists());
    } else {
        assert!(o.stderr.to_lowercase().contains("seccomp"), "the refusal does not say why:\n{}", o.describe());
    }
}

#[test]
fn unknown_rlimit_type_is_refused_by_name() {
    let t = Test::new("rlimit_bogus");
    let mut b = t.bundle();
    b.push("/process/rlimits", json!({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}));
    t.rt.run(&t.id(""), &b).failed().stderr_has("RLIMIT_BOGUS");
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn selinux_label_without_selinux_is_refused_clearly() {
    let t = Test::new("selinux");
    assert!(!std::path::Path::new("/sys/fs/selinux/enforce").exists(), "this test assumes a host without SELinux");
    let mut b = t.bundle();
    b.set("/process/selinuxLabel", json!("system_u:system_r:container_t:s0"));
    let o = t.rt.run(&t.id(""), &b);
    o.failed();
    assert!(o.stderr.to_lowercase().contains("selinux"), "{}", o.describe());
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn apparmor_profile_without_apparmor_is_refused_clearly() {
    let t = Test::new("apparmor");
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").map(|s| s.trim() == "Y").unwrap_or(false);
    assert!(!enabled, "this test assumes a host without AppArmor");
    let mut b = t.bundle();
    b.set("/process/apparmorProfile", json!("berth-it-no-such-profile"));
    let o = t.rt.run(&t.id(""), &b);
    o.failed();
    assert!(o.stderr.to_lowercase().contains("apparmor"), "{}", o.describe());
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn a_non_root_user_can_reopen_its_stdio_pipes() {
    // nginx as a non-root user logs to /dev/stdout: reopening a pipe through /proc/self/fd
    // checks the pipe's owner, so the runtime hands the caller's pipes to the user.
    let t = Test::new("stdio_user");
    let mut b = t.bundle();
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.sh("echo hi > /dev/stdout && echo warn > /dev/stderr && stat -L -c %u /proc/self/fd/1");
    b.write();
    // The harness gives runtimes files for stdio; this needs pipes.
    let mut cmd = std::process::Command::new(paths::runtime());
    cmd.arg("--root").arg(t.path("state")).args(["run", "--bundle"]).arg(&b.dir).arg(t.id(""));
    let o = procs::output(&mut cmd).unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{}: stdout {out:?} stderr {err:?}", o.status);
    assert_eq!(out, "hi\n1000\n");
    assert!(err.contains("warn"), "{err:?}");
}
