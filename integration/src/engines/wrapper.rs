//! The runtime as the engine sees it: a shell script named like the runtime (podman
//! picks behaviour, e.g. `--log-format=json`, by the binary's name) that logs every call
//! and then runs the real binary as its child, keeping its stdio, fds and exit status.
//!
//! Log lines, one record each, `ID` being the wrapper's pid:
//!   `ID start CALLER ARGV...` (CALLER: the parent's comm, e.g. conmon, podman, containerd-shim)
//!   `ID stdin FILE`           (a copy of stdin, when an argument is `-`: `update --resources -`)
//!   `ID config FILE`         (a copy of the bundle's config.json, for `create` and `run`)
//!   `ID exit CODE`
//!   `ID log LINE`             (on failure, the last lines of the runtime's `--log` file)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct Wrapper {
    /// The script the engine is given as its runtime.
    pub path: PathBuf,
    pub real: PathBuf,
    pub log: PathBuf,
}

/// One runtime call.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub id: String,
    pub caller: String,
    /// The arguments, each in single quotes.
    pub argv: String,
    pub stdin: Option<String>,
    /// A copy of the bundle's config.json (create, run).
    pub config: Option<String>,
    pub exit: Option<i32>,
    pub log: Vec<String>,
}

impl Call {
    pub fn describe(&self) -> String {
        let mut s = format!("[{}] {} -> exit {}", self.caller, self.argv, self.exit.map(|c| c.to_string()).unwrap_or_else(|| "?".into()));
        if let Some(f) = &self.stdin {
            s.push_str(&format!("\n      stdin: {}", std::fs::read_to_string(f).unwrap_or_default().trim()));
        }
        if let Some(f) = &self.config {
            s.push_str(&format!("\n      config.json: {}", summarize_config(f)));
        }
        for l in &self.log {
            s.push_str(&format!("\n      log: {l}"));
        }
        s
    }
    /// The runtime subcommand (create, start, exec, kill, ...), skipping global flags.
    pub fn subcommand(&self) -> String {
        let words: Vec<String> = self.argv.split("' '").map(|w| w.trim_matches(|c| c == '\'' || c == ' ').to_string()).collect();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if w == "--root" || w == "--log" || w == "--log-format" || w == "--criu" || w == "--rootless" {
                i += 2;
                continue;
            }
            if w.starts_with('-') {
                i += 1;
                continue;
            }
            return w.clone();
        }
        String::new()
    }
}

const SCRIPT: &str = r#"#!/bin/sh
# berth engine e2e: log this runtime call, then run the runtime.
LOG='@LOG@'
REAL='@REAL@'
DIR='@DIR@'
id=$$
comm=unknown
read -r comm < /proc/$PPID/comm 2>/dev/null
line=""
cap=""
prev=""
bundle=""
sub=""
for a in "$@"; do
  line="$line '$a'"
  [ "$a" = "-" ] && cap=1
  case "$prev" in --bundle|-b) bundle="$a" ;; esac
  case "$a" in --bundle=*) bundle="${a#--bundle=}" ;; create|run) [ -z "$sub" ] && sub="$a" ;; esac
  prev="$a"
done
printf '%s start %s%s\n' "$id" "$comm" "$line" >> "$LOG"
if [ -n "$sub" ]; then
  [ -n "$bundle" ] || bundle=.
  if cp "$bundle/config.json" "$DIR/config.$id.json" 2>/dev/null; then
    printf '%s config %s\n' "$id" "$DIR/config.$id.json" >> "$LOG"
  fi
fi
if [ -n "$cap" ]; then
  cat > "$DIR/stdin.$id"
  printf '%s stdin %s\n' "$id" "$DIR/stdin.$id" >> "$LOG"
  exec < "$DIR/stdin.$id"
fi
"$REAL" "$@"
rc=$?
printf '%s exit %s\n' "$id" "$rc" >> "$LOG"
if [ "$rc" != 0 ]; then
  prev=""
  logf=""
  for a in "$@"; do
    [ "$prev" = "--log" ] && logf="$a"
    case "$a" in --log=*) logf="${a#--log=}" ;; esac
    prev="$a"
  done
  if [ -n "$logf" ] && [ -f "$logf" ]; then
    tail -n 4 "$logf" | while IFS= read -r l; do printf '%s log %s\n' "$id" "$l" >> "$LOG"; done
  fi
fi
exit $rc
"#;

impl Wrapper {
    /// Writes `<dir>/<name>/<name>` running `real`, logging to `<dir>/calls.log`.
    pub fn new(dir: &Path, name: &str, real: &Path) -> Wrapper {
        let wdir = dir.join(name);
        std::fs::create_dir_all(&wdir).expect("create wrapper dir");
        let path = wdir.join(name);
        let log = dir.join("calls.log");
        let real = std::fs::canonicalize(real).unwrap_or_else(|_| real.to_path_buf());
        let text = SCRIPT.replace("@LOG@", &log.to_string_lossy()).replace("@REAL@", &real.to_string_lossy()).replace("@DIR@", &wdir.to_string_lossy());
        std::fs::write(&path, text).expect("write wrapper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
        std::fs::write(&log, "").expect("create call log");
        Wrapper { path, real, log }
    }

    /// Where the log ends now (to take the calls of one scenario).
    pub fn mark(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The calls logged since `mark`.
    pub fn calls_since(&self, mark: u64) -> Vec<Call> {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes[(mark as usize).min(bytes.len())..]).into_owned();
        parse(&text)
    }

    pub fn all_calls(&self) -> Vec<Call> {
        self.calls_since(0)
    }
}

/// The parts of a config.json that most often explain a difference: the process's
/// args and terminal, and the namespaces (with `=path` when joined).
pub fn summarize_config(path: &str) -> String {
    let Ok(text) = std::fs::read_to_string(path) else { return format!("{path} (gone)") };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { return format!("{path} (not JSON)") };
    let ns: Vec<String> = v["linux"]["namespaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| match n["path"].as_str() {
                    Some(p) if !p.is_empty() => format!("{}={p}", n["type"].as_str().unwrap_or("?")),
                    _ => n["type"].as_str().unwrap_or("?").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let hooks: Vec<String> =
        v["hooks"].as_object().map(|h| h.iter().map(|(k, v)| format!("{k}:{}", v.as_array().map(|a| a.len()).unwrap_or(0))).collect()).unwrap_or_default();
    format!(
        "args={} terminal={} namespaces=[{}] hooks=[{}] seccomp={} ({path})",
        v["process"]["args"],
        v["process"]["terminal"].as_bool().unwrap_or(false),
        ns.join(","),
        hooks.join(","),
        if v["linux"]["seccomp"].is_object() { "yes" } else { "no" },
    )
}

pub fn parse(text: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ' ');
        let (Some(id), Some(kind)) = (f.next(), f.next()) else { continue };
        let rest = f.next().unwrap_or("");
        // The latest call with this id (pids are reused, but not while a call runs).
        let find = |calls: &mut Vec<Call>| calls.iter().rposition(|c| c.id == id);
        match kind {
            "start" => {
                let (caller, argv) = rest.split_once(' ').unwrap_or((rest, ""));
                calls.push(Call { id: id.to_string(), caller: caller.to_string(), argv: argv.trim().to_string(), ..Default::default() });
            }
            "stdin" => {
                if let Some(i) = find(&mut calls) {
                    calls[i].stdin = Some(rest.to_string());
                }
            }
            "config" => {
                if let Some(i) = find(&mut calls) {
                    calls[i].config = Some(rest.to_string());
                }
            }
            "exit" => {
                if let Some(i) = find(&mut calls) {
                    calls[i].exit = rest.trim().parse().ok();
                }
            }
            "log" => {
                if let Some(i) = find(&mut calls) {
                    calls[i].log.push(rest.to_string());
                }
            }
            _ => {}
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_call_log() {
        let t = "10 start conmon '--log-format=json' '--log' '/x/oci-log' 'create' 'abc'\n11 start podman 'start' 'abc'\n10 exit 1\n10 log {\"level\":\"error\",\"msg\":\"boom\"}\n11 exit 0\n";
        let c = parse(t);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].caller, "conmon");
        assert_eq!(c[0].exit, Some(1));
        assert_eq!(c[0].subcommand(), "create");
        assert_eq!(c[0].log.len(), 1);
        assert_eq!(c[1].subcommand(), "start");
        assert_eq!(c[1].exit, Some(0));
    }
}
