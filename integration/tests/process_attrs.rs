//! Process attributes of runtime-spec 1.2 and later: scheduler, ioPriority,
//! execCPUAffinity, personality, memoryPolicy; and intelRdt, which this host cannot
//! have. Each is applied to the container's process (and to exec'd ones where runc does)
//! and read back from /proc, or refused naming its field. runc 1.1 predates these fields
//! and ignores them: against it, only what it does know is checked.

use berth_integration::*;

/// runc before 1.2 has none of these fields (it reads past them).
fn runtime_predates_them() -> bool {
    flavor().is_runc_before(1, 2)
}

#[track_caller]
fn run_out(t: &Test, b: &Bundle) -> String {
    let o = t.rt.run(&t.id(""), b);
    o.ok();
    o.stdout
}

/// A started container running `sleep`.
fn running(t: &Test, id: &str, b: &mut Bundle) {
    b.args(&["sleep", "300"]);
    t.rt.create(id, b).ok();
    t.rt.start(id).ok();
}

/// `exec --process` with `process`'s fields over a root shell running `script`.
#[track_caller]
fn exec_with(t: &Test, id: &str, script: &str, extra: Value) -> Output {
    let mut p = json!({"args": ["sh", "-c", script], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let f = t.path(&format!("process-{}.json", N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
    std::fs::write(&f, p.to_string()).unwrap();
    t.rt.cmd(&["exec", "--process", f.to_str().unwrap(), id])
}

/// This process's nice value, which the runtime and its processes inherit.
fn own_nice() -> i32 {
    // SAFETY: getpriority reads the calling process's nice value.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// nice, rt_priority and policy of the reading process, from /proc/self/stat.
const SCHED_FIELDS: &str = "cut -d' ' -f19,40,41 /proc/self/stat";

#[test]
fn scheduler_policy_and_nice_apply_to_the_process_and_to_exec() {
    if runtime_predates_them() {
        return;
    }
    let t = Test::new("sched");
    let mut b = t.bundle();
    b.set("/process/scheduler", json!({"policy": "SCHED_BATCH", "nice": 7}));
    b.sh(SCHED_FIELDS);
    assert_eq!(run_out(&t, &b), "7 0 3\n");
    let id = t.id("exec");
    let mut b = t.bundle();
    running(&t, &id, &mut b);
    let o = exec_with(&t, &id, SCHED_FIELDS, json!({"scheduler": {"policy": "SCHED_IDLE"}}));
    o.ok();
    // Without a nice of its own the process keeps the one it was started with.
    assert_eq!(o.stdout, format!("{} 0 5\n", own_nice()), "{}", o.describe());
}

#[test]
fn a_realtime_policy_gets_its_priority_for_the_process_and_for_exec() {
    if runtime_predates_them() {
        return;
    }
    let t = Test::new("sched_rt");
    let id = t.id("");
    let mut b = t.bundle();
    // With realtime group scheduling (cgroup v1's cpu.rt_runtime_us), a new cgroup has no
    // realtime time until it is given some; without it, nothing is needed.
    // The kernel gives a group no more than its parent has: the cgroup sits right below
    // the root, which has the host's realtime time.
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        b.set("/linux/cgroupsPath", json!(t.cgroups_path("rt")));
        b.set("/linux/resources/cpu", json!({"realtimePeriod": 1000000, "realtimeRuntime": 10000}));
    }
    b.set("/process/scheduler", json!({"policy": "SCHED_FIFO", "priority": 10}));
    b.args(&["sleep", "300"]);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // rt_priority and policy are fields 40 and 41; the split starts at field 3.
    assert_eq!((fields[37], fields[38]), ("10", "1"), "the init is not SCHED_FIFO at 10: {stat}");
    let o = exec_with(&t, &id, SCHED_FIELDS, json!({"scheduler": {"policy": "SCHED_RR", "priority": 5}}));
    o.ok();
    assert_eq!(o.stdout, format!("{} 5 2\n", own_nice()), "{}", o.describe());
}

#[test]
fn a_scheduler_priority_without_a_realtime_policy_is_refused_by_name() {
    if runtime_predates_them() {
        return;
    }
    let t = Test::new("sched_bad");
    let mut b = t.bundle();
    b.set("/process/scheduler", json!({"policy": "SCHED_OTHER", "priority": 10}));
    t.rt.run(&t.id(""), &b).failed().stderr_has("process.scheduler.priority");
    b.set("/process/scheduler", json!({"policy": "SCHED_NOPE"}));
    t.rt.run(&t.id("policy"), &b).failed().stderr_has("SCHED_NOPE");
    assert!(t.rt.list_ids().is_empty());
}

fn ioprio_of(pid: i32) -> i64 {
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, pid) with integer arguments.
    let v = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    assert!(v >= 0, "ioprio_get {pid}: {}", std::io::Error::last_os_error());
    v
}

#[test]
fn io_priority_class_and_level_are_set() {
    if runtime_predates_them() {
        return;
    }
    let t = Test::new("ioprio");
    let id = t.id("");
    let mut b = t.bundle();
    b.set("/process/ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": 6}));
    running(&t, &id, &mut b);
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(ioprio_of(pid), 2 << 13 | 6, "class BE (2) level 6");
    let o = exec_with(&t, &id, "true", json!({"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}}));
    o.ok();
    let mut b = t.bundle();
    b.set("/process/ioPriority", json!({"class": "IOPRIO_CLASS_BOGUS", "priority": 0}));
    t.rt.run(&t.id("bad"), &b).failed().stderr_has("process.ioPriority.class");
    b.set("/process/ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": 8}));
    t.rt.run(&t.id("bad8"), &b).failed().stderr_has("process.ioPriority.priority");
}

#[test]
fn linux32_personality_makes_uname_report_a_32_bit_machine() {
    if runtime_predates_them() {
        return;
    }
    let want = match std::env::consts::ARCH {
        "x86_64" => "i686",
        "aarch64" => "armv8l",
        _ => return, // no 32-bit persona to check against here
    };
    let t = Test::new("persona");
    let id = t.id("");
    let mut b = t.bundle();
    b.set("/linux/personality", json!({"domain": "LINUX32"}));
    b.sh("uname -m");
    assert_eq!(run_out(&t, &b), format!("{want}\n"));
    // exec'd processes get it too.
    running(&t, &id, &mut b);
    let o = t.rt.cmd(&["exec", &id, "uname", "-m"]);
    o.ok();
    assert_eq!(o.stdout, format!("{want}\n"), "{}", o.describe());
    let mut b = t.bundle();
    b.set("/linux/personality", json!({"domain": "LINUX64"}));
    t.rt.run(&t.id("bad"), &b).failed().stderr_has("linux.personality.domain");
}

#[test]
fn exec_cpu_affinity_initial_then_final_cpus_apply_to_exec_only() {
    if runtime_predates_them() || flavor().is_runc_before(1, 3) {
        return;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return; // needs two CPUs to tell the sets apart
    }
    let t = Test::new("exec_affinity");
    let id = t.id("");
    let mut b = t.bundle();
    // The config's execCPUAffinity is the default of every exec, not the init's.
    b.set("/process/execCPUAffinity", json!({"final": "1"}));
    running(&t, &id, &mut b);
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let host_cpus = host::status_field(std::process::id() as i32, "Cpus_allowed_list").unwrap();
    assert_eq!(host::status_field(pid, "Cpus_allowed_list").unwrap(), host_cpus, "the init's CPUs changed");
    let cpus = "grep Cpus_allowed_list /proc/self/status | cut -f2";
    let o = t.rt.cmd(&["exec", &id, "sh", "-c", cpus]);
    assert_eq!(o.stdout, "1\n", "{}", o.describe());
    // initial holds only until the process is in the cgroup: then every CPU the cgroup
    // allows, or final's.
    let o = exec_with(&t, &id, cpus, json!({"execCPUAffinity": {"initial": "0"}}));
    assert_eq!(o.stdout, format!("{host_cpus}\n"), "{}", o.describe());
    let o = exec_with(&t, &id, cpus, json!({"execCPUAffinity": {"initial": "1", "final": "0"}}));
    assert_eq!(o.stdout, "0\n", "{}", o.describe());
    let o = exec_with(&t, &id, cpus, json!({"execCPUAffinity": {"initial": "0-x"}}));
    o.failed().stderr_has("process.execCPUAffinity.initial");
}

/// Runs `f` with this thread (and so the processes it starts) on CPU 0 only.
fn pinned_to_cpu0<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: cpu_set_t is plain data; the calls read and write only the sets given.
    let (mut old, mut one): (libc::cpu_set_t, libc::cpu_set_t) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: as above.
    unsafe {
        assert_eq!(libc::sched_getaffinity(0, size, &mut old), 0);
        libc::CPU_SET(0, &mut one);
        assert_eq!(libc::sched_setaffinity(0, size, &one), 0);
    }
    let r = f();
    // SAFETY: as above.
    unsafe { libc::sched_setaffinity(0, size, &old) };
    r
}

#[test]
fn a_runtime_pinned_to_one_cpu_does_not_pin_the_container_or_its_execs() {
    if flavor().is_runc_before(1, 2) {
        return; // runc resets the affinity from 1.2 on
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return; // with one CPU, pinned and not pinned look the same
    }
    let t = Test::new("affinity_reset");
    let id = t.id("");
    let host_cpus = host::status_field(std::process::id() as i32, "Cpus_allowed_list").unwrap();
    let mut b = t.bundle();
    b.args(&["sleep", "300"]);
    let exec_cpus = pinned_to_cpu0(|| {
        t.rt.create(&id, &b).ok();
        t.rt.start(&id).ok();
        let o = t.rt.cmd(&["exec", &id, "sh", "-c", "grep Cpus_allowed_list /proc/self/status | cut -f2"]);
        o.ok();
        o.stdout
    });
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(host::status_field(pid, "Cpus_allowed_list").unwrap(), host_cpus, "the init kept its caller's pinning");
    assert_eq!(exec_cpus, format!("{host_cpus}\n"), "the exec'd process kept its caller's pinning");
}

#[test]
fn memory_policy_is_set_or_refused_by_name() {
    if runtime_predates_them() || flavor().is_runc() {
        return; // runc has memoryPolicy from 1.4 on
    }
    let t = Test::new("mempolicy");
    let mut b = t.bundle();
    // numa_maps shows the task's policy for mappings without their own.
    b.sh("head -1 /proc/self/numa_maps | cut -d' ' -f2");
    b.set("/linux/memoryPolicy", json!({"mode": "MPOL_BIND", "nodes": "0"}));
    assert_eq!(run_out(&t, &b), "bind:0\n");
    b.set("/linux/memoryPolicy", json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}));
    let o = t.rt.run(&t.id("interleave"), &b);
    o.ok();
    assert_eq!(o.stdout, "interleave=static:0\n", "{}", o.describe());
    for (i, (bad, field)) in [
        (json!({"mode": "MPOL_FOO"}), "linux.memoryPolicy.mode"),
        (json!({"mode": "MPOL_BIND"}), "linux.memoryPolicy.nodes"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]}), "linux.memoryPolicy.flags"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}), "exclude each other"),
        // A node this host does not have: the kernel's refusal, named.
        (json!({"mode": "MPOL_BIND", "nodes": "63"}), "linux.memoryPolicy"),
    ]
    .into_iter()
    .enumerate()
    {
        b.set("/linux/memoryPolicy", bad);
        let o = t.rt.run(&t.id(&format!("bad{i}")), &b);
        o.failed().stderr_has(field);
    }
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn intel_rdt_without_resctrl_is_refused_by_name() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(" resctrl "), "this test assumes a host without resctrl");
    let t = Test::new("intel_rdt");
    let mut b = t.bundle();
    b.set("/linux/intelRdt", json!({"closID": "berth-it", "l3CacheSchema": "L3:0=f"}));
    let o = t.rt.run(&t.id(""), &b);
    o.failed();
    assert!(o.stderr.contains("intelRdt") || o.stderr.contains("Intel RDT"), "{}", o.describe());
    if !flavor().is_runc() {
        o.stderr_has("linux.intelRdt").stderr_has("resctrl");
    }
    assert!(t.rt.list_ids().is_empty());
}
