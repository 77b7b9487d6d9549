//! What a hostile bundle or container must not be able to do to the host: mount through
//! symlinks out of the rootfs, write the runtime binary, inherit the host's fds, or name
//! a path outside --root as a container id.

use berth_integration::*;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// A host directory with one file, which a symlink in the rootfs points at.
fn victim(t: &Test) -> std::path::PathBuf {
    let h = t.mkdir("host-victim");
    std::fs::write(h.join("host-file"), "untouched").unwrap();
    h
}

#[track_caller]
fn assert_victim_untouched(h: &Path) {
    assert_eq!(entries(h), ["host-file"], "the runtime wrote into the host directory {}", h.display());
    assert_eq!(std::fs::read_to_string(h.join("host-file")).unwrap(), "untouched");
    assert_eq!(host::mounts_under(h), Vec::<String>::new());
}

#[test]
fn mount_destination_through_an_absolute_symlink_is_resolved_inside_the_rootfs() {
    let t = Test::new("symlink_abs");
    let h = victim(&t);
    let mut b = t.bundle();
    // rootfs/evil -> /tmp/.../host-victim: followed on the host, the mounts below would
    // create host-victim/sub and host-victim/file.
    symlink(&h, b.rootfs().join("evil")).unwrap();
    b.mount(json!({"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs"}));
    let f = t.path("bind-me");
    std::fs::write(&f, "bound").unwrap();
    b.bind(&f, "/evil/file", &[]);
    // Inside, /evil still leads to the same in-rootfs place, which holds both mounts.
    b.sh("touch /evil/sub/written-inside && cat /evil/file && echo; grep -c ' /evil/\\| [^ ]*host-victim/' /proc/self/mountinfo");
    let o = t.rt.run(&t.id(""), &b);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "bound", "{}", o.describe());
    assert_eq!(lines[1], "2", "the two mounts are not where /evil leads inside the container\n{}", o.describe());
    assert_victim_untouched(&h);
    // They were made inside the rootfs, at the symlink's target taken as a rootfs path.
    let inside = b.rootfs().join(h.strip_prefix("/").unwrap());
    assert!(inside.join("sub").is_dir() && inside.join("file").exists(), "{} lacks the mount points", inside.display());
}

#[test]
fn mount_destination_through_a_dotdot_symlink_is_resolved_inside_the_rootfs() {
    let t = Test::new("symlink_dotdot");
    let h = victim(&t);
    let mut b = t.bundle();
    // Enough ../ to climb out of any rootfs on the host, then down to the victim.
    let up = "../".repeat(32);
    symlink(format!("{up}{}", h.strip_prefix("/").unwrap().display()), b.rootfs().join("escape")).unwrap();
    b.mount(json!({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs"}));
    b.sh("touch /escape/sub/written-inside && echo ok");
    let o = t.rt.run(&t.id(""), &b);
    o.ok();
    assert_eq!(o.stdout, "ok\n");
    assert_victim_untouched(&h);
}

#[test]
fn a_symlinked_mount_destination_cannot_be_used_to_bind_over_a_host_path() {
    let t = Test::new("symlink_bind");
    let h = victim(&t);
    let src = t.mkdir("bind-src");
    std::fs::write(src.join("from-bind"), "x").unwrap();
    let mut b = t.bundle();
    symlink(&h, b.rootfs().join("evil")).unwrap();
    b.bind(&src, "/evil", &[]);
    b.args(&["sleep", "100"]);
    let id = t.id("");
    t.rt.create(&id, &b).ok();
    // While the container exists, the host still sees its own directory, and the
    // container sees the bind mount at its rootfs's idea of the symlink's target.
    assert_victim_untouched(&h);
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let in_ns = host::mountinfo(&pid);
    let target = h.to_string_lossy().into_owned();
    assert!(in_ns.iter().any(|m| m.mount_point == target), "no bind mount at {target} inside: {in_ns:#?}");
}

/// The runtime binary's bytes, to compare before and after a container had a go at it.
fn runtime_bytes() -> Vec<u8> {
    std::fs::read(paths::runtime()).expect("read the runtime binary")
}

/// A bundle whose process may hold CAP_SYS_PTRACE (in its bounding set): it passes the
/// kernel's check on a non-dumpable process's /proc/<pid>/exe.
fn with_ptrace(b: &mut Bundle) {
    b.push("/process/capabilities/bounding", json!("CAP_SYS_PTRACE"));
}

#[test]
fn a_ptrace_capable_containers_init_does_not_expose_the_host_runtime_binary_for_writing() {
    // CVE-2019-5736: a container process that can open /proc/<init>/exe before the init
    // execs could write the host's runtime binary afterwards. When the container's
    // process may hold CAP_SYS_PTRACE, the init must run from a sealed copy or a
    // read-only mount of it. (Held here from the host, as such a process would.)
    let t = Test::new("exe_not_writable");
    let before = runtime_bytes();
    let host_bin = host::identity(&paths::runtime()).unwrap();
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    with_ptrace(&mut b);
    t.rt.create(&id, &b).ok();
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap();
    // Hold the init's executable as the attack does (O_PATH), then let the init exec.
    let path = std::ffi::CString::new(format!("/proc/{pid}/exe")).unwrap();
    // SAFETY: open(2) with a valid C string; closed below.
    let opath = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    assert!(opath >= 0, "open {path:?}: {}", std::io::Error::last_os_error());
    t.rt.start(&id).ok();
    wait_until(10 * SEC, "the init to exec sleep", || std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p.ends_with("bin/busybox")));
    let held = host::identity(Path::new(&format!("/proc/self/fd/{opath}"))).unwrap();
    // The mount it is reached through (runc 1.1 uses a read-only bind mount of itself).
    // SAFETY: fstatvfs(3) into a zeroed struct on an fd we hold.
    let mut sfs: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstatvfs(opath, &mut sfs) }, 0, "fstatvfs: {}", std::io::Error::last_os_error());
    let read_only_mount = sfs.f_flag & libc::ST_RDONLY != 0;
    let reopen = std::ffi::CString::new(format!("/proc/self/fd/{opath}")).unwrap();
    // SAFETY: open(2); the fd is closed at once and nothing is ever written to it.
    let w = unsafe { libc::open(reopen.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    let err = std::io::Error::last_os_error();
    if w >= 0 {
        host::close(w);
    }
    host::close(opath);
    if held == host_bin {
        // The very file of the host's binary: only a read-only mount may stand between.
        // (Opening it may also fail with ETXTBSY while any runtime process runs; that
        // is no protection once they are gone.)
        assert!(w < 0, "the host runtime binary opened for writing through /proc/{pid}/exe");
        assert!(read_only_mount, "the init runs from the host runtime binary on a writable mount ({err})");
    }
    assert_eq!(runtime_bytes(), before, "the runtime binary changed");
}

/// Prints what the process finds at /proc/1/exe: `CLOSED` when it cannot read it, else
/// `READABLE <link>`.
const INIT_EXE_PROBE: &str = "l=$(readlink /proc/1/exe 2>/dev/null); \
                              if cat /proc/1/exe >/dev/null 2>&1; then echo \"READABLE $l\"; else echo CLOSED; fi";

/// The probe's answer must be that the init's exe is closed, or only a sealed copy.
#[track_caller]
fn assert_closed_or_sealed(what: &str, seen: &str) {
    assert!(seen == "CLOSED" || seen.starts_with("READABLE /memfd:"), "{what}: {seen:?}");
}

/// What a process exec'd into the created container `id` finds at /proc/1/exe (the
/// waiting init): `CLOSED` when it cannot read it, else `READABLE <link>`.
fn init_exe_seen_from_inside(t: &Test, id: &str, exec_flags: &[&str]) -> Output {
    let script = INIT_EXE_PROBE;
    let mut args = vec!["exec"];
    args.extend_from_slice(exec_flags);
    args.extend_from_slice(&[id, "sh", "-c", script]);
    t.rt.cmd(&args)
}

#[test]
fn the_waiting_init_is_closed_to_processes_exec_d_into_the_container() {
    // Without CAP_SYS_PTRACE, a process in the container cannot reach the waiting init's
    // executable at all, or reaches only a sealed copy.
    let t = Test::new("exe_closed_inside");
    let before = runtime_bytes();
    let id = t.id("");
    t.create_sleeper(&id);
    let o = init_exe_seen_from_inside(&t, &id, &[]);
    o.ok();
    assert_closed_or_sealed("the waiting init's exe, from inside", o.stdout.trim());
    t.rt.start(&id).ok();
    assert_eq!(runtime_bytes(), before, "the runtime binary changed");
}

#[test]
fn a_ptrace_capable_exec_into_a_created_container_never_reaches_an_unsealed_init() {
    let t = Test::new("exe_exec_ptrace");
    let id = t.id("");
    t.create_sleeper(&id);
    let o = init_exe_seen_from_inside(&t, &id, &["--cap", "CAP_SYS_PTRACE"]);
    if o.success() {
        // Allowed (runc: its init always runs from a sealed copy): then only a copy is seen.
        assert_closed_or_sealed("the waiting init's exe, from inside", o.stdout.trim());
    } else {
        o.stderr_has("CAP_SYS_PTRACE");
    }
    // Once started, the same exec is fine: the init is the container's process now.
    t.rt.start(&id).ok();
    t.rt.wait_status(&id, "running", 10 * SEC);
    init_exe_seen_from_inside(&t, &id, &["--cap", "CAP_SYS_PTRACE"]).ok();
}

/// Container A (`sleep 100`) created, not started, and a bundle for container B that
/// joins A's pid namespace; A's id.
fn created_and_joiner(t: &Test) -> (String, Bundle) {
    let a = t.id("a");
    t.create_sleeper(&a);
    let pid = t.rt.state(&a)["pid"].as_i64().unwrap();
    let mut bb = t.bundle();
    bb.namespace("pid", Some(&format!("/proc/{pid}/ns/pid")));
    (a, bb)
}

#[test]
fn a_ptrace_capable_container_cannot_join_the_pid_namespace_of_an_unsealed_waiting_init() {
    let t = Test::new("exe_join_ptrace");
    let before = runtime_bytes();
    let (a, mut bb) = created_and_joiner(&t);
    with_ptrace(&mut bb);
    bb.sh(INIT_EXE_PROBE);
    let o = t.rt.run(&t.id("b"), &bb);
    if o.success() {
        assert_closed_or_sealed("A's waiting init's exe, from B", o.stdout.trim());
    } else {
        o.stderr_has("CAP_SYS_PTRACE");
        assert!(!t.rt.list_ids().contains(&t.id("b")), "a refused create left container b behind");
    }
    t.rt.start(&a).ok();
    assert_eq!(runtime_bytes(), before, "the runtime binary changed");
}

#[test]
fn a_container_process_cannot_write_the_runtime_binary_through_proc() {
    let t = Test::new("exe_from_inside");
    let before = runtime_bytes();
    // Container B joins the pid namespace of created container A (whose pid 1 is still
    // the runtime's init) and goes for /proc/1/exe.
    let (a, mut bb) = created_and_joiner(&t);
    bb.sh("for i in 1 2 3; do echo pwned >> /proc/1/exe 2>/dev/null && echo WROTE; \
           dd if=/dev/zero of=/proc/1/exe bs=1 count=1 conv=notrunc 2>/dev/null && echo WROTE; done; echo done");
    let o = t.rt.run(&t.id("b"), &bb);
    o.ok();
    assert_eq!(o.stdout, "done\n", "a write through /proc/1/exe succeeded:\n{}", o.describe());
    assert_eq!(runtime_bytes(), before, "the runtime binary changed");
    t.rt.start(&a).ok();
    assert_eq!(runtime_bytes(), before, "the runtime binary changed");
}

/// Creates a container (`sleep 100`) while the test holds an inheritable fd on a marker
/// file and passes --log; returns the init's pid. Both files must stay out of it.
fn create_with_host_fds(t: &Test, id: &str) -> i32 {
    let marker = t.path("leak-marker");
    std::fs::write(&marker, "x").unwrap();
    // Inherited by every process this test binary starts from now on, the runtime too.
    t.open_inheritable(&marker);
    let log = t.path("runtime.log");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.write();
    t.rt.cmd(&["--log", log.to_str().unwrap(), "create", "--bundle", b.dir.to_str().unwrap(), id]).ok();
    t.rt.state(id)["pid"].as_i64().unwrap() as i32
}

fn host_files(fds: &[(i32, String)]) -> Vec<(i32, String)> {
    fds.iter().filter(|(_, p)| p.contains("leak-marker") || p.ends_with("runtime.log")).cloned().collect()
}

#[test]
fn no_host_fd_reaches_the_containers_process() {
    let t = Test::new("fd_leak");
    let id = t.id("");
    let pid = create_with_host_fds(&t, &id);
    t.rt.start(&id).ok();
    wait_until(10 * SEC, "the init to exec sleep", || std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p.ends_with("bin/busybox")));
    let fds = host::fds_of(pid);
    assert_eq!(fds.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [0, 1, 2], "the process has extra fds: {fds:?}");
    // And from inside: ls's own directory fd is the only one past stdio.
    let mut b2 = t.bundle();
    b2.sh("ls /proc/self/fd | tr '\\n' ' '");
    let o = t.rt.run(&t.id("ls"), &b2);
    o.ok();
    assert_eq!(o.stdout, "0 1 2 3 ", "{}", o.describe());
}

/// The harness runs the runtime with the host's /dev/null as stdin: the container's
/// process gets a /dev/null of its own mounts instead (one it can reach anyway), as runc
/// gives it; criu can then dump it (podman's detached containers have /dev/null stdin).
/// create + start, so that the process gets the caller's stdin itself (runc's `run`
/// puts pipes of its own between).
#[test]
fn stdin_on_the_hosts_dev_null_becomes_the_containers_own_dev_null() {
    let t = Test::new("dev_null");
    let id = t.id("");
    let mut b = t.bundle();
    // fdinfo's mnt_id names the mount the file is on; mountinfo lists only the container's.
    b.writable().sh("exec >/result; m=$(sed -n 's/^mnt_id:[[:space:]]*//p' /proc/$$/fdinfo/0); grep -c \"^$m \" /proc/self/mountinfo; readlink /proc/$$/fd/0");
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    t.rt.wait_status(&id, "stopped", 10 * SEC);
    let got = std::fs::read_to_string(b.rootfs().join("result")).unwrap_or_default();
    assert_eq!(got, "1\n/dev/null\n", "stdin is not on a mount of the container");
}

/// A caller may start the runtime with its stdio closed (criu runs its action scripts
/// so): the numbers 0-2 must not go to the runtime's own files (its state dir, lock,
/// pipes), which the container's process would inherit as its stdio.
#[test]
fn a_runtime_started_with_closed_stdio_gives_the_container_none_of_its_own_files() {
    use std::os::unix::process::CommandExt;
    let t = Test::new("closed_stdio");
    let id = t.id("");
    let mut b = t.bundle();
    // The links are read before the shell opens anything itself.
    b.writable().sh("l() { readlink /proc/$$/fd/$1 || echo closed; }; a=$(l 0); b=$(l 1); c=$(l 2); printf '%s\\n' \"$a\" \"$b\" \"$c\" > /result");
    b.write();
    let mut cmd = std::process::Command::new(&t.rt.bin);
    cmd.args(["--root", t.rt.root.to_str().unwrap(), "run", "--bundle", b.dir.to_str().unwrap(), &id]);
    // SAFETY: close(2) only, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("run the runtime");
    let seen = std::fs::read_to_string(b.rootfs().join("result")).unwrap_or_default();
    assert!(status.success(), "run with closed stdio failed: {status}; the container saw {seen:?}");
    assert_eq!(seen.lines().count(), 3, "{seen:?}");
    for line in seen.lines() {
        // /dev/null, nothing, or (runc's `run`) the pipes it relays the output through.
        assert!(line == "/dev/null" || line == "closed" || line.starts_with("pipe:["), "the container's stdio is a file of the runtime's: {seen:?}");
    }
}

#[test]
fn the_waiting_init_holds_no_host_fd() {
    // Between create and start the init sits in the container's namespaces and rootfs;
    // a process that joins them (exec, a shared pid namespace) can reach /proc/1/fd.
    let t = Test::new("fd_leak_init");
    let id = t.id("");
    let pid = create_with_host_fds(&t, &id);
    let fds = host::fds_of(pid);
    // It keeps its own fds (the exec fifo, ...) and stdio, but none of the host's files.
    assert!(host_files(&fds).is_empty(), "the created init holds host fds: {fds:?}");
}

#[test]
fn container_ids_that_are_paths_are_refused() {
    let t = Test::new("bad_ids");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.write();
    let dir = b.dir.to_str().unwrap().to_string();
    // The runtime's root is <test dir>/state: "../escape" would be <test dir>/escape.
    for id in ["", ".", "..", "a/b", "../escape", "/abs", "a/../b"] {
        let o = t.rt.cmd(&["create", "--bundle", &dir, id]);
        o.failed();
        assert!(!t.path("escape").exists(), "id {id:?} made a directory outside --root");
        assert!(!Path::new("/abs").exists());
        let in_root = std::fs::read_dir(&t.rt.root).map(|d| d.flatten().filter(|e| e.path().is_dir()).count()).unwrap_or(0);
        assert_eq!(in_root, 0, "id {id:?} left a directory under --root");
    }
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn delete_force_with_a_path_as_id_removes_nothing_outside_root() {
    let t = Test::new("bad_id_delete");
    let v = t.mkdir("victim");
    std::fs::write(v.join("keep"), "x").unwrap();
    std::fs::create_dir_all(&t.rt.root).unwrap();
    for id in ["../victim", "..", "."] {
        t.rt.cmd(&["delete", "--force", id]);
        t.rt.cmd(&["kill", id, "KILL"]).failed();
        t.rt.cmd(&["state", id]).failed();
    }
    assert!(v.join("keep").exists(), "delete --force of a path-like id removed a host directory");
    assert!(t.rt.root.is_dir(), "delete --force removed the state root itself");
}
