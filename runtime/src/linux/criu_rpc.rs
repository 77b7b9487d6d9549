//! criu's RPC (`criu swrk FD`), through which berth dumps and restores, as runc does. The
//! command line has no way to dump a terminal whose master is outside the container
//! (`orphan_pts_master`), nor to give back what a restore makes for the caller: the new
//! pty master (criu sends it with its `orphan-pts-master` notification) and the moment
//! the namespaces exist (`setup-namespaces`, when the prestart hooks run).
//!
//! The protocol is protobuf messages (criu's images/rpc.proto) on a SOCK_SEQPACKET pair.
//! berth encodes the few fields it uses by hand: a protobuf crate would add code
//! generation and size for one request and one response type.

use super::criu::{External, Options};
use crate::error::{Context, Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

// criu_req_type
const DUMP: u64 = 1;
const RESTORE: u64 = 2;
const PRE_DUMP: u64 = 4;
const NOTIFY: u64 = 6;
// criu_cg_mode
fn cg_mode(m: &str) -> u64 {
    match m {
        "ignore" => 0,
        "full" => 4,
        "strict" => 5,
        _ => 3, // soft
    }
}

/// A protobuf message being written: fields are appended in any order.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint_raw(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint_raw(((field as u64) << 3) | wire as u64);
    }
    fn varint(&mut self, field: u32, v: u64) -> &mut Self {
        self.key(field, 0);
        self.varint_raw(v);
        self
    }
    fn int32(&mut self, field: u32, v: i32) -> &mut Self {
        // Negative int32s are sign-extended to 64 bits, as protobuf writes them.
        self.varint(field, v as i64 as u64)
    }
    fn bool(&mut self, field: u32, v: bool) -> &mut Self {
        self.varint(field, v as u64)
    }
    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint_raw(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn string(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn message(&mut self, field: u32, m: &Pb) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// One field read from a message: a varint's value or a length-delimited field's bytes.
#[derive(Debug, PartialEq)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of a message, in order; fixed-width fields (which criu's replies do not
/// use) are skipped.
fn fields(mut b: &[u8]) -> Result<Vec<(u32, Field<'_>)>> {
    fn varint(b: &mut &[u8]) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().ok_or_else(|| Error::new("criu rpc: truncated message"))?;
            *b = rest;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err(Error::new("criu rpc: varint too long"))
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((field, Field::Varint(varint(&mut b)?))),
            2 => {
                let n = varint(&mut b)? as usize;
                if n > b.len() {
                    return Err(Error::new("criu rpc: truncated message"));
                }
                let (v, rest) = b.split_at(n);
                out.push((field, Field::Bytes(v)));
                b = rest;
            }
            1 if b.len() >= 8 => b = &b[8..],
            5 if b.len() >= 4 => b = &b[4..],
            w => return Err(Error::new(format!("criu rpc: unexpected wire type {w}"))),
        }
    }
    Ok(out)
}

/// What a criu_resp says.
#[derive(Debug, Default, PartialEq)]
struct Resp {
    typ: u64,
    success: bool,
    restored_pid: Option<i32>,
    notify_script: Option<String>,
    notify_pid: Option<i32>,
    errno: Option<i32>,
    errmsg: Option<String>,
}

fn parse_resp(b: &[u8]) -> Result<Resp> {
    let mut r = Resp::default();
    for (f, v) in fields(b)? {
        match (f, v) {
            (1, Field::Varint(t)) => r.typ = t,
            (2, Field::Varint(s)) => r.success = s != 0,
            (4, Field::Bytes(m)) => {
                for (f, v) in fields(m)? {
                    if let (1, Field::Varint(p)) = (f, v) {
                        r.restored_pid = Some(p as i32);
                    }
                }
            }
            (5, Field::Bytes(m)) => {
                for (f, v) in fields(m)? {
                    match (f, v) {
                        (1, Field::Bytes(s)) => r.notify_script = Some(String::from_utf8_lossy(s).into_owned()),
                        (2, Field::Varint(p)) => r.notify_pid = Some(p as i32),
                        _ => {}
                    }
                }
            }
            (7, Field::Varint(e)) => r.errno = Some(e as i32),
            (9, Field::Bytes(s)) => r.errmsg = Some(String::from_utf8_lossy(s).into_owned()),
            _ => {}
        }
    }
    Ok(r)
}

/// What the restore is asked to do.
pub struct Restore<'a> {
    pub opts: &'a Options,
    pub externals: &'a [External],
    /// A mount point holding the container's rootfs.
    pub root: &'a Path,
    /// The container's cgroup, relative to the hierarchy's root.
    pub cgroup_root: Option<String>,
    /// cgroup.procs files criu joins before it runs (see criu::restore).
    pub join: &'a [i32],
    /// Our fds (stdio) that replace dumped pipes.
    pub inherit: &'a [(i32, String)],
}

/// A notification from criu during the restore: the step, the restored init's pid, and
/// the fd criu sent with it (the new pty master with `orphan-pts-master`).
pub struct Notice<'a> {
    pub script: &'a str,
    pub pid: i32,
    pub fd: Option<OwnedFd>,
}

/// The options dumps and restores share. A terminal's master is outside the container
/// (with the engine): criu dumps the slave alone and makes a new pair at restore.
fn common_opts(o: &Options, images_fd: RawFd, work_fd: RawFd, log: &str) -> Pb {
    let mut opts = Pb::default();
    opts.int32(1, images_fd)
        .bool(4, o.ext_unix_sk)
        .bool(5, o.tcp_established)
        .bool(7, o.shell_job)
        .bool(8, o.file_locks)
        .int32(9, 4)
        .string(10, log)
        .int32(17, work_fd)
        .varint(34, cg_mode(o.manage_cgroups_mode.as_deref().unwrap_or("soft")))
        .bool(50, true);
    opts
}

fn restore_request(r: &Restore, images_fd: RawFd, work_fd: RawFd) -> Pb {
    let mut opts = common_opts(r.opts, images_fd, work_fd, "restore.log");
    opts.bool(12, true)
        .string(13, &r.root.to_string_lossy())
        // The restored tree becomes our child (criu is forked by us), as a created init is.
        .bool(26, true);
    if let Some(path) = &r.cgroup_root {
        let mut cg = Pb::default();
        cg.string(2, path);
        opts.message(25, &cg);
    }
    for (fd, key) in r.inherit {
        let mut i = Pb::default();
        i.string(1, key).int32(2, *fd);
        opts.message(27, &i);
    }
    for e in r.externals {
        opts.string(37, &format!("mnt[{}]:{}", e.dest, e.host_source.display()));
    }
    let mut req = Pb::default();
    req.varint(1, RESTORE).message(2, &opts);
    req
}

/// Restores through `criu swrk`; `notice` is called for each of criu's notifications
/// (an error aborts the restore). Returns the restored init's pid.
pub fn restore(r: &Restore, notice: impl FnMut(Notice) -> Result<()>) -> Result<i32> {
    let resp = call(r.opts, r.join, "restore.log", |i, w| restore_request(r, i, w), notice)?;
    resp.restored_pid.ok_or_else(|| Error::new("criu answered without the restored pid"))
}

/// What a dump (or pre-dump) is asked to do.
pub struct Dump<'a> {
    pub pid: i32,
    pub opts: &'a Options,
    pub externals: &'a [External],
    pub leave_running: bool,
    pub pre_dump: bool,
    /// A previous (pre-)dump's images, relative to the image directory or absolute.
    pub parent_path: Option<String>,
}

fn dump_request(d: &Dump, images_fd: RawFd, work_fd: RawFd, log: &str) -> Pb {
    let mut opts = common_opts(d.opts, images_fd, work_fd, log);
    opts.int32(2, d.pid).bool(3, d.leave_running && !d.pre_dump);
    if d.pre_dump || d.parent_path.is_some() {
        // Memory changes are tracked from a pre-dump to the next dump.
        opts.bool(15, true);
    }
    if let Some(p) = &d.parent_path {
        opts.string(14, p);
    }
    for e in d.externals {
        opts.string(37, &format!("mnt[{}]:{}", e.dest, e.dest));
    }
    let mut req = Pb::default();
    req.varint(1, if d.pre_dump { PRE_DUMP } else { DUMP }).message(2, &opts);
    req
}

/// Dumps (or pre-dumps) the tree of `d.pid` through `criu swrk`.
pub fn dump(d: &Dump) -> Result<()> {
    let log = if d.pre_dump { "pre-dump.log" } else { "dump.log" };
    call(d.opts, &[], log, |i, w| dump_request(d, i, w, log), |_| Ok(())).map(drop)
}

/// Runs `criu swrk` (in the cgroups of `join`, if any), sends it the request built with
/// the image and work directories' fds, and answers its notifications until its final
/// response; a failure names criu's log (`log`, in the work directory) and its first error.
fn call(o: &Options, join: &[i32], log: &str, build: impl FnOnce(RawFd, RawFd) -> Pb, mut notice: impl FnMut(Notice) -> Result<()>) -> Result<Resp> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    for d in [&o.image_path, &o.work_path] {
        std::fs::create_dir_all(d).with_ctx(|| format!("mkdir {}", d.display()))?;
    }
    // criu opens these through /proc/<our pid>/fd/N: they stay open until it answers.
    let dir = |p: &Path| open(p, OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).with_ctx(|| format!("open {}", p.display()));
    let (images, work) = (dir(&o.image_path)?, dir(&o.work_path)?);
    let req = build(images.as_raw_fd(), work.as_raw_fd());
    let (ours, theirs) = seqpacket_pair()?;
    let bin = if o.criu.is_empty() { "criu" } else { o.criu.as_str() };
    let mut cmd = Command::new(bin);
    cmd.arg("swrk").arg(theirs.as_raw_fd().to_string());
    if !join.is_empty() {
        let join = join.to_vec();
        // SAFETY: the closure only calls write(2) and close(2) through join_self, which
        // are async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(move || if crate::linux::cgroups::join_self(&join) { Ok(()) } else { Err(std::io::Error::other("join the container's cgroup")) });
        }
    }
    crate::logging::debug(&format!("running {bin} swrk ({log})"));
    let mut child = cmd.spawn().map_err(|e| Error::new(format!("run {bin}: {} (is criu installed?)", Error::from(e))))?;
    drop(theirs);
    let result = converse(&ours, &req, &mut notice);
    drop(ours);
    let _ = child.wait();
    drop((images, work));
    result.map_err(|e| {
        let path = o.work_path.join(log);
        Error::new(format!("criu failed: {e}; see {}{}", path.display(), super::criu::first_error(&path)))
    })
}

/// Sends the request and answers criu's notifications until its final response.
fn converse(sock: &OwnedFd, req: &Pb, notice: &mut impl FnMut(Notice) -> Result<()>) -> Result<Resp> {
    send(sock, &req.0)?;
    loop {
        let (msg, fd) = recv(sock)?;
        let resp = parse_resp(&msg)?;
        match resp.typ {
            NOTIFY => {
                let script = resp.notify_script.unwrap_or_default();
                let outcome = notice(Notice { script: &script, pid: resp.notify_pid.unwrap_or(0), fd });
                let mut ack = Pb::default();
                ack.varint(1, NOTIFY).bool(3, outcome.is_ok());
                send(sock, &ack.0)?;
                outcome.with_ctx(|| format!("at criu's {script:?} step"))?;
            }
            DUMP | PRE_DUMP | RESTORE if resp.success => return Ok(resp),
            DUMP | PRE_DUMP | RESTORE => {
                let what = resp.errmsg.unwrap_or_else(|| "no message".into());
                let errno = resp.errno.map(|e| format!(" ({})", std::io::Error::from_raw_os_error(e))).unwrap_or_default();
                return Err(Error::new(format!("{what}{errno}")));
            }
            other => return Err(Error::new(format!("criu rpc: unexpected response type {other}"))),
        }
    }
}

fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into the array; each is owned once, below.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, fds.as_mut_ptr()) } != 0 {
        return Err(Error::from(std::io::Error::last_os_error())).ctx("socketpair for criu");
    }
    // SAFETY: fresh fds from socketpair, owned by nobody else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Ours stays out of criu (and of the container criu restores).
    crate::linux::fds::set_cloexec(ours.as_raw_fd(), true);
    Ok((ours, theirs))
}

fn send(sock: &OwnedFd, b: &[u8]) -> Result<()> {
    nix::sys::socket::send(sock.as_raw_fd(), b, nix::sys::socket::MsgFlags::empty()).ctx("criu rpc: send")?;
    Ok(())
}

/// One message and the fd that came with it, if any.
fn recv(sock: &OwnedFd) -> Result<(Vec<u8>, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).ctx("criu rpc: receive")?;
    let n = msg.bytes;
    if n == 0 {
        return Err(Error::new("criu exited without an answer"));
    }
    let mut fd = None;
    for c in msg.cmsgs().ctx("criu rpc: receive")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: the kernel just installed this fd for us.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                fd.get_or_insert(owned);
            }
        }
    }
    buf.truncate(n);
    Ok((buf, fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_request_carries_its_options_as_protobuf_fields() {
        let opts = Options { image_path: "/i".into(), work_path: "/w".into(), tcp_established: true, ..Default::default() };
        let ext = [External { dest: "/data".into(), host_source: "/srv/d".into() }];
        let r = Restore {
            opts: &opts,
            externals: &ext,
            root: Path::new("/r"),
            cgroup_root: Some("/berth/x".into()),
            join: &[],
            inherit: &[(1, "pipe:[9]".into())],
        };
        let req = restore_request(&r, 5, 6);
        let top = fields(&req.0).unwrap();
        assert_eq!(top[0], (1, Field::Varint(RESTORE)));
        let Field::Bytes(o) = top[1].1 else { panic!("opts is a message") };
        let o = fields(o).unwrap();
        let get = |n: u32| o.iter().filter(|(f, _)| *f == n).map(|(_, v)| v).collect::<Vec<_>>();
        assert_eq!(get(1), [&Field::Varint(5)]);
        assert_eq!(get(5), [&Field::Varint(1)]);
        assert_eq!(get(13), [&Field::Bytes(b"/r")]);
        assert_eq!(get(17), [&Field::Varint(6)]);
        assert_eq!(get(37), [&Field::Bytes(b"mnt[/data]:/srv/d")]);
        assert_eq!(get(50), [&Field::Varint(1)]);
        let Field::Bytes(i) = get(27)[0] else { panic!("inherit_fd is a message") };
        assert_eq!(fields(i).unwrap(), [(1, Field::Bytes(b"pipe:[9]")), (2, Field::Varint(1))]);
        let Field::Bytes(cg) = get(25)[0] else { panic!("cg_root is a message") };
        assert_eq!(fields(cg).unwrap(), [(2, Field::Bytes(b"/berth/x"))]);
    }

    #[test]
    fn a_dump_after_a_pre_dump_tracks_memory_from_its_parent_and_keeps_mounts_external() {
        let opts = Options::default();
        let ext = [External { dest: "/data".into(), host_source: "/srv/d".into() }];
        let d = Dump { pid: 42, opts: &opts, externals: &ext, leave_running: true, pre_dump: false, parent_path: Some("../pre".into()) };
        let req = dump_request(&d, 3, 4, "dump.log");
        let top = fields(&req.0).unwrap();
        assert_eq!(top[0], (1, Field::Varint(DUMP)));
        let Field::Bytes(o) = top[1].1 else { panic!("opts is a message") };
        let o = fields(o).unwrap();
        let get = |n: u32| o.iter().filter(|(f, _)| *f == n).map(|(_, v)| v).collect::<Vec<_>>();
        assert_eq!((get(2), get(3), get(15)), (vec![&Field::Varint(42)], vec![&Field::Varint(1)], vec![&Field::Varint(1)]));
        assert_eq!((get(14), get(37)), (vec![&Field::Bytes(b"../pre")], vec![&Field::Bytes(b"mnt[/data]:/data")]));
        // A terminal's master stays with the engine: criu must accept the orphan slave.
        assert_eq!(get(50), [&Field::Varint(1)]);
        let pre = Dump { pre_dump: true, parent_path: None, ..d };
        let req = dump_request(&pre, 3, 4, "pre-dump.log");
        assert_eq!(fields(&req.0).unwrap()[0], (1, Field::Varint(PRE_DUMP)));
    }

    #[test]
    fn criu_responses_are_read_for_notifications_pids_and_errors() {
        let mut n = Pb::default();
        n.string(1, "orphan-pts-master").int32(2, 77);
        let mut resp = Pb::default();
        resp.varint(1, NOTIFY).bool(2, true).message(5, &n);
        let r = parse_resp(&resp.0).unwrap();
        assert_eq!((r.typ, r.notify_script.as_deref(), r.notify_pid), (NOTIFY, Some("orphan-pts-master"), Some(77)));
        let mut pid = Pb::default();
        pid.int32(1, 4242);
        let mut resp = Pb::default();
        resp.varint(1, RESTORE).bool(2, true).message(4, &pid);
        assert_eq!(parse_resp(&resp.0).unwrap().restored_pid, Some(4242));
        let mut resp = Pb::default();
        resp.varint(1, RESTORE).bool(2, false).int32(7, 2).string(9, "no images");
        let r = parse_resp(&resp.0).unwrap();
        assert_eq!((r.success, r.errno, r.errmsg.as_deref()), (false, Some(2), Some("no images")));
        // A negative int32 takes ten bytes and reads back.
        let mut neg = Pb::default();
        neg.int32(7, -1);
        assert_eq!(fields(&neg.0).unwrap(), [(7, Field::Varint(u64::MAX))]);
        assert!(parse_resp(&[0x0a, 0x05, 1]).is_err(), "a truncated field is an error");
    }
}
