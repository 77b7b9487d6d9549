//! The build's progress display, on stderr.
//!
//! Plain (`--progress plain`, or stderr is not a terminal), as BuildKit prints it:
//!
//! ```text
//! #3 [2/5] RUN echo hi
//! #3 0.215 hi
//! #3 DONE 0.4s
//!
//! #4 [3/5] COPY app /app
//! #4 CACHED
//! ```
//!
//! TTY: finished steps scroll up as one line each (`=> [2/5] RUN echo hi  0.4s  12.3kB`,
//! `=> CACHED [3/5] COPY ...`); below them a live area, redrawn ten times a second,
//! shows the running step with its timer and the last lines of its output. A failing
//! step's whole output is printed when it fails, in both modes.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
}

impl Mode {
    /// `auto`, `plain` or `tty`; auto is tty when stderr is a terminal.
    pub fn parse(s: &str) -> crate::Result<Mode> {
        match s {
            "auto" => Ok(if stderr_is_tty() { Mode::Tty } else { Mode::Plain }),
            "plain" => Ok(Mode::Plain),
            "tty" => Ok(Mode::Tty),
            _ => Err(format!("invalid --progress {s:?}: want auto, plain or tty").into()),
        }
    }
}

fn stderr_is_tty() -> bool {
    // SAFETY: isatty on a descriptor number.
    unsafe { libc::isatty(2) == 1 }
}

fn term_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            return ws.ws_col as usize;
        }
    }
    80
}

/// A step's number in the display.
pub type StepId = usize;

struct Step {
    id: StepId,
    name: String,
    start: Instant,
    /// Output lines (complete), and the partial last one.
    lines: Vec<String>,
    partial: String,
    running: bool,
}

struct State {
    mode: Mode,
    out: Box<dyn Write + Send>,
    steps: Vec<Step>,
    next: StepId,
    /// Lines of the live area drawn last (TTY), to move back over.
    drawn: usize,
    ticker: bool,
}

/// The display; cheap to clone (shared).
#[derive(Clone)]
pub struct Progress {
    state: Arc<Mutex<State>>,
}

pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", units[i])
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress::with_writer(mode, Box::new(std::io::stderr()))
    }

    pub fn with_writer(mode: Mode, out: Box<dyn Write + Send>) -> Progress {
        Progress { state: Arc::new(Mutex::new(State { mode, out, steps: Vec::new(), next: 1, drawn: 0, ticker: false })) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a step (`[2/5] RUN echo hi`).
    pub fn start(&self, name: &str) -> StepId {
        let mut s = self.lock();
        let id = s.next;
        s.next += 1;
        s.steps.push(Step { id, name: name.to_string(), start: Instant::now(), lines: Vec::new(), partial: String::new(), running: true });
        match s.mode {
            Mode::Plain => {
                let _ = writeln!(s.out, "#{id} {name}");
            }
            Mode::Tty => {
                s.redraw();
                if !s.ticker {
                    s.ticker = true;
                    let weak = Arc::downgrade(&self.state);
                    std::thread::spawn(move || loop {
                        std::thread::sleep(Duration::from_millis(100));
                        let Some(st) = weak.upgrade() else { return };
                        let mut g = st.lock().unwrap_or_else(|e| e.into_inner());
                        if !g.steps.iter().any(|s| s.running) {
                            g.ticker = false;
                            return;
                        }
                        g.redraw();
                    });
                }
            }
        }
        let _ = s.out.flush();
        id
    }

    /// Output of a running step (stdout and stderr alike).
    pub fn output(&self, id: StepId, data: &[u8]) {
        let mut s = self.lock();
        let mode = s.mode;
        let Some(i) = s.steps.iter().position(|st| st.id == id) else { return };
        let text = String::from_utf8_lossy(data).into_owned();
        let mut complete = Vec::new();
        {
            let st = &mut s.steps[i];
            st.partial.push_str(&text);
            while let Some(n) = st.partial.find('\n') {
                let line: String = st.partial.drain(..=n).collect();
                let line = line.trim_end_matches('\n').trim_end_matches('\r').to_string();
                complete.push(line);
            }
        }
        let elapsed = s.steps[i].start.elapsed();
        for line in complete {
            if mode == Mode::Plain {
                let _ = writeln!(s.out, "#{id} {:.3} {line}", elapsed.as_secs_f64());
            }
            s.steps[i].lines.push(line);
        }
        let _ = s.out.flush();
    }

    /// A line about a step (`writing layer sha256:...`).
    pub fn note(&self, id: StepId, msg: &str) {
        let mut s = self.lock();
        if s.mode == Mode::Plain {
            let _ = writeln!(s.out, "#{id} {msg}");
            let _ = s.out.flush();
        } else if let Some(st) = s.steps.iter_mut().find(|st| st.id == id) {
            st.lines.push(msg.to_string());
        }
    }

    fn finish(&self, id: StepId, plain: String, tty: String) {
        let mut s = self.lock();
        let Some(i) = s.steps.iter().position(|st| st.id == id) else { return };
        let mut st = s.steps.remove(i);
        st.running = false;
        if !st.partial.is_empty() && s.mode == Mode::Plain {
            let line = std::mem::take(&mut st.partial);
            let _ = writeln!(s.out, "#{id} {:.3} {line}", st.start.elapsed().as_secs_f64());
        }
        match s.mode {
            Mode::Plain => {
                let _ = writeln!(s.out, "#{id} {plain}\n");
            }
            Mode::Tty => {
                s.clear_live();
                let _ = writeln!(s.out, "{tty}");
                s.redraw();
            }
        }
        let _ = s.out.flush();
    }

    /// The step was a cache hit.
    pub fn cached(&self, id: StepId) {
        let name = self.name(id);
        self.finish(id, "CACHED".into(), format!(" => CACHED {name}"));
    }

    /// The step finished; `layer`: the size of the layer it made.
    pub fn done(&self, id: StepId, layer: Option<u64>) {
        let name = self.name(id);
        let el = self.elapsed(id);
        let size = layer.map(|n| format!("  {}", human_size(n))).unwrap_or_default();
        self.finish(id, format!("DONE {}", secs(el)), format!(" => {name}  {}{size}", secs(el)));
    }

    /// The step failed: its output so far is shown in full (TTY), then the error.
    pub fn error(&self, id: StepId, msg: impl std::fmt::Display) {
        let msg = msg.to_string();
        let msg = msg.as_str();
        let name = self.name(id);
        let lines = {
            let s = self.lock();
            s.steps.iter().find(|st| st.id == id).map(|st| {
                let mut l = st.lines.clone();
                if !st.partial.is_empty() {
                    l.push(st.partial.clone());
                }
                l
            })
        };
        let mut tty = format!(" => ERROR {name}  {}\n", secs(self.elapsed(id)));
        for l in lines.unwrap_or_default() {
            tty.push_str(&format!("  | {l}\n"));
        }
        tty.push_str(&format!("  ERROR: {msg}"));
        self.finish(id, format!("ERROR: {msg}"), tty);
    }

    /// A line outside any step.
    pub fn message(&self, msg: &str) {
        let mut s = self.lock();
        s.clear_live();
        let _ = writeln!(s.out, "{msg}");
        s.redraw();
        let _ = s.out.flush();
    }

    fn name(&self, id: StepId) -> String {
        self.lock().steps.iter().find(|s| s.id == id).map(|s| s.name.clone()).unwrap_or_default()
    }

    fn elapsed(&self, id: StepId) -> Duration {
        self.lock().steps.iter().find(|s| s.id == id).map(|s| s.start.elapsed()).unwrap_or_default()
    }
}

impl State {
    fn clear_live(&mut self) {
        if self.mode == Mode::Tty && self.drawn > 0 {
            let _ = write!(self.out, "\x1b[{}A\r\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn redraw(&mut self) {
        if self.mode != Mode::Tty {
            return;
        }
        self.clear_live();
        let width = term_width().max(20);
        let mut lines = Vec::new();
        for st in self.steps.iter().filter(|s| s.running) {
            lines.push(format!(" => {}  {}", st.name, secs(st.start.elapsed())));
            let mut tail: Vec<&str> = st.lines.iter().map(String::as_str).collect();
            if !st.partial.is_empty() {
                tail.push(&st.partial);
            }
            let skip = tail.len().saturating_sub(6);
            for l in &tail[skip..] {
                lines.push(format!("  | {l}"));
            }
        }
        for l in &lines {
            let cut: String = l.chars().take(width - 1).collect();
            let _ = writeln!(self.out, "{cut}");
        }
        self.drawn = lines.len();
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_lines() {
        let buf = Buf::default();
        let p = Progress::with_writer(Mode::Plain, Box::new(buf.clone()));
        let a = p.start("[1/2] RUN echo hi");
        p.output(a, b"hi\nthere");
        p.done(a, Some(1234));
        let b = p.start("[2/2] COPY x /x");
        p.cached(b);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("#1 [1/2] RUN echo hi\n"), "{text}");
        assert!(text.contains(" hi\n") && text.contains(" there\n"), "{text}");
        assert!(text.contains("#1 DONE "), "{text}");
        assert!(text.contains("#2 CACHED"), "{text}");
        assert_eq!(human_size(1234), "1.2kB");
        assert_eq!(human_size(12), "12B");
    }
}
