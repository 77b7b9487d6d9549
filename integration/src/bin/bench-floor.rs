//! `bench-floor`: the floor of the benchmark (target/release/bench). The least a launcher
//! must ask of the kernel to run a command as a container: clone into new namespaces,
//! make the mounts private, bind the rootfs, pivot_root into it, exec, and wait. No
//! config file, no state, no sealed copy of itself, no hooks, no capabilities or seccomp.
//!
//!     bench-floor [--mounts] [--readonly] [--cgroup NAME [--self-join]] ROOTFS CMD [ARG...]
//!
//! `--mounts` also makes the mounts of runc's default config.json (proc, a tmpfs /dev,
//! devpts, /dev/shm, mqueue, sysfs read-only); `--readonly` remounts the root read-only
//! as `root.readonly` does; `--cgroup NAME` puts the child in `NAME` under every cgroup
//! hierarchy mounted at /sys/fs/cgroup (created before, removed after), then unshares
//! the cgroup namespace, as runtimes do. With `--self-join` the child moves itself
//! instead, writing "0" to each v1 hierarchy's `tasks` (an experiment: the kernel then
//! skips the cgroup_threadgroup_rwsem write lock and its RCU grace period, which the
//! parent's write of a pid to `cgroup.procs` waits for). Exits with the command's status
//! (128+signal).
//!
//! Only libc, no threads: the child may allocate between clone and exec because the
//! parent is single-threaded.

use std::ffi::CString;
use std::path::PathBuf;

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn die(what: &str) -> ! {
    eprintln!("bench-floor: {what}: {}", std::io::Error::last_os_error());
    // SAFETY: _exit takes an integer.
    unsafe { libc::_exit(125) }
}

fn mount(src: &str, dst: &str, fstype: &str, flags: libc::c_ulong, data: &str) {
    let (s, d, t, o) = (c(src), c(dst), c(fstype), c(data));
    // SAFETY: mount(2) with valid C strings; empty data/fstype are passed as NULL.
    let r = unsafe {
        libc::mount(
            if src.is_empty() { std::ptr::null() } else { s.as_ptr() },
            d.as_ptr(),
            if fstype.is_empty() { std::ptr::null() } else { t.as_ptr() },
            flags,
            if data.is_empty() { std::ptr::null() } else { o.as_ptr() as *const libc::c_void },
        )
    };
    if r != 0 {
        die(&format!("mount {dst}"));
    }
}

/// The v1 (and v2) hierarchies mounted under /sys/fs/cgroup in this mount namespace.
fn hierarchies() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            let fstype = f.get(dash + 1)?;
            (*fstype == "cgroup" || *fstype == "cgroup2").then(|| PathBuf::from(f[4]))
        })
        .filter(|p| p.starts_with("/sys/fs/cgroup"))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// mkdir -p of a cgroup; a new v1 cpuset gets its parent's cpus and mems (it cannot
/// hold a process with none).
fn make_cgroup(hierarchy: &std::path::Path, d: &std::path::Path) -> std::io::Result<()> {
    let rel = d.strip_prefix(hierarchy).map_err(|_| std::io::Error::other("not in the hierarchy"))?;
    let mut cur = hierarchy.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        if cur.exists() {
            continue;
        }
        std::fs::create_dir(&cur)?;
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if cur.join(f).exists() && std::fs::read_to_string(cur.join(f))?.trim().is_empty() {
                std::fs::write(cur.join(f), std::fs::read_to_string(parent.join(f))?.trim())?;
            }
        }
    }
    Ok(())
}

fn child(rootfs: &str, mounts: bool, readonly: bool, cgroup: bool, self_join: &[PathBuf], sync: i32, argv: &[CString]) -> ! {
    // Wait until the parent has put us in the cgroup (EOF on the pipe).
    let mut b = 0u8;
    // SAFETY: read into a one-byte buffer.
    unsafe { libc::read(sync, &mut b as *mut u8 as *mut libc::c_void, 1) };
    for d in self_join {
        let f = if d.join("tasks").exists() { "tasks" } else { "cgroup.procs" };
        if std::fs::write(d.join(f), "0").is_err() {
            die(&format!("join {}", d.display()));
        }
    }
    // SAFETY: unshare with a constant flag.
    if cgroup && unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
        die("unshare cgroup namespace");
    }
    mount("", "/", "", libc::MS_REC | libc::MS_PRIVATE, "");
    mount(rootfs, rootfs, "", libc::MS_BIND | libc::MS_REC, "");
    if mounts {
        let nse = libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV;
        mount("proc", &format!("{rootfs}/proc"), "proc", nse, "");
        mount("tmpfs", &format!("{rootfs}/dev"), "tmpfs", libc::MS_NOSUID | libc::MS_STRICTATIME, "mode=755,size=65536k");
        for d in ["pts", "shm", "mqueue"] {
            let p = c(&format!("{rootfs}/dev/{d}"));
            // SAFETY: mkdir with a valid C string.
            unsafe { libc::mkdir(p.as_ptr(), 0o755) };
        }
        mount("devpts", &format!("{rootfs}/dev/pts"), "devpts", libc::MS_NOSUID | libc::MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
        mount("shm", &format!("{rootfs}/dev/shm"), "tmpfs", nse, "mode=1777,size=65536k");
        mount("mqueue", &format!("{rootfs}/dev/mqueue"), "mqueue", nse, "");
        mount("sysfs", &format!("{rootfs}/sys"), "sysfs", nse | libc::MS_RDONLY, "");
    }
    let (r, dot) = (c(rootfs), c("."));
    // SAFETY: chdir, pivot_root(".", "."), umount2 and chdir with valid C strings: the
    // old root is stacked under the new one and detached.
    unsafe {
        if libc::chdir(r.as_ptr()) != 0 {
            die("chdir rootfs");
        }
        if libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) != 0 {
            die("pivot_root");
        }
        if libc::umount2(dot.as_ptr(), libc::MNT_DETACH) != 0 {
            die("umount old root");
        }
        libc::chdir(c("/").as_ptr());
    }
    if readonly {
        mount("", "/", "", libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_REC, "");
    }
    let env = [c("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")];
    let argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let env_p: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    // SAFETY: NULL-terminated argv/envp of C strings that outlive the call.
    unsafe { libc::execve(argv_p[0], argv_p.as_ptr(), env_p.as_ptr()) };
    die("execve")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut mounts, mut readonly, mut cgroup, mut self_join) = (false, false, None, false);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--mounts" => mounts = true,
            "--readonly" => readonly = true,
            "--self-join" => self_join = true,
            "--cgroup" => {
                i += 1;
                cgroup = args.get(i).cloned();
            }
            _ => break,
        }
        i += 1;
    }
    if args.len() < i + 2 {
        eprintln!("usage: bench-floor [--mounts] [--readonly] [--cgroup NAME [--self-join]] ROOTFS CMD [ARG...]");
        std::process::exit(2);
    }
    let rootfs = args[i].clone();
    let argv: Vec<CString> = args[i + 1..].iter().map(|a| c(a)).collect();
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 into a two-int array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        die("pipe");
    }
    let mut dirs = Vec::new();
    if let Some(name) = &cgroup {
        for h in hierarchies() {
            let d = h.join(name.trim_start_matches('/'));
            if let Err(e) = make_cgroup(&h, &d) {
                eprintln!("bench-floor: cgroup {}: {e}", d.display());
                std::process::exit(125);
            }
            dirs.push(d);
        }
    }
    let joins: Vec<PathBuf> = if self_join { dirs.clone() } else { Vec::new() };
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    // SAFETY: a fork-style clone of this single-threaded process.
    let pid = unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) } as i32;
    if pid < 0 {
        die("clone");
    }
    if pid == 0 {
        // SAFETY: closing our copy of the write end, so EOF comes when the parent closes its.
        unsafe { libc::close(fds[1]) };
        child(&rootfs, mounts, readonly, cgroup.is_some(), &joins, fds[0], &argv);
    }
    // SAFETY: closing the read end in the parent.
    unsafe { libc::close(fds[0]) };
    if !self_join {
        for d in &dirs {
            if let Err(e) = std::fs::write(d.join("cgroup.procs"), pid.to_string()) {
                eprintln!("bench-floor: cgroup {}: {e}", d.display());
                // SAFETY: kill(2) of our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                std::process::exit(125);
            }
        }
    }
    // SAFETY: closing the write end releases the child.
    unsafe { libc::close(fds[1]) };
    let mut status = 0;
    // SAFETY: waitpid on our child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {}
    for d in &dirs {
        // Only the leaf: a parent is shared (the bench's), as a runtime's would be.
        let _ = std::fs::remove_dir(d);
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    std::process::exit(code);
}
