//! Pure cgroup v2 with real controllers, end to end: each limit lands in its v2 file with
//! the value runc writes and has its effect inside the container (OOM kills, failed forks,
//! throttling, denied devices, refused hugepages), pause/resume through `cgroup.freeze`,
//! `update`, `events`, `ps`, the cgroup namespace, removal on delete, and what runtimes do
//! about cgroup v2's "no internal processes" rule.
//!
//! These need a pure cgroup v2 host with every controller: they run in the VM lane, and
//! skip (saying so) on a hybrid or v1 host unless `BERTH_VM_LANE` is set, when they fail.
//!
//! `bash integration/scripts/vm-lane.sh cgroups_v2` runs them there with berth, then with
//! runc (`BERTH_RUNTIME=/usr/sbin/runc`), which validates the tests.

use berth_integration::cgroup_support::v2::{self, Hugepages, LoopDevice, OwnCgroup};
use berth_integration::*;
use std::time::Duration;

const MB: u64 = 1 << 20;
const WAIT: Duration = Duration::from_secs(60);

/// runc's cpu.shares -> cpu.weight mapping (libcontainer/cgroups ConvertCPUSharesToCgroupV2Value).
fn weight_of_shares(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262142
}

/// runc's blkio weight -> io.weight mapping (ConvertBlkIOToIOWeightValue).
fn io_weight_of_blkio(weight: u64) -> u64 {
    1 + (weight - 10) * 9999 / 990
}

/// A bundle running `script` in a cgroup of its own (`t.cgroups_path(suffix)`) with
/// `resources` merged into the default's `linux.resources` (which keeps its deny-all
/// device rule and the standard allows).
fn bundle(t: &Test, suffix: &str, script: &str, resources: Value) -> (String, String, Bundle) {
    let id = t.id(suffix);
    let cgp = t.cgroups_path(suffix);
    let mut b = t.bundle();
    b.sh(script);
    b.set("/linux/cgroupsPath", json!(cgp));
    if let Value::Object(r) = resources {
        for (k, v) in r {
            b.set(&format!("/linux/resources/{k}"), v);
        }
    }
    (id, cgp, b)
}

/// create + start; the returned create output's file receives what the container prints.
#[track_caller]
fn start(t: &Test, id: &str, b: &Bundle) -> Output {
    let o = t.rt.create(id, b);
    o.ok();
    t.rt.start(id).ok();
    o
}

fn init_pid(t: &Test, id: &str) -> i64 {
    t.rt.state(id)["pid"].as_i64().expect("state has a pid")
}

/// The root cgroup's CPUs (all of them), its last CPU and its first memory node.
fn cpus_and_mems() -> (String, String, String) {
    let cpus = std::fs::read_to_string("/sys/fs/cgroup/cpuset.cpus.effective").expect("root cpuset.cpus.effective");
    let mems = std::fs::read_to_string("/sys/fs/cgroup/cpuset.mems.effective").expect("root cpuset.mems.effective");
    let last = |s: &str| s.trim().split(',').next_back().and_then(|r| r.split('-').next_back()).unwrap_or("0").to_string();
    let first = |s: &str| s.trim().split([',', '-']).next().unwrap_or("0").to_string();
    (cpus.trim().to_string(), last(&cpus), first(&mems))
}

/// The lines of a JSON stream that parse (a line being written may be cut short).
fn json_lines(text: &str) -> Vec<Value> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn memory_max_oom_kills_an_allocation_past_it_and_events_reports_the_oom() {
    if !v2::ready(&["memory"]) {
        return;
    }
    let t = Test::new("v2-oom");
    // dd fills a 64 MiB buffer (its block) from /dev/zero: every page is touched at once.
    // It runs in a child, so the init lives on and the cgroup can be read afterwards.
    let script = "while [ ! -e /go ]; do sleep 0.1; done; \
                  dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd-status=$?; exec sleep 1000";
    let (id, cgp, b) = bundle(&t, "oom", script, json!({"memory": {"limit": 16 * MB}}));
    let out = start(&t, &id, &b);
    assert_eq!(v2::read(&cgp, "memory.max"), (16 * MB).to_string());
    assert_eq!(v2::keyed(&cgp, "memory.events", "oom_kill"), 0);

    let events = t.rt.spawn(&["events", "--interval", "1s", &id], &Opts::default());
    // The first stats event: the watcher is registered before the allocation.
    wait_until(WAIT, "a stats event", || json_lines(&events.stdout_now()).iter().any(|e| e["type"] == "stats"));
    std::fs::write(b.rootfs().join("go"), "").unwrap();

    let text = out.wait_stdout("dd-status=", WAIT);
    assert!(text.contains("dd-status=137"), "dd was not killed by SIGKILL:\n{text}");
    assert!(v2::keyed(&cgp, "memory.events", "oom_kill") >= 1, "{}", v2::read(&cgp, "memory.events"));
    assert!(v2::keyed(&cgp, "memory.events", "oom") >= 1, "{}", v2::read(&cgp, "memory.events"));
    wait_until(WAIT, "an oom event from events", || json_lines(&events.stdout_now()).contains(&json!({"type": "oom", "id": id})));
    // The kill took the allocating process only.
    assert_eq!(t.rt.status(&id), "running");
    for e in json_lines(&events.stdout_now()).iter().filter(|e| e["type"] == "stats") {
        assert_eq!(e["data"]["memory"]["usage"]["limit"], json!(16 * MB), "{e}");
    }
}

#[test]
fn memory_swap_max_is_the_swap_beyond_the_memory_limit_and_reservation_is_memory_low() {
    if !v2::ready(&["memory"]) {
        return;
    }
    let t = Test::new("v2-swap");
    // memory.swap in the OCI config is memory+swap, as on v1; v2 limits swap alone.
    let mem = json!({"memory": {"limit": 32 * MB, "swap": 96 * MB, "reservation": 8 * MB}});
    let (id, cgp, b) = bundle(&t, "swap", "exec sleep 1000", mem);
    start(&t, &id, &b);
    assert_eq!(v2::read(&cgp, "memory.max"), (32 * MB).to_string());
    assert_eq!(v2::read(&cgp, "memory.swap.max"), (64 * MB).to_string());
    assert_eq!(v2::read(&cgp, "memory.low"), (8 * MB).to_string());

    // memory+swap equal to memory: no swap at all.
    let (id, cgp, b) = bundle(&t, "noswap", "exec sleep 1000", json!({"memory": {"limit": 32 * MB, "swap": 32 * MB}}));
    start(&t, &id, &b);
    assert_eq!(v2::read(&cgp, "memory.max"), (32 * MB).to_string());
    assert_eq!(v2::read(&cgp, "memory.swap.max"), "0");

    // Less than memory is refused, and leaves nothing.
    let (id, cgp, b) = bundle(&t, "badswap", "exec sleep 1000", json!({"memory": {"limit": 32 * MB, "swap": 16 * MB}}));
    t.rt.create(&id, &b).failed();
    assert!(!v2::dir(&cgp).exists(), "{cgp} left after a refused create");
}

#[test]
fn pids_max_lets_forks_up_to_it_and_fails_the_next_inside_the_container() {
    if !v2::ready(&["pids"]) {
        return;
    }
    let t = Test::new("v2-pids");
    // With 3: the shell, a background sleep and a subshell fit; the subshell's own fork
    // is the fourth and fails (the subshell reports it and exits 2).
    let script = "sleep 1000 & (echo third-ok); (sleep 1001 & echo fourth-ok); echo subshell=$?; \
                  echo done; exec sleep 1002";
    let (id, cgp, b) = bundle(&t, "pids", script, json!({"pids": {"limit": 3}}));
    let out = start(&t, &id, &b);
    let text = out.wait_stdout("done", WAIT);
    assert_eq!(v2::read(&cgp, "pids.max"), "3");
    assert!(text.contains("third-ok"), "a fork within pids.max failed:\n{text}\n{}", out.stderr_now());
    assert!(!text.contains("fourth-ok"), "a fork past pids.max succeeded:\n{text}");
    assert!(text.contains("subshell=2"), "{text}");
    let err = out.stderr_now();
    assert!(err.contains("Resource temporarily unavailable"), "the failed fork is not EAGAIN:\n{err}");
    assert!(v2::keyed(&cgp, "pids.events", "max") >= 1, "{}", v2::read(&cgp, "pids.events"));
    assert_eq!(v2::read(&cgp, "pids.current"), "2");
}

#[test]
fn cpu_max_holds_quota_and_period_cpu_weight_runcs_share_conversion_and_a_busy_loop_is_throttled() {
    if !v2::ready(&["cpu"]) {
        return;
    }
    let t = Test::new("v2-cpu");
    let cpu = json!({"cpu": {"shares": 512, "quota": 20000, "period": 100000}});
    let (id, cgp, b) = bundle(&t, "cpu", "while :; do :; done", cpu);
    start(&t, &id, &b);
    assert_eq!(weight_of_shares(512), 20);
    assert_eq!(v2::read(&cgp, "cpu.weight"), "20");
    assert_eq!(v2::read(&cgp, "cpu.max"), "20000 100000");
    // The busy loop wants a whole CPU and gets a fifth: periods end throttled.
    wait_until(WAIT, "throttled periods in cpu.stat", || v2::keyed(&cgp, "cpu.stat", "nr_throttled") > 0);
    assert!(v2::keyed(&cgp, "cpu.stat", "throttled_usec") > 0, "{}", v2::read(&cgp, "cpu.stat"));

    // The ends of runc's range, and docker's default shares (1024 gives 39, not the
    // kernel's default weight of 100).
    for (suffix, shares, want) in [("min", 2u64, 1u64), ("dflt", 1024, 39), ("max", 262144, 10000)] {
        assert_eq!(weight_of_shares(shares), want);
        let (id, cgp, b) = bundle(&t, suffix, "exec sleep 1000", json!({"cpu": {"shares": shares}}));
        start(&t, &id, &b);
        assert_eq!(v2::read(&cgp, "cpu.weight"), want.to_string(), "shares {shares}");
        // No quota given: cpu.max stays unlimited.
        assert_eq!(v2::read(&cgp, "cpu.max"), "max 100000");
    }
}

#[test]
fn cpuset_cpus_and_mems_are_written_and_bind_the_container() {
    if !v2::ready(&["cpuset"]) {
        return;
    }
    let t = Test::new("v2-cpuset");
    let (_, cpu, mem) = cpus_and_mems();
    let script = "grep -E '^(Cpus|Mems)_allowed_list' /proc/self/status; echo ready; exec sleep 1000";
    let (id, cgp, b) = bundle(&t, "cpuset", script, json!({"cpu": {"cpus": cpu, "mems": mem}}));
    let out = start(&t, &id, &b);
    assert_eq!(v2::read(&cgp, "cpuset.cpus"), cpu);
    assert_eq!(v2::read(&cgp, "cpuset.mems"), mem);
    assert_eq!(v2::read(&cgp, "cpuset.cpus.effective"), cpu);
    let text = out.wait_stdout("ready", WAIT);
    let fields = status_fields(&text);
    assert_eq!(fields.get("Cpus_allowed_list"), Some(&cpu), "{text}");
    assert_eq!(fields.get("Mems_allowed_list"), Some(&mem), "{text}");
}

#[test]
fn io_weight_and_io_max_are_written_and_reads_past_rbps_are_throttled() {
    if !v2::ready(&["io"]) {
        return;
    }
    let t = Test::new("v2-io");
    let disk = LoopDevice::new(&t.path("disk.img"), 32 * MB).unwrap_or_else(|e| panic!("a loop device for the io limits: {e}"));
    let (maj, min) = (disk.major, disk.minor);
    // 4 MiB read from the device at 1 MiB/s, through a node of it in the container.
    let script = "echo start=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/xvdtest of=/dev/null bs=64k count=64; \
                  echo end=$(cut -d' ' -f1 /proc/uptime); exec sleep 1000";
    let io = json!({"blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": MB}],
        "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": 100}],
    }});
    let (id, cgp, mut b) = bundle(&t, "io", script, io);
    b.push("/linux/devices", json!({"path": "/dev/xvdtest", "type": "b", "major": maj, "minor": min, "fileMode": 0o600}));
    b.push("/linux/resources/devices", json!({"allow": true, "type": "b", "major": maj, "minor": min, "access": "rw"}));
    let out = start(&t, &id, &b);
    // BFQ takes the weight as it is; without it, io.weight takes runc's conversion.
    if v2::dir(&cgp).join("io.bfq.weight").exists() {
        assert_eq!(v2::read(&cgp, "io.bfq.weight"), "default 500");
    } else {
        assert_eq!(v2::read(&cgp, "io.weight"), format!("default {}", io_weight_of_blkio(500)));
    }
    let io_max = v2::read(&cgp, "io.max");
    assert_eq!(io_max, format!("{maj}:{min} rbps={MB} wbps=max riops=max wiops=100"));

    let text = out.wait_stdout("end=", WAIT);
    let at =
        |k: &str| -> f64 { text.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no {k} in {text}")) };
    let secs = at("end=") - at("start=");
    // At 1 MiB/s, 4 MiB take about 4 s (the first slice may run ahead).
    assert!(secs >= 2.5, "4 MiB were read in {secs:.2}s despite rbps=1MiB\n{text}\n{}", out.stderr_now());
    let stat = v2::read(&cgp, "io.stat");
    let line = stat.lines().find(|l| l.starts_with(&format!("{maj}:{min} "))).unwrap_or_else(|| panic!("no {maj}:{min} in io.stat:\n{stat}"));
    let rbytes: u64 = line.split_whitespace().find_map(|kv| kv.strip_prefix("rbytes=")).and_then(|v| v.parse().ok()).unwrap();
    assert!(rbytes >= 4 * MB, "io.stat: {line}");
    // Detached once no container has a node of it.
    t.rt.delete_force(&id).ok();
    drop(disk);
}

#[test]
fn hugetlb_max_caps_the_hugepages_the_container_can_take_and_events_counts_them() {
    if !v2::ready(&["hugetlb"]) {
        return;
    }
    let t = Test::new("v2-huge");
    // Four free pages in the pool, so a refusal past one page is the cgroup's doing.
    let pages = Hugepages::reserve(4).unwrap_or_else(|e| panic!("2 MiB hugepages for the hugetlb limit: {e}"));
    let page = 2 * MB;
    let script = format!(
        "fallocate -l {page} /mnt/a && echo first-ok; fallocate -l {page} /mnt/b && echo second-ok; \
         echo done; exec sleep 1000"
    );
    let (id, cgp, mut b) = bundle(&t, "huge", &script, json!({"hugepageLimits": [{"pageSize": "2MB", "limit": page}]}));
    b.mount(json!({"destination": "/mnt", "type": "hugetlbfs", "source": "hugetlbfs", "options": ["pagesize=2M"]}));
    std::os::unix::fs::symlink("busybox", b.rootfs().join("bin/fallocate")).unwrap();
    let out = start(&t, &id, &b);
    assert_eq!(v2::read(&cgp, "hugetlb.2MB.max"), page.to_string());
    let text = out.wait_stdout("done", WAIT);
    assert!(text.contains("first-ok"), "a page within hugetlb.2MB.max was refused:\n{text}\n{}", out.stderr_now());
    assert!(!text.contains("second-ok"), "a page past hugetlb.2MB.max was given:\n{text}");
    assert_eq!(v2::read(&cgp, "hugetlb.2MB.current"), page.to_string());
    assert!(v2::keyed(&cgp, "hugetlb.2MB.events", "max") >= 1, "{}", v2::read(&cgp, "hugetlb.2MB.events"));

    let o = t.rt.cmd(&["events", "--stats", &id]);
    o.ok();
    let ev: Value = serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}\n{}", o.describe()));
    assert_eq!(ev["data"]["hugetlb"]["2MB"]["usage"], json!(page), "{ev}");
    assert!(ev["data"]["hugetlb"]["2MB"]["failcnt"].as_u64().unwrap_or(0) >= 1, "{ev}");
    // The pool shrinks back fully once the container's page is freed.
    t.rt.delete_force(&id).ok();
    drop(pages);
}

#[test]
fn devices_the_config_does_not_allow_are_denied_by_the_ebpf_filter_and_allowed_ones_open() {
    if !v2::ready(&[]) {
        return;
    }
    let t = Test::new("v2-dev");
    // /dev/kmsg (c 1:11) bound from the host: a node the container can see but that no
    // rule allows, unless the second run adds one.
    let script = "(exec 3>/dev/kmsg) && echo kmsg-opened; echo x > /dev/null && echo null-ok; \
                  head -c 4 /dev/zero | wc -c; (exec 3</dev/urandom) && echo urandom-ok";
    for allow in [false, true] {
        let suffix = if allow { "allow" } else { "deny" };
        let (id, cgp, mut b) = bundle(&t, suffix, script, json!({}));
        b.bind(std::path::Path::new("/dev/kmsg"), "/dev/kmsg", &[]);
        if allow {
            b.push("/linux/resources/devices", json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}));
        }
        let o = t.rt.run(&id, &b);
        o.ok();
        assert_eq!(o.stdout.contains("kmsg-opened"), allow, "{}", o.describe());
        for want in ["null-ok", "urandom-ok"] {
            assert!(o.stdout.contains(want), "an allowed device did not open: {}", o.describe());
        }
        assert!(o.stdout.lines().any(|l| l.trim() == "4"), "/dev/zero is not readable: {}", o.describe());
        if !allow {
            assert!(o.stderr.contains("Operation not permitted"), "the denial is not EPERM: {}", o.describe());
        }
        assert!(!v2::dir(&cgp).exists(), "run left {cgp}");
    }
}

#[test]
fn pause_sets_cgroup_freeze_and_stops_the_container_and_resume_undoes_it() {
    if !v2::ready(&[]) {
        return;
    }
    let t = Test::new("v2-pause");
    let (id, cgp, b) = bundle(&t, "p", "sleep 1000 & while :; do echo tick; sleep 0.1; done", json!({}));
    let out = start(&t, &id, &b);
    let ticks = || out.stdout_now().lines().filter(|l| *l == "tick").count();
    wait_until(WAIT, "ticks", || ticks() > 2);
    assert_eq!(v2::read(&cgp, "cgroup.freeze"), "0");

    t.rt.cmd(&["pause", &id]).ok();
    assert_eq!(t.rt.status(&id), "paused");
    assert_eq!(v2::read(&cgp, "cgroup.freeze"), "1");
    assert_eq!(v2::keyed(&cgp, "cgroup.events", "frozen"), 1);
    let frozen_at = ticks();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ticks(), frozen_at, "the container ran while paused");
    t.rt.cmd(&["pause", &id]).failed().stderr_has("container not running");

    t.rt.cmd(&["resume", &id]).ok();
    assert_eq!(t.rt.status(&id), "running");
    assert_eq!(v2::read(&cgp, "cgroup.freeze"), "0");
    assert_eq!(v2::keyed(&cgp, "cgroup.events", "frozen"), 0);
    wait_until(WAIT, "ticks after resume", || ticks() > frozen_at + 2);
    t.rt.cmd(&["resume", &id]).failed().stderr_has("container not paused");
}

/// The limits update tests start from, and checks that they are in place.
fn updatable(t: &Test, suffix: &str) -> (String, String) {
    let (all, _, mem) = cpus_and_mems();
    let resources = json!({
        "memory": {"limit": 64 * MB, "swap": 128 * MB, "reservation": 8 * MB},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": all, "mems": mem},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500},
    });
    let (id, cgp, b) = bundle(t, suffix, "exec sleep 1000", resources);
    start(t, &id, &b);
    assert_eq!(v2::read(&cgp, "memory.max"), (64 * MB).to_string());
    assert_eq!(v2::read(&cgp, "cpu.max"), "50000 100000");
    assert_eq!(v2::read(&cgp, "pids.max"), "100");
    assert_eq!(v2::read(&cgp, "cpuset.cpus"), all);
    (id, cgp)
}

/// The io weight as the update left it: io.bfq.weight as given, else io.weight converted.
fn io_weight_is(cgp: &str, blkio: u64) {
    if v2::dir(cgp).join("io.bfq.weight").exists() {
        assert_eq!(v2::read(cgp, "io.bfq.weight"), format!("default {blkio}"));
    } else {
        assert_eq!(v2::read(cgp, "io.weight"), format!("default {}", io_weight_of_blkio(blkio)));
    }
}

#[test]
fn update_flags_change_each_v2_limit() {
    if !v2::ready(&["cpu", "cpuset", "io", "memory", "pids"]) {
        return;
    }
    let t = Test::new("v2-updflags");
    let (id, cgp) = updatable(&t, "u");
    let (_, cpu, mem) = cpus_and_mems();
    #[rustfmt::skip]
    let args = [
        "update", "--memory", "48m", "--memory-swap", "96m", "--memory-reservation", "16m",
        "--cpu-share", "2048", "--cpu-quota", "30000", "--cpu-period", "150000",
        "--cpuset-cpus", &cpu, "--cpuset-mems", &mem, "--pids-limit", "30", "--blkio-weight", "300", &id,
    ];
    t.rt.cmd(&args).ok();
    assert_eq!(v2::read(&cgp, "memory.max"), (48 * MB).to_string());
    assert_eq!(v2::read(&cgp, "memory.swap.max"), (48 * MB).to_string());
    assert_eq!(v2::read(&cgp, "memory.low"), (16 * MB).to_string());
    assert_eq!(v2::read(&cgp, "cpu.weight"), weight_of_shares(2048).to_string());
    assert_eq!(v2::read(&cgp, "cpu.max"), "30000 150000");
    assert_eq!(v2::read(&cgp, "cpuset.cpus"), cpu);
    assert_eq!(v2::read(&cgp, "cpuset.mems"), mem);
    assert_eq!(v2::read(&cgp, "pids.max"), "30");
    io_weight_is(&cgp, 300);

    // A quota alone keeps the period; -1 lifts the quota and the pids limit.
    t.rt.cmd(&["update", "--cpu-quota", "40000", &id]).ok();
    assert_eq!(v2::read(&cgp, "cpu.max"), "40000 150000");
    t.rt.cmd(&["update", "--cpu-quota", "-1", "--pids-limit", "-1", &id]).ok();
    assert_eq!(v2::read(&cgp, "cpu.max"), "max 150000");
    assert_eq!(v2::read(&cgp, "pids.max"), "max");
    // Unlimited memory with memory+swap not given: both unlimited, as on v1.
    t.rt.cmd(&["update", "--memory", "-1", &id]).ok();
    assert_eq!(v2::read(&cgp, "memory.max"), "max");
    assert_eq!(v2::read(&cgp, "memory.swap.max"), "max");

    t.rt.cmd(&["update", "--memory", "lots", &id]).failed().stderr_has("invalid");
    assert_eq!(v2::read(&cgp, "memory.max"), "max");
}

#[test]
fn update_from_a_resources_file_and_from_stdin_changes_each_v2_limit() {
    if !v2::ready(&["cpu", "cpuset", "io", "memory", "pids"]) {
        return;
    }
    let t = Test::new("v2-updfile");
    let (id, cgp) = updatable(&t, "r");
    let (_, cpu, mem) = cpus_and_mems();
    let f = t.path("resources.json");
    let doc = json!({
        "memory": {"limit": 40 * MB, "swap": 100 * MB, "reservation": 4 * MB},
        "cpu": {"shares": 300, "quota": 25000, "period": 125000, "cpus": cpu, "mems": mem},
        "pids": {"limit": 25},
        "blockIO": {"weight": 700},
        "unified": {"memory.high": (36 * MB).to_string()},
    });
    std::fs::write(&f, doc.to_string()).unwrap();
    t.rt.cmd(&["update", "-r", f.to_str().unwrap(), &id]).ok();
    assert_eq!(v2::read(&cgp, "memory.max"), (40 * MB).to_string());
    assert_eq!(v2::read(&cgp, "memory.swap.max"), (60 * MB).to_string());
    assert_eq!(v2::read(&cgp, "memory.low"), (4 * MB).to_string());
    assert_eq!(v2::read(&cgp, "cpu.weight"), weight_of_shares(300).to_string());
    assert_eq!(v2::read(&cgp, "cpu.max"), "25000 125000");
    assert_eq!(v2::read(&cgp, "cpuset.cpus"), cpu);
    assert_eq!(v2::read(&cgp, "cpuset.mems"), mem);
    assert_eq!(v2::read(&cgp, "pids.max"), "25");
    io_weight_is(&cgp, 700);
    assert_eq!(v2::read(&cgp, "memory.high"), (36 * MB).to_string());

    // What dockerd does: the document on stdin.
    let doc = json!({"memory": {"limit": 50 * MB, "swap": 50 * MB}, "cpu": {"shares": 4096}, "pids": {"limit": 12}});
    let o = t.rt.cmd_opts(&["update", "--resources", "-", &id], &Opts { stdin: Some(doc.to_string().into_bytes()), ..Default::default() });
    o.ok();
    assert_eq!(v2::read(&cgp, "memory.max"), (50 * MB).to_string());
    assert_eq!(v2::read(&cgp, "memory.swap.max"), "0");
    assert_eq!(v2::read(&cgp, "cpu.weight"), weight_of_shares(4096).to_string());
    assert_eq!(v2::read(&cgp, "pids.max"), "12");
}

#[test]
fn events_stats_reports_memory_pids_and_cpu_read_from_the_v2_files() {
    if !v2::ready(&["cpu", "memory", "pids"]) {
        return;
    }
    let t = Test::new("v2-stats");
    // Some CPU time first, then two sleeping processes: usage holds still while read.
    let script = "i=0; while [ $i -lt 20000 ]; do i=$((i + 1)); done; sleep 1000 & echo ready; exec sleep 1001";
    let (id, cgp, b) = bundle(&t, "st", script, json!({"memory": {"limit": 64 * MB}, "pids": {"limit": 20}}));
    let out = start(&t, &id, &b);
    out.wait_stdout("ready", WAIT);
    wait_until(WAIT, "two processes", || v2::read(&cgp, "pids.current") == "2");

    // The files before and after the command bound what it may report; memory is compared
    // exactly from a round in which it did not move.
    let mut round = 0;
    let (data, mem, cpu_before, cpu_after) = loop {
        round += 1;
        let mem_before = v2::read(&cgp, "memory.current");
        let cpu_before = v2::keyed(&cgp, "cpu.stat", "usage_usec");
        let o = t.rt.cmd(&["events", "--stats", &id]);
        o.ok();
        let cpu_after = v2::keyed(&cgp, "cpu.stat", "usage_usec");
        let mem_after = v2::read(&cgp, "memory.current");
        let ev: Value = serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}\n{}", o.describe()));
        assert_eq!(ev["type"], "stats");
        assert_eq!(ev["id"], json!(id));
        if mem_before == mem_after || round == 10 {
            assert_eq!(mem_before, mem_after, "memory.current never held still over 10 rounds");
            break (ev["data"].clone(), mem_before.parse::<u64>().unwrap(), cpu_before, cpu_after);
        }
    };
    assert_eq!(data["memory"]["usage"]["usage"], json!(mem), "{data}");
    assert_eq!(data["memory"]["usage"]["limit"], json!(64 * MB), "{data}");
    assert_eq!(v2::read(&cgp, "memory.max"), (64 * MB).to_string());
    // raw is memory.stat, key for key.
    let stat = v2::read(&cgp, "memory.stat");
    let keys: std::collections::BTreeSet<&str> = stat.lines().filter_map(|l| l.split_whitespace().next()).collect();
    let raw: std::collections::BTreeSet<&str> = data["memory"]["raw"].as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    assert_eq!(raw, keys, "memory.raw is not memory.stat");

    assert_eq!(data["pids"], json!({"current": 2, "limit": 20}));
    assert_eq!(v2::read(&cgp, "pids.current"), "2");

    let total = data["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    assert!(total > 0, "{data}");
    assert!(cpu_before * 1000 <= total && total <= cpu_after * 1000, "cpu total {total} ns outside cpu.stat's {cpu_before}..{cpu_after} us");
    let user = data["cpu"]["usage"]["user"].as_u64().unwrap_or(0);
    let kernel = data["cpu"]["usage"]["kernel"].as_u64().unwrap_or(0);
    assert!(user + kernel <= total + 1000, "user {user} + kernel {kernel} > total {total}");
    assert_eq!(user % 1000, 0, "user is cpu.stat user_usec in ns");
}

#[test]
fn ps_lists_the_containers_processes_including_an_execd_one() {
    if !v2::ready(&[]) {
        return;
    }
    let t = Test::new("v2-ps");
    let (id, cgp, b) = bundle(&t, "ps", "sleep 1001 & exec sleep 1002", json!({}));
    start(&t, &id, &b);
    let init = init_pid(&t, &id);
    let pid_file = t.path("exec.pid");
    t.rt.cmd(&["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), &id, "sleep", "1003"]).ok();
    let execd: i64 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(v2::cgroup_of(execd), cgp, "the exec'd process is not in the container's cgroup");

    let mut pids: Vec<i64> = vec![];
    wait_until(WAIT, "three processes in ps --format json", || {
        let o = t.rt.cmd(&["ps", "--format", "json", &id]);
        o.ok();
        pids = serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("ps json: {e}\n{}", o.describe()));
        pids.len() == 3
    });
    assert!(pids.contains(&init) && pids.contains(&execd), "{pids:?} lacks the init {init} or the exec'd {execd}");
    let mut in_cgroup = v2::procs(&v2::dir(&cgp));
    in_cgroup.sort();
    pids.sort();
    assert_eq!(pids, in_cgroup, "ps differs from cgroup.procs");

    let o = t.rt.cmd(&["ps", &id]);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    let col = lines[0].split_whitespace().position(|w| w == "PID").expect("a PID column");
    assert_eq!(lines.len(), 4, "{}", o.stdout);
    let row =
        lines.iter().find(|l| l.split_whitespace().nth(col) == Some(&execd.to_string()[..])).unwrap_or_else(|| panic!("no row for {execd}:\n{}", o.stdout));
    assert!(row.ends_with("sleep 1003"), "{row}");
}

#[test]
fn the_container_sees_its_own_cgroup_as_the_root_of_a_cgroup_namespace() {
    if !v2::ready(&["memory"]) {
        return;
    }
    let t = Test::new("v2-ns");
    let script = "echo cg=$(cat /proc/self/cgroup); echo ns=$(readlink /proc/self/ns/cgroup); \
                  echo max=$(cat /sys/fs/cgroup/memory.max); echo ready; exec sleep 1000";
    let (id, cgp, b) = bundle(&t, "ns", script, json!({"memory": {"limit": 48 * MB}}));
    let out = start(&t, &id, &b);
    let text = out.wait_stdout("ready", WAIT);
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_default().to_string();
    assert_eq!(field("cg"), "0::/", "{text}");
    assert_ne!(field("ns"), host::ns_link("self", "cgroup"), "no cgroup namespace of its own:\n{text}");
    // /sys/fs/cgroup is the container's cgroup: its limit, nothing of the host's tree.
    assert_eq!(field("max"), (48 * MB).to_string(), "{text}");
    let init = init_pid(&t, &id);
    assert_eq!(v2::cgroup_of(init), cgp);
    assert_eq!(host::ns_link(&init.to_string(), "cgroup"), field("ns"));

    // A process exec'd later joins the same namespace.
    let o = t.rt.cmd(&["exec", &id, "sh", "-c", "cat /proc/self/cgroup; ls /sys/fs/cgroup | grep -c '^berth-it' || true"]);
    o.ok();
    assert_eq!(o.stdout, "0::/\n0\n", "{}", o.describe());
}

#[test]
fn delete_removes_the_cgroup_of_a_stopped_container() {
    if !v2::ready(&["pids"]) {
        return;
    }
    let t = Test::new("v2-delstop");
    let (id, cgp, b) = bundle(&t, "d", "exit 3", json!({"pids": {"limit": 10}}));
    start(&t, &id, &b);
    t.rt.wait_status(&id, "stopped", WAIT);
    // Stopped, the cgroup is still there (for the last stats) until delete.
    assert!(v2::dir(&cgp).exists(), "{cgp} went before delete");
    t.rt.delete(&id).ok();
    assert!(!v2::dir(&cgp).exists(), "delete left {cgp}");
    t.rt.cmd(&["state", &id]).failed();
}

#[test]
fn delete_force_removes_the_cgroup_of_a_running_and_of_a_paused_container() {
    if !v2::ready(&["pids"]) {
        return;
    }
    let t = Test::new("v2-delforce");
    for paused in [false, true] {
        let suffix = if paused { "paused" } else { "running" };
        let (id, cgp, b) = bundle(&t, suffix, "sleep 1000 & exec sleep 1001", json!({"pids": {"limit": 10}}));
        start(&t, &id, &b);
        let init = init_pid(&t, &id) as i32;
        if paused {
            t.rt.cmd(&["pause", &id]).ok();
            assert_eq!(v2::keyed(&cgp, "cgroup.events", "frozen"), 1);
        }
        t.rt.cmd(&["delete", &id]).failed();
        assert!(v2::dir(&cgp).exists());
        t.rt.delete_force(&id).ok();
        assert!(!v2::dir(&cgp).exists(), "delete --force of a {suffix} container left {cgp}");
        wait_until(WAIT, "the init to die", || !procs::alive(init));
        t.rt.cmd(&["state", &id]).failed();
    }
}

// ---- cgroup v2's "no internal processes" rule ----
//
// A cgroup that has domain controllers (memory, io, ...) enabled for its children may not
// hold processes itself (cgroup-v2.rst, "No Internal Process Constraint"), except the root.
// Users meet it in three ways; runc 1.1 (and crun) work around the first two.

#[test]
fn a_relative_cgroups_path_goes_beside_the_runtimes_own_populated_cgroup() {
    if !v2::ready(&["memory", "pids"]) {
        return;
    }
    let t = Test::new("v2-rel");
    // The runtime runs in <tree>/runtime, which it populates itself (as a shell session or a
    // service's cgroup is). Below it no controller can be enabled, so runc resolves a
    // relative path against the parent of its own cgroup (libcontainer/cgroups/fs2
    // defaultDirPath): the container's cgroup is <tree>/ctr, with working limits.
    let tree = OwnCgroup::new(&t.cgroups_path("rel"));
    let own = tree.mkdir("runtime");
    tree.hold(&own);
    let rt = v2::runtime_in(&t, &own);
    let id = t.id("rel");
    let mut b = t.bundle();
    b.sh("exec sleep 1000");
    b.set("/linux/cgroupsPath", json!("ctr"));
    b.set("/linux/resources/memory", json!({"limit": 24 * MB}));
    b.set("/linux/resources/pids", json!({"limit": 7}));
    rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    let cgp = format!("{}/ctr", tree.path);
    assert_eq!(v2::cgroup_of(init_pid(&t, &id)), cgp);
    assert_eq!(v2::read(&cgp, "memory.max"), (24 * MB).to_string());
    assert_eq!(v2::read(&cgp, "pids.max"), "7");
    let below: Vec<_> = std::fs::read_dir(&own).unwrap().flatten().filter(|e| e.path().is_dir()).map(|e| e.path()).collect();
    assert!(below.is_empty(), "cgroups made below the runtime's own: {below:?}");
    t.rt.delete_force(&id).ok();
    assert!(!v2::dir(&cgp).exists(), "delete left {cgp}");
}

#[test]
fn exec_into_a_container_that_gave_its_cgroup_to_subgroups_joins_the_inits_cgroup() {
    if !v2::ready(&["memory", "pids"]) {
        return;
    }
    let t = Test::new("v2-nest");
    // What systemd or docker-in-docker do inside a container: move themselves to a leaf
    // ("init"), then enable controllers for sub-cgroups. The container's own cgroup may no
    // longer take a process; runc (since 1.0, runc#2416) and crun then put an exec'd
    // process in the init's cgroup instead.
    let script = "mkdir /sys/fs/cgroup/init && echo $$ > /sys/fs/cgroup/init/cgroup.procs && \
                  echo '+memory +pids' > /sys/fs/cgroup/cgroup.subtree_control && mkdir /sys/fs/cgroup/inner && \
                  echo delegated; exec sleep 1000";
    let (id, cgp, mut b) = bundle(&t, "nest", script, json!({"memory": {"limit": 64 * MB}}));
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let cg = mounts.iter_mut().find(|m| m["destination"] == "/sys/fs/cgroup").expect("the default config mounts /sys/fs/cgroup");
    cg["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]);
    let out = start(&t, &id, &b);
    let text = out.wait_stdout("delegated", WAIT);
    assert!(!text.contains("can't"), "{text}\n{}", out.stderr_now());
    let init = init_pid(&t, &id);
    assert_eq!(v2::cgroup_of(init), format!("{cgp}/init"));
    assert_eq!(v2::read(&cgp, "cgroup.subtree_control"), "memory pids");
    assert!(v2::procs(&v2::dir(&cgp)).is_empty());

    let o = t.rt.cmd(&["exec", &id, "cat", "/proc/self/cgroup"]);
    o.ok();
    assert_eq!(o.stdout, "0::/init\n", "{}", o.describe());
    let pid_file = t.path("exec.pid");
    t.rt.cmd(&["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), &id, "sleep", "1001"]).ok();
    let execd: i64 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(v2::cgroup_of(execd), format!("{cgp}/init"));
    // The sub-cgroups the container made go with it.
    t.rt.delete_force(&id).ok();
    assert!(!v2::dir(&cgp).exists(), "delete --force left {cgp} (or the container's sub-cgroups)");
}

#[test]
fn a_cgroups_path_below_a_populated_cgroup_is_refused_naming_the_no_internal_processes_rule() {
    if !v2::ready(&["memory"]) {
        return;
    }
    let t = Test::new("v2-busy");
    // An absolute path below a cgroup that has processes of its own: nothing can enable
    // the memory controller for the container's cgroup, so its limit cannot hold.
    let tree = OwnCgroup::new(&t.cgroups_path("busy"));
    tree.hold(&tree.dir);
    let cgp = format!("{}/ctr", tree.path);
    let id = t.id("busy");
    let mut b = t.bundle();
    b.sh("exec sleep 1000");
    b.set("/linux/cgroupsPath", json!(cgp));
    b.set("/linux/resources/memory", json!({"limit": 24 * MB}));
    let o = t.rt.create(&id, &b);
    o.failed();
    assert!(t.rt.list_ids().is_empty(), "a refused create left {:?}", t.rt.list_ids());
    assert!(!v2::dir(&cgp).exists(), "a refused create left {cgp}");
    if flavor().is_runc() {
        // runc 1.1 finds the new cgroup "domain invalid" (it enabled the threaded
        // controllers, cpu and pids, in the populated parent, which made that a thread root).
        o.stderr_has("with domain controllers -- it is in an invalid state");
    } else {
        // berth says why, and which cgroup breaks the rule.
        o.stderr_has("no internal processes").stderr_has(&tree.path);
    }
}
