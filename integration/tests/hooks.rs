//! The six hooks: run in the spec's order, in the right namespaces, with the state on
//! stdin; a failing create-phase hook fails create and leaves nothing; a failing
//! poststart/poststop hook is a warning and the lifecycle goes on.

use berth_integration::*;
use std::os::unix::fs::PermissionsExt;

/// A hook script that appends "<name> <mnt ns of the hook> <status from stdin>" to `log`.
fn hook(t: &Test, name: &str, log: &std::path::Path, exit: i32) -> Value {
    let p = t.path(&format!("hook-{name}.sh"));
    std::fs::write(&p, format!(
        "#!/bin/sh\nstate=$(cat)\nstatus=$(echo \"$state\" | sed -n 's/.*\"status\": *\"\\([a-z]*\\)\".*/\\1/p')\necho \"{name} $(readlink /proc/self/ns/mnt) $status\" >> {}\nexit {exit}\n",
        log.display())).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    json!([{"path": p, "args": [name]}])
}

#[test]
fn all_six_hooks_run_in_order_in_their_namespaces_with_the_state() {
    let t = Test::new("hooks_order");
    let id = t.id("");
    let log = t.path("hooks.log");
    let mut b = t.bundle();
    b.args(&["true"]);
    for (k, name) in [
        ("prestart", "prestart"),
        ("createRuntime", "createRuntime"),
        ("createContainer", "createContainer"),
        ("startContainer", "startContainer"),
        ("poststart", "poststart"),
        ("poststop", "poststop"),
    ] {
        b.set(&format!("/hooks/{k}"), hook(&t, name, &log, 0));
    }
    // startContainer runs inside the container: its script must be visible there.
    let inner = b.rootfs().join("hook-startContainer.sh");
    std::fs::copy(t.path("hook-startContainer.sh"), &inner).unwrap();
    std::fs::write(&inner, std::fs::read_to_string(&inner).unwrap().replace(log.to_str().unwrap(), "/dev/null; echo startContainer-ran > /tmp/start-hook"))
        .unwrap();
    b.writable();
    b.set("/hooks/startContainer", json!([{"path": "/hook-startContainer.sh"}]));
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    t.rt.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
    t.rt.delete(&id).ok();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    let names: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    assert_eq!(names, ["prestart", "createRuntime", "createContainer", "poststart", "poststop"], "{text}");
    assert!(b.rootfs().join("tmp/start-hook").exists(), "startContainer did not run in the container");
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap().to_string_lossy().into_owned();
    let mnt = |n: &str| lines.iter().find(|l| l[0] == n).unwrap()[1];
    // Runtime-namespace hooks see the host's mount namespace; createContainer the container's.
    for n in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(mnt(n), host_mnt, "{n} ran outside the runtime namespace: {text}");
    }
    assert_ne!(mnt("createContainer"), host_mnt, "createContainer ran in the host mount namespace: {text}");
    // The state arrived on stdin.
    let status = |n: &str| lines.iter().find(|l| l[0] == n).unwrap().get(2).copied().unwrap_or("");
    assert!(!status("createRuntime").is_empty() && status("poststop") == "stopped", "{text}");
}

#[test]
fn a_failing_create_phase_hook_fails_create_and_leaves_nothing() {
    let t = Test::exclusive("hooks_fail_create");
    let before = t.snapshot();
    let id = t.id("");
    let log = t.path("hooks.log");
    let mut b = t.bundle();
    b.args(&["true"]);
    b.set("/hooks/createRuntime", hook(&t, "createRuntime", &log, 3));
    let o = t.rt.create(&id, &b);
    o.failed();
    assert!(o.stderr.contains("createRuntime") || o.stderr.contains("hook"), "{}", o.describe());
    assert!(!t.rt.cmd(&["list", "-q"]).stdout.contains(&id));
    t.assert_nothing_left(&before, None);
}

#[test]
fn failing_poststart_and_poststop_hooks_do_not_stop_the_lifecycle() {
    let t = Test::new("hooks_fail_post");
    let id = t.id("");
    let log = t.path("hooks.log");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let mut post = hook(&t, "poststart-a", &log, 1);
    post.as_array_mut().unwrap().extend(hook(&t, "poststart-b", &log, 0).as_array().unwrap().clone());
    b.set("/hooks/poststart", post);
    let mut stop = hook(&t, "poststop-a", &log, 1);
    stop.as_array_mut().unwrap().extend(hook(&t, "poststop-b", &log, 0).as_array().unwrap().clone());
    b.set("/hooks/poststop", stop);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    assert_eq!(t.rt.status(&id), "running");
    t.rt.cmd(&["delete", "--force", &id]).ok();
    let text = std::fs::read_to_string(&log).unwrap();
    for n in ["poststart-a", "poststart-b", "poststop-a", "poststop-b"] {
        assert!(text.contains(n), "{n} did not run: {text}");
    }
}

#[test]
fn a_start_container_hook_without_env_gets_the_process_env() {
    // runc's startContainer hook always inherited the process's env (its hooks.bats pins
    // it); a hook with its own env gets only that.
    let t = Test::new("hooks_start_env");
    let mut b = t.bundle();
    b.writable();
    b.args(&["true"]);
    b.set("/process/env", json!(["PATH=/bin", "ONE=two", "FOO=bar"]));
    std::fs::write(b.rootfs().join("env-hook.sh"), "#!/bin/sh\nenv > \"$1\"\n").unwrap();
    std::fs::set_permissions(b.rootfs().join("env-hook.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.set(
        "/hooks/startContainer",
        json!([{"path": "/env-hook.sh", "args": ["env-hook.sh", "/inherited"]},
               {"path": "/env-hook.sh", "args": ["env-hook.sh", "/own"], "env": ["ONLY=this"]}]),
    );
    t.rt.run(&t.id(""), &b).ok();
    let inherited = std::fs::read_to_string(b.rootfs().join("inherited")).unwrap();
    let lines: Vec<&str> = inherited.lines().collect();
    for want in ["ONE=two", "FOO=bar", "PATH=/bin", "HOME=/root"] {
        assert!(lines.contains(&want), "{want} missing from the hook's env: {inherited}");
    }
    let own = std::fs::read_to_string(b.rootfs().join("own")).unwrap();
    assert!(own.lines().any(|l| l == "ONLY=this") && !own.contains("ONE=two"), "{own}");
}
