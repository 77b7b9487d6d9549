//! The shim proper: the caller-facing process, and the detached process that stays with
//! the container.
//!
//! `launch` forks. The child detaches (new session, child subreaper, stdio on /dev/null),
//! sets up the log, the attach socket and the container's stdio, and runs
//! `<runtime> create` (then `start`, with --start) from its event loop. It reports the
//! outcome to the parent over a pipe: a 0 byte for success, or a 1 byte followed by the
//! error text. The parent exits with that outcome, so the caller gets control back only
//! once the container exists.
//!
//! The event loop is one epoll set: a signalfd for SIGCHLD, the container's output
//! (pipes or the pty master), the runtime's own output, the console socket, the attach
//! socket and its clients. It never times out; while the container is quiet the shim
//! sleeps in epoll_wait.

use crate::args::Args;
use crate::log::{Log, STDERR, STDOUT};
use crate::sys::{self, Epoll, Errno, Fd};
use alloc::borrow::ToOwned;
use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::CStr;
use libc::{c_int, pid_t};

const T_SIG: u64 = 1;
const T_OUT: u64 = 2;
const T_ERR: u64 = 3;
const T_STDIN: u64 = 4;
const T_ATTACH: u64 = 5;
const T_CONSOLE: u64 = 6;
const T_CONSOLE_CONN: u64 = 7;
const T_RT: u64 = 8;
const T_CLIENT: u64 = 1 << 32;

/// Packet kinds on the attach socket (the first byte of every packet).
pub const TAG_STDIN: u8 = 0;
pub const TAG_CLOSE_STDIN: u8 = 1;
pub const TAG_RESIZE: u8 = 2;
pub const TAG_EXIT: u8 = 3;

/// Output is read, logged and forwarded in chunks of at most this size; it is also the
/// largest input payload a client packet may carry.
pub const CHUNK: usize = 8192;
const CAPTURE_MAX: usize = 4096;

const EPOLLIN: u32 = libc::EPOLLIN as u32;
const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
const EPOLLERR: u32 = libc::EPOLLERR as u32;

/// Run the shim: returns the caller's exit status once the container is created (and
/// started), or the failure.
pub fn launch(args: Args) -> i32 {
    let (r, w) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            sys::print(2, format!("berth-shim: pipe: {e}\n").as_bytes());
            return 1;
        }
    };
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        sys::print(2, format!("berth-shim: fork: {}\n", sys::last()).as_bytes());
        return 1;
    }
    if pid == 0 {
        drop(r);
        daemon(args, w);
    }
    drop(w);
    let mut msg = Vec::new();
    let mut b = [0u8; 1024];
    while let Ok(n) = sys::read(r.raw(), &mut b) {
        if n == 0 {
            break;
        }
        msg.extend_from_slice(&b[..n]);
    }
    match msg.first() {
        Some(0) => 0,
        // On failure the detached process has cleaned up and is exiting: reap it, so
        // that nothing at all is left behind.
        Some(_) => {
            let _ = sys::waitpid(pid, 0);
            let text = String::from_utf8_lossy(&msg[1..]);
            sys::print(2, format!("berth-shim: {}\n", text.trim_end()).as_bytes());
            1
        }
        None => {
            let _ = sys::waitpid(pid, 0);
            sys::print(2, b"berth-shim: the shim died while creating the container\n");
            1
        }
    }
}

struct Client {
    id: u64,
    fd: Fd,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Create,
    Start,
    Delete,
}

struct Shim {
    a: Args,
    rt_name: String,
    ep: Epoll,
    devnull: Fd,
    sigfd: Option<Fd>,
    /// To the caller-facing process, until the outcome is reported.
    sync: Option<Fd>,
    /// The container's stdout pipe (read end), or the pty master with --terminal.
    out: Option<Fd>,
    /// The container's stderr pipe (read end).
    err: Option<Fd>,
    /// The container's stdin pipe (write end), with --stdin and no --terminal.
    stdin: Option<Fd>,
    console: Option<Fd>,
    console_path: Option<CString>,
    console_conn: Option<Fd>,
    /// The runtime's own output when it is not the container's (start, terminal create).
    rt: Option<Fd>,
    capture: Vec<u8>,
    capture_stderr: bool,
    attach: Option<Fd>,
    clients: Vec<Client>,
    next_client: u64,
    log: Option<Log>,
    op: Option<(pid_t, Op)>,
    init_pid: pid_t,
    init_status: Option<c_int>,
    /// Children reaped before the init pid was known: (pid, status).
    early: Vec<(pid_t, c_int)>,
    /// Input not yet taken by the container; while any is pending, clients are not read.
    pending: Vec<u8>,
    pending_off: usize,
    input_blocked: bool,
    close_stdin_after: bool,
    failure: Option<String>,
    pid_file: CString,
    own_pid_file: bool,
}

fn daemon(a: Args, sync: Fd) -> ! {
    unsafe {
        // Nothing the caller left open may stay open here (a caller waiting for EOF on
        // a pipe it gave us would wait for the container's lifetime).
        let s = sync.raw() as libc::c_uint;
        if s > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, s - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, s + 1, !0u32, 0u32);
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let devnull = match sys::open(c"/dev/null", libc::O_RDWR, 0) {
        Ok(fd) => fd,
        Err(e) => {
            let mut m = b"\x01cannot open /dev/null: ".to_vec();
            m.extend_from_slice(format!("{e}").as_bytes());
            let _ = sys::write_all(sync.raw(), &m);
            unsafe { libc::_exit(1) }
        }
    };
    for i in 0..3 {
        unsafe { libc::dup2(devnull.raw(), i) };
    }
    let ep = match Epoll::new() {
        Ok(ep) => ep,
        Err(_) => {
            let _ = sys::write_all(sync.raw(), b"\x01epoll_create failed");
            unsafe { libc::_exit(1) }
        }
    };
    let rt_name = String::from_utf8_lossy(a.runtime.to_bytes()).into_owned();
    let mut s = Shim {
        a,
        rt_name,
        ep,
        devnull,
        sigfd: None,
        sync: Some(sync),
        out: None,
        err: None,
        stdin: None,
        console: None,
        console_path: None,
        console_conn: None,
        rt: None,
        capture: Vec::new(),
        capture_stderr: false,
        attach: None,
        clients: Vec::new(),
        next_client: 0,
        log: None,
        op: None,
        init_pid: 0,
        init_status: None,
        early: Vec::new(),
        pending: Vec::new(),
        pending_off: 0,
        input_blocked: false,
        close_stdin_after: false,
        failure: None,
        pid_file: CString::default(),
        own_pid_file: false,
    };
    if let Err(msg) = s.setup() {
        s.finish_failure(msg);
    }
    s.run()
}

fn tmp_dir() -> &'static [u8] {
    sys::getenv(c"TMPDIR").filter(|d| !d.is_empty()).unwrap_or(b"/tmp")
}

fn tmp_path(what: &str) -> CString {
    let mut v = tmp_dir().to_vec();
    v.extend_from_slice(format!("/berth-shim.{}.{}", unsafe { libc::getpid() }, what).as_bytes());
    CString::new(v).unwrap()
}

/// Removes `berth-shim.PID.console` and `berth-shim.PID.pid` in the temporary directory
/// whose shim is gone. The runtime's record covers them once it has started; a shim
/// SIGKILLed in the moment between making its console socket and starting the runtime
/// leaves one that only the next shim can find.
fn sweep_stale_tmp_files() {
    let dir = tmp_dir();
    let Ok(d) = CString::new(dir) else { return };
    let me = unsafe { libc::getpid() };
    for name in sys::list_dir(&d) {
        let Some(rest) = name.strip_prefix(b"berth-shim.") else { continue };
        let Some(dot) = rest.iter().position(|&b| b == b'.') else { continue };
        let (pid, kind) = (&rest[..dot], &rest[dot + 1..]);
        if kind != b"console" && kind != b"pid" {
            continue;
        }
        let Some(pid) = core::str::from_utf8(pid).ok().and_then(|p| p.parse::<pid_t>().ok()).filter(|&p| p > 0 && p != me) else { continue };
        if unsafe { libc::kill(pid, 0) } != 0 && sys::errno() == libc::ESRCH {
            let mut path = dir.to_vec();
            path.push(b'/');
            path.extend_from_slice(&name);
            if let Ok(p) = CString::new(path) {
                sys::unlink(&p);
            }
        }
    }
}

fn lossy(c: &CStr) -> alloc::borrow::Cow<'_, str> {
    String::from_utf8_lossy(c.to_bytes())
}

fn describe(status: c_int) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", sys::exit_code(status))
    }
}

fn would_block(e: &Errno) -> bool {
    e.0 == libc::EAGAIN
}

impl Shim {
    fn setup(&mut self) -> Result<(), String> {
        // SIGCHLD through a signalfd; it stays blocked for good.
        unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::sigprocmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
            let fd = sys::cvt(libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)).map_err(|e| format!("signalfd: {e}"))?;
            self.sigfd = Some(Fd::new(fd));
            self.ep.add(fd, EPOLLIN, T_SIG).map_err(|e| format!("epoll: {e}"))?;
        }
        sweep_stale_tmp_files();
        if let Some(p) = &self.a.shim_pid_file {
            let mut b = [0u8; 24];
            sys::write_file_atomic(p, sys::fmt_int(unsafe { libc::getpid() } as i64, &mut b))
                .map_err(|e| format!("cannot write --shim-pid-file {}: {e}", lossy(p)))?;
        }
        if let Some(p) = &self.a.log_path {
            let log = Log::open(p.clone(), self.a.log_json, self.a.log_size_max).map_err(|e| format!("cannot open --log-path {}: {e}", lossy(p)))?;
            self.log = Some(log);
        }
        if self.a.stdin {
            self.pending = Vec::with_capacity(CHUNK);
        }
        match &self.a.pid_file {
            Some(p) => self.pid_file = p.clone(),
            None => {
                self.pid_file = tmp_path("pid");
                self.own_pid_file = true;
            }
        }
        let ep_err = |e: Errno| format!("epoll: {e}");
        // The files this shim makes for the container, named to the runtime: berth
        // records them at create, and its `delete` removes those a killed shim left.
        let mut owned: Vec<u8> = b"BERTH_OWNED_FILES=".to_vec();
        let mut own = |p: &CStr| {
            owned.extend_from_slice(sys::absolute(p).to_bytes());
            owned.push(b'\n');
        };
        if let Some(p) = &self.a.attach_socket {
            own(p);
        }
        if self.own_pid_file {
            own(&self.pid_file);
        }
        let console_path = self.a.terminal.then(|| tmp_path("console"));
        if let Some(p) = &console_path {
            own(p);
        }
        let owned = CString::new(owned).map_err(|_| "a path contains a NUL byte".to_owned())?;
        let mut argv = self.rt_argv(&[b"create", b"--bundle"]);
        argv.push(self.a.bundle.clone());
        argv.push(c"--pid-file".into());
        argv.push(self.pid_file.clone());
        let pid = if let Some(path) = console_path {
            let l = sys::unix_listen(&path, libc::SOCK_STREAM).map_err(|e| format!("console socket {}: {e}", lossy(&path)))?;
            self.console_path = Some(path.clone());
            self.ep.add(l.raw(), EPOLLIN, T_CONSOLE).map_err(ep_err)?;
            self.console = Some(l);
            argv.push(c"--console-socket".into());
            argv.push(path);
            argv.push(self.a.id.clone());
            let w = self.rt_pipe()?;
            sys::spawn_env(&argv, [self.devnull.raw(), w.raw(), w.raw()], Some(&owned))
        } else {
            argv.push(self.a.id.clone());
            let pipe_err = |e: Errno| format!("pipe: {e}");
            let (or, ow) = sys::pipe().map_err(pipe_err)?;
            let (er, ew) = sys::pipe().map_err(pipe_err)?;
            for (fd, tok) in [(&or, T_OUT), (&er, T_ERR)] {
                sys::set_nonblock(fd.raw()).map_err(pipe_err)?;
                self.ep.add(fd.raw(), EPOLLIN, tok).map_err(ep_err)?;
            }
            self.out = Some(or);
            self.err = Some(er);
            let stdin_r = if self.a.stdin {
                let (ir, iw) = sys::pipe().map_err(pipe_err)?;
                sys::set_nonblock(iw.raw()).map_err(pipe_err)?;
                self.stdin = Some(iw);
                Some(ir)
            } else {
                None
            };
            self.capture_stderr = true;
            let i = stdin_r.as_ref().map_or(self.devnull.raw(), |f| f.raw());
            sys::spawn_env(&argv, [i, ow.raw(), ew.raw()], Some(&owned))
            // the child's ends close here
        }
        .map_err(|e| format!("cannot run {}: {e}", self.rt_name))?;
        self.op = Some((pid, Op::Create));
        Ok(())
    }

    /// `<runtime> [--root R] <words...>`
    fn rt_argv(&self, words: &[&[u8]]) -> Vec<CString> {
        let mut v = vec![self.a.runtime.clone()];
        if let Some(r) = &self.a.root {
            v.push(c"--root".into());
            v.push(r.clone());
        }
        v.extend(words.iter().map(|w| CString::new(*w).unwrap()));
        v
    }

    /// A fresh pipe for the runtime's own output; returns the write end for the child.
    fn rt_pipe(&mut self) -> Result<Fd, String> {
        if let Some(old) = self.rt.take() {
            self.ep.del(old.raw());
        }
        let (r, w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
        sys::set_nonblock(r.raw()).map_err(|e| format!("pipe: {e}"))?;
        self.ep.add(r.raw(), EPOLLIN, T_RT).map_err(|e| format!("epoll: {e}"))?;
        self.rt = Some(r);
        Ok(w)
    }

    fn spawn_op(&mut self, op: Op) -> Result<(), String> {
        let words: &[&[u8]] = match op {
            Op::Start => &[b"start"],
            Op::Delete => &[b"delete", b"--force"],
            Op::Create => unreachable!(),
        };
        let mut argv = self.rt_argv(words);
        argv.push(self.a.id.clone());
        let pid = if op == Op::Start {
            let w = self.rt_pipe()?;
            sys::spawn(&argv, [self.devnull.raw(), w.raw(), w.raw()])
        } else {
            let n = self.devnull.raw();
            sys::spawn(&argv, [n, n, n])
        }
        .map_err(|e| format!("cannot run {}: {e}", self.rt_name))?;
        self.op = Some((pid, op));
        Ok(())
    }

    fn run(&mut self) -> ! {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
        let mut buf = [0u8; CHUNK + 1];
        loop {
            if self.init_status.is_some() && self.op.is_none() && self.sync.is_none() {
                self.finish_exit(&mut buf);
            }
            let n = self.ep.wait(&mut events);
            for ev in &events[..n] {
                let (bits, tok) = (ev.events, ev.u64);
                match tok {
                    T_SIG => self.on_signal(&mut buf),
                    T_OUT => self.on_output(STDOUT, bits, &mut buf),
                    T_ERR => self.on_output(STDERR, bits, &mut buf),
                    T_STDIN => self.flush_pending(),
                    T_ATTACH => self.on_attach_accept(),
                    T_CONSOLE => self.on_console_accept(),
                    T_CONSOLE_CONN => self.on_console_msg(),
                    T_RT => self.on_rt(),
                    t if t >= T_CLIENT => self.on_client(t - T_CLIENT, bits, &mut buf),
                    _ => {}
                }
            }
        }
    }

    // ---- children ----

    fn on_signal(&mut self, buf: &mut [u8]) {
        if let Some(fd) = &self.sigfd {
            while matches!(sys::read(fd.raw(), &mut buf[..]), Ok(n) if n > 0) {}
        }
        while let Ok((pid, st)) = sys::waitpid(-1, libc::WNOHANG) {
            if pid <= 0 {
                break;
            }
            self.reaped(pid, st, buf);
        }
    }

    fn reaped(&mut self, pid: pid_t, st: c_int, buf: &mut [u8]) {
        if let Some((p, op)) = self.op {
            if p == pid {
                self.op = None;
                self.op_done(op, st, buf);
                return;
            }
        }
        if self.init_pid != 0 {
            if pid == self.init_pid && self.init_status.is_none() {
                self.init_status = Some(st);
            }
        } else {
            // The init may exit before the runtime's create returns; remember it.
            if self.early.len() >= 64 {
                self.early.remove(0);
            }
            self.early.push((pid, st));
        }
    }

    fn op_done(&mut self, op: Op, st: c_int, buf: &mut [u8]) {
        if op == Op::Delete {
            let msg = self.failure.take().unwrap_or_default();
            self.finish_failure(msg);
        }
        // Everything the runtime wrote is in the pipe by now.
        if self.capture_stderr {
            self.drain(STDERR, buf);
            self.capture_stderr = false;
        }
        self.on_rt();
        let cap = String::from_utf8_lossy(&core::mem::take(&mut self.capture)).trim().to_owned();
        let ok = libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
        let what = if op == Op::Create { "create" } else { "start" };
        if !ok {
            let mut msg = format!("{} {what} failed ({})", self.rt_name, describe(st));
            if !cap.is_empty() {
                msg.push_str(": ");
                msg.push_str(&cap);
            }
            if op == Op::Create {
                // The runtime cleans up a failed create; the id may even be another
                // container's, so it is not ours to delete.
                self.finish_failure(msg);
            }
            return self.fail_and_delete(msg);
        }
        if op == Op::Start {
            return self.report_ok();
        }
        // Created: learn the init pid.
        let pid = sys::read_file(&self.pid_file).ok().and_then(|b| core::str::from_utf8(&b).ok()?.trim().parse::<pid_t>().ok()).filter(|&p| p > 0);
        if self.own_pid_file {
            sys::unlink(&self.pid_file);
        }
        let Some(pid) = pid else {
            return self.fail_and_delete(format!("{} create succeeded but wrote no pid to {}", self.rt_name, lossy(&self.pid_file)));
        };
        self.init_pid = pid;
        if let Some(&(_, st)) = self.early.iter().find(|(p, _)| *p == pid) {
            self.init_status = Some(st);
        }
        self.early = Vec::new();
        if self.a.terminal && self.out.is_none() {
            // The runtime has exited: if it sent the pty master, it is queued already.
            if self.console_conn.is_none() {
                self.on_console_accept();
            }
            self.on_console_msg();
            if self.out.is_none() {
                return self.fail_and_delete(format!("{} did not send the terminal over the console socket", self.rt_name));
            }
        }
        if let Err(msg) = self.listen_attach() {
            return self.fail_and_delete(msg);
        }
        if self.a.start {
            if let Err(msg) = self.spawn_op(Op::Start) {
                self.fail_and_delete(msg);
            }
        } else {
            self.report_ok();
        }
    }

    /// The attach socket, made once the container exists (and its record names the
    /// socket): a shim killed before then leaves no socket behind. Clients connect only
    /// after the caller gets control back, which is later still.
    fn listen_attach(&mut self) -> Result<(), String> {
        let Some(p) = &self.a.attach_socket else { return Ok(()) };
        let fd = sys::unix_listen(p, libc::SOCK_SEQPACKET).map_err(|e| format!("cannot listen on --attach-socket {}: {e}", lossy(p)))?;
        self.ep.add(fd.raw(), EPOLLIN, T_ATTACH).map_err(|e| format!("epoll: {e}"))?;
        self.attach = Some(fd);
        Ok(())
    }

    fn report_ok(&mut self) {
        if let Some(s) = self.sync.take() {
            let _ = sys::write_all(s.raw(), &[0]);
        }
    }

    /// Remove the container we created, then report `msg` and exit.
    fn fail_and_delete(&mut self, msg: String) {
        match self.spawn_op(Op::Delete) {
            Ok(()) => self.failure = Some(msg),
            Err(e) => self.finish_failure(format!("{msg}; {e}")),
        }
    }

    fn finish_failure(&mut self, msg: String) -> ! {
        self.clients.clear();
        self.remove_files();
        if let Some(p) = &self.a.shim_pid_file {
            sys::unlink(p);
        }
        sys::reap_all();
        // Last: the caller returns as soon as it has read this.
        if let Some(s) = &self.sync {
            let mut m = Vec::with_capacity(msg.len() + 1);
            m.push(1);
            m.extend_from_slice(msg.as_bytes());
            let _ = sys::write_all(s.raw(), &m);
        }
        unsafe { libc::_exit(1) }
    }

    fn remove_files(&mut self) {
        if self.attach.take().is_some() {
            if let Some(p) = &self.a.attach_socket {
                sys::unlink(p);
            }
        }
        if let Some(p) = self.console_path.take() {
            sys::unlink(&p);
        }
        if self.own_pid_file {
            sys::unlink(&self.pid_file);
        }
    }

    fn finish_exit(&mut self, buf: &mut [u8]) -> ! {
        self.drain(STDOUT, buf);
        self.drain(STDERR, buf);
        if let Some(l) = &mut self.log {
            l.flush();
        }
        let code = sys::exit_code(self.init_status.unwrap_or(0));
        let mut digits = [0u8; 24];
        let d = sys::fmt_int(code as i64, &mut digits);
        if let Some(p) = &self.a.exit_file {
            let _ = sys::write_file_atomic(p, d);
        }
        buf[0] = TAG_EXIT;
        buf[1..1 + d.len()].copy_from_slice(d);
        self.broadcast(&buf[..1 + d.len()]);
        self.clients.clear();
        // The shim pid file stays: the caller may learn the pid only after we are gone.
        self.remove_files();
        sys::reap_all();
        if let Some(cmd) = &self.a.exit_command {
            let mut argv = vec![cmd.clone()];
            argv.extend(self.a.exit_command_args.iter().cloned());
            let n = self.devnull.raw();
            if let Ok(pid) = sys::spawn(&argv, [n, n, n]) {
                let _ = sys::waitpid(pid, 0);
            }
            sys::reap_all();
        }
        unsafe { libc::_exit(0) }
    }

    // ---- output ----

    fn stream_fd(&self, stream: u8) -> Option<&Fd> {
        if stream == STDOUT {
            self.out.as_ref()
        } else {
            self.err.as_ref()
        }
    }

    fn on_output(&mut self, stream: u8, bits: u32, buf: &mut [u8]) {
        if stream == STDOUT && self.a.terminal && bits & EPOLLOUT != 0 {
            self.flush_pending();
        }
        if bits & (EPOLLIN | EPOLLHUP | EPOLLERR) == 0 {
            return;
        }
        let Some(fd) = self.stream_fd(stream).map(|f| f.raw()) else {
            return;
        };
        match sys::read(fd, &mut buf[1..]) {
            Ok(0) => self.close_stream(stream),
            Ok(n) => self.emit(stream, &mut buf[..n + 1]),
            Err(e) if would_block(&e) => {
                if bits & EPOLLIN == 0 {
                    self.close_stream(stream);
                }
            }
            // EIO: the pty's last slave closed
            Err(_) => self.close_stream(stream),
        }
    }

    /// Read what is there now, without waiting.
    fn drain(&mut self, stream: u8, buf: &mut [u8]) {
        for _ in 0..1024 {
            let Some(fd) = self.stream_fd(stream).map(|f| f.raw()) else {
                return;
            };
            match sys::read(fd, &mut buf[1..]) {
                Ok(0) => return self.close_stream(stream),
                Ok(n) => self.emit(stream, &mut buf[..n + 1]),
                Err(e) if would_block(&e) => return,
                Err(_) => return self.close_stream(stream),
            }
        }
    }

    fn close_stream(&mut self, stream: u8) {
        let fd = if stream == STDOUT { self.out.take() } else { self.err.take() };
        if let Some(fd) = fd {
            self.ep.del(fd.raw());
        }
        if stream == STDOUT && self.a.terminal && self.input_blocked {
            self.unblock_input();
        }
    }

    /// `pkt` is one byte of room followed by the data read from `stream`.
    fn emit(&mut self, stream: u8, pkt: &mut [u8]) {
        let data = &pkt[1..];
        if self.capture_stderr && stream == STDERR && self.capture.len() < CAPTURE_MAX {
            let n = data.len().min(CAPTURE_MAX - self.capture.len());
            self.capture.extend_from_slice(&data[..n]);
        }
        if let Some(l) = &mut self.log {
            l.write(stream, data);
        }
        if !self.clients.is_empty() {
            pkt[0] = stream;
            self.broadcast(pkt);
        }
    }

    /// Send one packet to every client without waiting; a client that cannot take it
    /// (gone, or too slow to keep its socket buffer from filling) is dropped.
    fn broadcast(&mut self, pkt: &[u8]) {
        self.clients.retain(|c| {
            let r = unsafe { libc::send(c.fd.raw(), pkt.as_ptr().cast(), pkt.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
            r >= 0
        });
    }

    fn on_rt(&mut self) {
        let Some(fd) = self.rt.as_ref().map(|f| f.raw()) else {
            return;
        };
        let mut b = [0u8; 1024];
        loop {
            match sys::read(fd, &mut b) {
                Ok(n) if n > 0 => {
                    let room = CAPTURE_MAX.saturating_sub(self.capture.len());
                    self.capture.extend_from_slice(&b[..n.min(room)]);
                }
                Err(e) if would_block(&e) => return,
                _ => {
                    self.ep.del(fd);
                    self.rt = None;
                    return;
                }
            }
        }
    }

    // ---- console socket ----

    fn on_console_accept(&mut self) {
        let Some(l) = &self.console else { return };
        if let Ok(c) = sys::accept(l.raw()) {
            if self.ep.add(c.raw(), EPOLLIN, T_CONSOLE_CONN).is_ok() {
                self.console_conn = Some(c);
            }
        }
    }

    fn on_console_msg(&mut self) {
        let Some(c) = &self.console_conn else { return };
        match sys::recv_fd(c.raw()) {
            Ok(Some(master)) => {
                self.console_conn = None;
                self.console = None;
                if let Some(p) = self.console_path.take() {
                    sys::unlink(&p);
                }
                if sys::set_nonblock(master.raw()).is_ok() && self.ep.add(master.raw(), EPOLLIN, T_OUT).is_ok() {
                    self.out = Some(master);
                }
            }
            Err(e) if would_block(&e) => {}
            _ => self.console_conn = None,
        }
    }

    // ---- attach ----

    fn on_attach_accept(&mut self) {
        let Some(l) = &self.attach else { return };
        while let Ok(fd) = sys::accept(l.raw()) {
            let id = self.next_client;
            self.next_client += 1;
            if !self.input_blocked && self.ep.add(fd.raw(), EPOLLIN, T_CLIENT + id).is_err() {
                continue;
            }
            self.clients.push(Client { id, fd });
        }
    }

    fn drop_client(&mut self, id: u64) {
        self.clients.retain(|c| c.id != id);
    }

    fn on_client(&mut self, id: u64, bits: u32, buf: &mut [u8]) {
        for _ in 0..16 {
            if self.input_blocked {
                return; // read again once the container has taken the pending input
            }
            let Some(fd) = self.clients.iter().find(|c| c.id == id).map(|c| c.fd.raw()) else {
                return;
            };
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n > 0 {
                self.on_packet(&buf[..n as usize]);
                continue;
            }
            if n < 0 && sys::errno() == libc::EAGAIN {
                if bits & (EPOLLHUP | EPOLLERR) != 0 {
                    self.drop_client(id);
                }
                return;
            }
            if n < 0 && sys::errno() == libc::EINTR {
                continue;
            }
            // 0: the client has gone (an empty packet is not valid either)
            return self.drop_client(id);
        }
    }

    fn on_packet(&mut self, p: &[u8]) {
        match p[0] {
            TAG_STDIN if self.a.stdin => self.write_input(&p[1..]),
            TAG_CLOSE_STDIN if self.a.stdin && !self.a.terminal => {
                if self.input_blocked {
                    self.close_stdin_after = true;
                } else {
                    self.close_stdin();
                }
            }
            TAG_RESIZE if self.a.terminal && p.len() >= 5 => {
                if let Some(m) = &self.out {
                    let ws = libc::winsize { ws_row: u16::from_le_bytes([p[1], p[2]]), ws_col: u16::from_le_bytes([p[3], p[4]]), ws_xpixel: 0, ws_ypixel: 0 };
                    unsafe { libc::ioctl(m.raw(), libc::TIOCSWINSZ, &ws) };
                }
            }
            _ => {}
        }
    }

    fn input_sink(&self) -> Option<c_int> {
        if self.a.terminal { self.out.as_ref() } else { self.stdin.as_ref() }.map(|f| f.raw())
    }

    fn write_input(&mut self, data: &[u8]) {
        let Some(fd) = self.input_sink() else { return };
        if data.is_empty() {
            return;
        }
        let rest = match sys::write(fd, data) {
            Ok(n) if n == data.len() => return,
            Ok(n) => &data[n..],
            Err(e) if would_block(&e) => data,
            Err(_) => {
                // The container closed its stdin: input has nowhere to go.
                if !self.a.terminal {
                    self.close_stdin();
                }
                return;
            }
        };
        // Stop reading clients until the container takes this.
        self.pending.clear();
        self.pending.extend_from_slice(rest);
        self.pending_off = 0;
        self.input_blocked = true;
        for c in &self.clients {
            self.ep.del(c.fd.raw());
        }
        let ok = if self.a.terminal { self.ep.modify(fd, EPOLLIN | EPOLLOUT, T_OUT) } else { self.ep.add(fd, EPOLLOUT, T_STDIN) };
        if ok.is_err() {
            self.unblock_input();
        }
    }

    fn flush_pending(&mut self) {
        if !self.input_blocked {
            return;
        }
        let Some(fd) = self.input_sink() else {
            return self.unblock_input();
        };
        match sys::write(fd, &self.pending[self.pending_off..]) {
            Ok(n) => {
                self.pending_off += n;
                if self.pending_off >= self.pending.len() {
                    self.unblock_input();
                }
            }
            Err(e) if would_block(&e) => {}
            Err(_) => {
                if !self.a.terminal {
                    self.close_stdin_after = true;
                }
                self.unblock_input();
            }
        }
    }

    fn unblock_input(&mut self) {
        self.pending.clear();
        self.pending_off = 0;
        self.input_blocked = false;
        if let Some(fd) = self.input_sink() {
            if self.a.terminal {
                let _ = self.ep.modify(fd, EPOLLIN, T_OUT);
            } else {
                self.ep.del(fd);
            }
        }
        let ep = &self.ep;
        self.clients.retain(|c| ep.add(c.fd.raw(), EPOLLIN, T_CLIENT + c.id).is_ok());
        if self.close_stdin_after {
            self.close_stdin_after = false;
            self.close_stdin();
        }
    }

    fn close_stdin(&mut self) {
        if let Some(fd) = self.stdin.take() {
            self.ep.del(fd.raw());
        }
    }
}
