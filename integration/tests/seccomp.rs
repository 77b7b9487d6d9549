//! linux.seccomp in real containers: errno and kill actions, argument checks, podman's
//! default profile, both places the filter is loaded (noNewPrivileges true: just before
//! execve; false: before the capabilities are dropped), `exec`, and profiles refused by
//! field. The compiler's semantics are pinned by the unit tests in
//! runtime/src/linux/seccomp/tests.rs.

use berth_integration::*;

#[track_caller]
fn run_ok(t: &Test, b: &Bundle) -> String {
    let o = t.rt.run(&t.id(""), b);
    o.ok();
    o.stdout
}

const ARCHES: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

/// An allow-all profile with these rules.
fn allow_but(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES, "syscalls": rules})
}

#[test]
fn a_syscall_denied_by_name_fails_with_its_errno() {
    let t = Test::new("seccomp_errno");
    let mut b = t.bundle();
    b.writable();
    b.set(
        "/linux/seccomp",
        allow_but(json!([
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"},
        ])),
    );
    std::fs::create_dir(b.rootfs().join("keep")).unwrap();
    b.sh("mkdir /made 2>&1; echo mkdir=$?; rm -r /keep 2>&1; echo rmdir=$?; echo still running");
    let out = run_ok(&t, &b);
    assert!(out.contains("Operation not permitted") && out.contains("mkdir=1"), "{out}");
    assert!(out.contains("Permission denied") && out.contains("rmdir=1"), "{out}");
    assert!(out.contains("still running"), "{out}");
    assert!(!b.rootfs().join("made").exists(), "mkdir reached the kernel");
    assert!(b.rootfs().join("keep").exists(), "rmdir reached the kernel");
}

#[test]
fn an_argument_check_allows_one_call_and_denies_another() {
    let t = Test::new("seccomp_args");
    let mut b = t.bundle();
    // kill(pid, 0) is denied; kill(pid, SIGCONT) goes through.
    b.set(
        "/linux/seccomp",
        allow_but(json!([
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
        ])),
    );
    b.sh("kill -0 $$ 2>&1; echo probe=$?; kill -CONT $$; echo cont=$?");
    let out = run_ok(&t, &b);
    assert!(out.contains("probe=1") && out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("cont=0"), "{out}");
}

#[test]
fn a_personality_check_lets_one_persona_through() {
    let t = Test::new("seccomp_persona");
    let mut b = t.bundle();
    b.set(
        "/linux/seccomp",
        allow_but(json!([
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]},
        ])),
    );
    // busybox's linux32 sets PER_LINUX32 (8), linux64 PER_LINUX (0), then run the command.
    b.sh("/bin/busybox linux32 uname -m; echo linux32=$?; /bin/busybox linux64 true 2>&1; echo linux64=$?");
    let out = run_ok(&t, &b);
    assert!(out.contains("i686\nlinux32=0"), "{out}");
    assert!(out.contains("Operation not permitted") && out.contains("linux64=1"), "{out}");
}

#[test]
fn kill_actions_end_the_process_with_sigsys() {
    for act in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let t = Test::new("seccomp_kill");
        let mut b = t.bundle();
        b.set("/linux/seccomp", allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": act}])));
        b.args(&["mkdir", "/tmp/x"]);
        let o = t.rt.run(&t.id(""), &b);
        assert_eq!(o.code(), 128 + libc::SIGSYS, "{act}: the process should die of SIGSYS\n{}", o.describe());
    }
}

/// podman's default profile (Docker's format in /usr/share/containers/seccomp.json),
/// turned into the OCI form podman hands runtimes, for a container with `caps`.
fn podman_default_profile(caps: &[&str]) -> Option<Value> {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    let d: Value = serde_json::from_str(&text).ok()?;
    let arches: Vec<Value> = d["archMap"]
        .as_array()?
        .iter()
        .filter(|m| m["architecture"] == "SCMP_ARCH_X86_64")
        .flat_map(|m| std::iter::once(m["architecture"].clone()).chain(m["subArchitectures"].as_array().cloned().unwrap_or_default()))
        .collect();
    let strs = |v: &Value| -> Vec<String> { v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default() };
    let mut rules = Vec::new();
    for r in d["syscalls"].as_array()? {
        let (inc_caps, inc_arches) = (strs(&r["includes"]["caps"]), strs(&r["includes"]["arches"]));
        let (exc_caps, exc_arches) = (strs(&r["excludes"]["caps"]), strs(&r["excludes"]["arches"]));
        let included = inc_caps.iter().all(|c| caps.contains(&c.as_str())) && (inc_arches.is_empty() || inc_arches.iter().any(|a| a == "amd64"));
        let excluded = exc_caps.iter().any(|c| caps.contains(&c.as_str())) || exc_arches.iter().any(|a| a == "amd64");
        if !included || excluded {
            continue;
        }
        // As podman hands them on: the file's `"args": null` (Go's empty slice) included.
        let o = json!({"names": r["names"], "action": r["action"], "errnoRet": r["errnoRet"], "args": r["args"]});
        rules.push(o);
    }
    let mut p = json!({"defaultAction": d["defaultAction"], "architectures": arches, "syscalls": rules});
    if !d["defaultErrnoRet"].is_null() {
        p["defaultErrnoRet"] = d["defaultErrnoRet"].clone();
    }
    Some(p)
}

#[test]
fn podmans_default_profile_runs_a_shell() {
    let t = Test::new("seccomp_podman");
    let mut b = t.bundle();
    let caps: Vec<String> = b.config["process"]["capabilities"]["bounding"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
    let Some(profile) = podman_default_profile(&caps) else {
        // Without the file there is nothing to test: say so loudly rather than pass quietly.
        panic!("/usr/share/containers/seccomp.json is missing: apt-get install golang-github-containers-common");
    };
    assert!(profile["syscalls"].as_array().unwrap().len() > 10);
    b.set("/linux/seccomp", profile);
    b.sh("echo hello from $(id -u); ls / | wc -l; cat /proc/self/status | grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs):'; \
          x=$(seq 3 | sort -r | tr '\\n' ,); echo \"pipes $x\"; sleep 0.1 & wait; echo waited=$?; \
          /bin/busybox unshare -m true 2>&1; echo unshare=$?");
    let out = run_ok(&t, &b);
    assert!(out.contains("hello from 0"), "{out}");
    assert!(out.contains("pipes 3,2,1,"), "{out}");
    assert!(out.contains("waited=0"), "{out}");
    let st = status_fields(&out);
    assert_eq!(st.get("Seccomp").map(String::as_str), Some("2"), "no filter in place:\n{out}");
    assert_eq!(st.get("NoNewPrivs").map(String::as_str), Some("1"), "{out}");
    // unshare is allowed by the profile but needs CAP_SYS_ADMIN, which the default lacks.
    assert!(out.contains("unshare=1"), "{out}");
}

#[test]
fn without_no_new_privileges_the_filter_is_loaded_before_the_user_switch() {
    // Loading a filter needs no_new_privs or CAP_SYS_ADMIN: with noNewPrivileges false the
    // runtime must load it while it still has CAP_SYS_ADMIN, before dropping to uid 1000
    // and the default capabilities.
    let t = Test::new("seccomp_privs");
    let mut b = t.bundle();
    b.set("/process/noNewPrivileges", json!(false));
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.set(
        "/linux/seccomp",
        allow_but(json!([
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
        ])),
    );
    b.sh("id -u; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; kill -0 $$ 2>&1; echo probe=$?");
    let out = run_ok(&t, &b);
    let st = status_fields(&out);
    assert!(out.starts_with("1000\n"), "{out}");
    assert_eq!(st.get("NoNewPrivs").map(String::as_str), Some("0"), "{out}");
    assert_eq!(st.get("Seccomp").map(String::as_str), Some("2"), "{out}");
    assert!(out.contains("probe=1") && out.contains("Operation not permitted"), "{out}");
}

#[test]
fn exec_processes_get_the_filter() {
    let t = Test::new("seccomp_exec");
    let id = t.id("");
    let mut b = t.bundle();
    b.writable();
    b.set("/linux/seccomp", allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}])));
    b.args(&["sleep", "100"]);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    let o = t.rt.cmd(&["exec", &id, "sh", "-c", "mkdir /made 2>&1; echo rc=$?; grep '^Seccomp:' /proc/self/status"]);
    o.ok();
    assert!(o.stdout.contains("Operation not permitted") && o.stdout.contains("rc=1"), "{}", o.describe());
    assert!(o.stdout.contains("Seccomp:\t2"), "{}", o.describe());
    assert!(!b.rootfs().join("made").exists());
    t.rt.kill(&id, "KILL");
}

#[test]
fn unknown_names_are_refused_by_field_before_anything_runs() {
    let cases = [
        (json!({"defaultAction": "SCMP_ACT_SOMETIMES"}), "linux.seccomp.defaultAction", "SCMP_ACT_SOMETIMES"),
        (
            allow_but(json!([{"names": ["read"], "action": "SCMP_ACT_LOG"}, {"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}])),
            "linux.seccomp.syscalls[1].action",
            "SCMP_ACT_BOGUS",
        ),
        (
            allow_but(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}])),
            "linux.seccomp.syscalls[0].args[0].op",
            "SCMP_CMP_ABOUT",
        ),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}), "linux.seccomp.architectures[0]", "SCMP_ARCH_PDP11"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}), "linux.seccomp.flags[0]", "SECCOMP_FILTER_FLAG_FAST"),
    ];
    for (profile, field, name) in cases {
        let t = Test::new("seccomp_refused");
        let mut b = t.bundle();
        b.set("/linux/seccomp", profile);
        b.sh("echo the process ran");
        let o = t.rt.run(&t.id(""), &b);
        o.failed();
        assert!(!o.stdout.contains("the process ran"), "{}", o.describe());
        if flavor().is_runc() {
            // runc words these its own way (and some only when loading the filter).
            assert!(o.stderr.to_lowercase().contains("seccomp") || o.stderr.contains(name) || o.stderr.contains("invalid"), "{}", o.describe());
        } else {
            o.stderr_has(field).stderr_has(name);
        }
    }
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let t = Test::new("seccomp_unknown_syscall");
    let mut b = t.bundle();
    b.set("/linux/seccomp", allow_but(json!([{"names": ["no_such_syscall", "_llseek_x"], "action": "SCMP_ACT_KILL_PROCESS"}])));
    b.sh("echo fine");
    assert_eq!(run_ok(&t, &b), "fine\n");
}

/// A profile whose mkdir goes to the agent at `sock`.
fn notify_mkdir(sock: &std::path::Path) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES, "listenerPath": sock, "listenerMetadata": "agent-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]})
}

#[test]
fn notify_hands_the_listener_to_the_agent_which_answers_the_syscall() {
    // Both places the filter is loaded: noNewPrivileges (late) and without (before the
    // capabilities are dropped).
    for nnp in [true, false] {
        let t = Test::new(if nnp { "seccomp_notify_nnp" } else { "seccomp_notify" });
        let sock = t.path("agent.sock");
        let agent = berth_integration::seccomp_agent::Agent::start(&sock, libc::EXDEV);
        let mut b = t.bundle();
        b.writable();
        b.set("/process/noNewPrivileges", json!(nnp));
        b.set("/linux/seccomp", notify_mkdir(&sock));
        b.sh("mkdir /made 2>&1; echo mkdir=$?; echo still running");
        let id = t.id("");
        let o = t.rt.run(&id, &b);
        let seen = agent.finish();
        o.ok();
        assert!(o.stdout.contains("Invalid cross-device link") && o.stdout.contains("mkdir=1"), "nnp {nnp}: {}", o.describe());
        assert!(o.stdout.contains("still running"), "{}", o.describe());
        assert!(!b.rootfs().join("made").exists(), "mkdir reached the kernel");
        assert_eq!(seen.messages.len(), 1, "{seen:?}");
        let m = &seen.messages[0];
        assert_eq!(m["fds"], json!(["seccompFd"]), "{m}");
        assert_eq!(m["metadata"], "agent-meta", "{m}");
        assert!(m["pid"].as_i64().unwrap_or(0) > 0, "{m}");
        assert_eq!(m["state"]["id"], json!(id), "{m}");
        assert_eq!(m["state"]["status"], "creating", "{m}");
        assert!(m["ociVersion"].as_str().is_some_and(|v| v.starts_with("1.")), "{m}");
        assert!(!seen.syscalls.is_empty(), "{seen:?}");
    }
}

#[test]
fn notify_without_an_agent_fails_naming_its_socket_and_runs_nothing() {
    let t = Test::new("seccomp_notify_noagent");
    let mut b = t.bundle();
    b.set("/linux/seccomp", notify_mkdir(&t.path("agent.sock")));
    b.sh("echo the process ran");
    let o = t.rt.run(&t.id(""), &b);
    o.failed();
    assert!(o.stderr.contains("agent.sock"), "{}", o.describe());
    assert!(!o.stdout.contains("the process ran"), "{}", o.describe());
    if !flavor().is_runc() {
        let mut b = t.bundle();
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
        t.rt.run(&t.id("nopath"), &b).failed().stderr_has("needs linux.seccomp.listenerPath");
    }
}

#[test]
fn exec_processes_hand_their_listener_to_the_agent() {
    let t = Test::new("seccomp_notify_exec");
    let sock = t.path("agent.sock");
    let agent = berth_integration::seccomp_agent::Agent::start(&sock, libc::EXDEV);
    let mut b = t.bundle();
    b.writable();
    b.set("/linux/seccomp", notify_mkdir(&sock));
    b.args(&["sleep", "100"]);
    let id = t.id("");
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    let o = t.rt.cmd(&["exec", &id, "sh", "-c", "mkdir /exec-made 2>&1; echo mkdir=$?"]);
    t.rt.kill(&id, "KILL").ok();
    t.rt.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
    t.rt.delete(&id).ok();
    let seen = agent.finish();
    assert!(o.stdout.contains("Invalid cross-device link"), "{}", o.describe());
    assert_eq!(seen.messages.len(), 2, "one for the init, one for the exec: {seen:?}");
    assert_eq!(seen.messages[1]["state"]["status"], "running", "{seen:?}");
    assert!(!b.rootfs().join("exec-made").exists());
}
