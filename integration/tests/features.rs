//! `features` tells the truth about the build: every seccomp action and operator it
//! lists is accepted by create, what it leaves out is refused, and its namespaces and
//! capabilities are ones a container really gets.

use berth_integration::*;

fn features(t: &Test) -> Value {
    let o = t.rt.cmd(&["features"]);
    o.ok();
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("features is not JSON: {e}\n{}", o.stdout))
}

#[test]
fn features_lists_the_spec_fields_engines_read() {
    let t = Test::new("features_shape");
    let f = features(&t);
    for k in ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions"] {
        assert!(f.get(k).is_some(), "missing {k}: {f}");
    }
    let linux = &f["linux"];
    for k in ["namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux", "intelRdt"] {
        assert!(linux.get(k).is_some(), "missing linux.{k}: {f}");
    }
    assert_eq!(f["hooks"].as_array().unwrap().len(), 6, "{f}");
}

#[test]
fn every_listed_seccomp_action_and_operator_is_accepted() {
    if *flavor() != Flavor::Berth {
        return; // runc 1.1.5 has no features command; this pins berth's own claims
    }
    let t = Test::new("features_seccomp");
    let f = features(&t);
    let s = &f["linux"]["seccomp"];
    assert_eq!(s["enabled"], true);
    let ops: Vec<String> = s["operators"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(ops.len(), 7, "{s}");
    for action in s["actions"].as_array().unwrap() {
        let action = action.as_str().unwrap();
        let mut b = t.bundle();
        // A rule on a syscall the shell never makes, with every operator in turn.
        let args: Vec<Value> = ops.iter().map(|op| json!({"index": 0, "value": 1, "valueTwo": 1, "op": op})).collect();
        let rules: Vec<Value> = args.iter().map(|a| json!({"names": ["kexec_load"], "action": action, "args": [a]})).collect();
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        // SCMP_ACT_NOTIFY needs an agent to hand its listener to.
        let agent = (action == "SCMP_ACT_NOTIFY").then(|| {
            let sock = t.path("agent.sock");
            b.set("/linux/seccomp/listenerPath", json!(sock));
            berth_integration::seccomp_agent::Agent::start(&sock, libc::EPERM)
        });
        b.sh("echo ok");
        let o = t.rt.run(&t.id(&action.to_lowercase().replace('_', "-")), &b);
        drop(agent);
        o.ok();
        assert!(o.stdout.contains("ok"), "{action}: {}", o.describe());
    }
    // An action it does not list is refused by create, naming the field.
    let mut b = t.bundle();
    b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_NOPE"}]}));
    t.rt.run(&t.id("nope"), &b).failed().stderr_has("linux.seccomp.syscalls[0].action").stderr_has("SCMP_ACT_NOPE");
}

#[test]
fn listed_namespaces_can_all_be_created() {
    if *flavor() != Flavor::Berth {
        return; // runc 1.1.5 has no features command
    }
    let t = Test::new("features_ns");
    let f = features(&t);
    let mut b = t.bundle();
    let mut ns: Vec<Value> = Vec::new();
    for n in f["linux"]["namespaces"].as_array().unwrap() {
        if n == "user" {
            continue; // needs id maps; covered by the user namespace tests
        }
        ns.push(json!({"type": n}));
    }
    b.set("/linux/namespaces", Value::Array(ns));
    b.sh("echo inside");
    let o = t.rt.run(&t.id(""), &b);
    o.ok();
    assert!(o.stdout.contains("inside"), "{}", o.describe());
}
