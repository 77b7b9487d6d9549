//! The one table (median [p90] of every figure, and the ratios), the targets of issue 9,
//! and the JSON file.

use super::stats::{round, Summary};
use super::{Ctx, Rt};
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;

pub struct Target {
    pub what: String,
    pub value: Option<f64>,
    pub limit: f64,
    pub met: Option<bool>,
}

pub struct Report<'a> {
    ctx: &'a Ctx,
    machine: Value,
    elapsed_s: f64,
    error: Option<String>,
    cleanup_problems: Vec<String>,
    date: String,
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell(s: Option<Summary>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{} [{}]", num(s.median), num(s.p90)),
        Some(s) => num(s.median),
        None => "-".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() => Some(a / b),
        _ => None,
    }
}

/// 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st, ...
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn rcell(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "-".into())
}

/// A UTC timestamp without a date library (days-from-civil, inverted).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

const LIFECYCLE_OPS: &[&str] = &["run", "create", "start", "state", "kill", "delete"];

impl<'a> Report<'a> {
    pub fn new(ctx: &'a Ctx, machine: Value, elapsed_s: f64, error: Option<String>, cleanup_problems: Vec<String>) -> Report<'a> {
        Report { ctx, machine, elapsed_s, error, cleanup_problems, date: utc_now() }
    }

    fn has(&self, name: &str) -> bool {
        self.ctx.rts.iter().any(|r| r.name == name)
    }

    fn med(&self, section: &str, subject: &str, metric: &str) -> Option<f64> {
        self.ctx.rec.median(section, subject, metric)
    }

    /// The largest median peak RSS over the lifecycle commands.
    fn peak_rss(&self, rt: &str) -> Option<f64> {
        LIFECYCLE_OPS.iter().filter_map(|op| self.med("lifecycle", rt, &format!("{op}.maxrss_kb"))).reduce(f64::max)
    }

    /// The shim comparison's runtime: runc (conmon's usual partner) when measured.
    fn shim_rt(&self) -> Option<String> {
        let d = self.ctx.rec.data.get("shims")?;
        ["runc", "berth", "crun"].into_iter().find(|r| d.contains_key(&format!("berth-shim+{r}")) && d.contains_key(&format!("conmon+{r}"))).map(String::from)
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut t = Vec::new();
        let mut push = |what: &str, value: Option<f64>, limit: f64| {
            t.push(Target { what: what.into(), value, limit, met: value.map(|v| v <= limit) });
        };
        let l = "lifecycle";
        push("run wall time, berth/crun <= 0.8", ratio(self.med(l, "berth", "run.wall_ms"), self.med(l, "crun", "run.wall_ms")), 0.8);
        push("run CPU (user+sys), berth/crun <= 0.7", ratio(self.med(l, "berth", "run.cpu_ms"), self.med(l, "crun", "run.cpu_ms")), 0.7);
        push("runtime peak RSS (max over run/create/start/state/kill/delete), berth/crun <= 1", ratio(self.peak_rss("berth"), self.peak_rss("crun")), 1.0);
        let rt = self.shim_rt().unwrap_or_else(|| "runc".into());
        push(
            &format!("shim PSS (one idle shim, {rt} containers), berth-shim/conmon <= 1"),
            ratio(self.med("shims", &format!("berth-shim+{rt}"), "pss_kb"), self.med("shims", &format!("conmon+{rt}"), "pss_kb")),
            1.0,
        );
        let bb = |m: &str| ratio(self.med("builder", "berth-build", m), self.med("builder", "buildah", m));
        push("unchanged rebuild wall time, berth-build/buildah <= 0.15", bb("rebuild.wall_ms"), 0.15);
        push("commit of the 200 MB / 20k-file step, wall, berth-build/buildah <= 0.3", bb("commit_200mb.wall_ms"), 0.3);
        t
    }

    fn not_measured(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        if !self.ctx.rec.data.contains_key("builder") {
            v.extend(super::builder::PLANNED.iter().map(|s| s.to_string()));
        }
        v
    }

    pub fn table(&self) -> String {
        let ctx = self.ctx;
        let mut o = String::new();
        let rts: Vec<&Rt> = ctx.rts.iter().collect();
        let _ = writeln!(o, "\nberth benchmark, {} ({:.0} s)", self.date, self.elapsed_s);
        let _ = writeln!(
            o,
            "machine: {} {}, {} cpus ({}), {}; {}",
            self.machine["kernel"].as_str().unwrap_or(""),
            self.machine["arch"].as_str().unwrap_or(""),
            self.machine["cpus"],
            self.machine["cpu"].as_str().unwrap_or("?"),
            self.machine["memory"].as_str().unwrap_or(""),
            if ctx.host_ns.is_some() {
                "hybrid cgroups, measured as v1 only (private mount ns without /sys/fs/cgroup/unified) except *hybrid rows"
            } else {
                ""
            }
        );
        for r in &rts {
            let _ = writeln!(o, "  {:6} {} ({} KiB) {}", r.name, r.bin.display(), r.size / 1024, r.version);
        }
        let loads: Vec<String> = ctx.loads.iter().map(|(w, l)| format!("{w}: {l}")).collect();
        let _ = writeln!(o, "loadavg: {}", loads.join("; "));
        let _ = writeln!(
            o,
            "rounds: lifecycle {}, scale {} x {} containers, shims {}, builder {}; cells: median [p90]; times in ms, memory in KiB",
            ctx.opts.rounds, ctx.opts.scale_rounds, ctx.opts.scale, ctx.opts.shim_rounds, ctx.opts.builder_rounds
        );

        // Runtime sections: columns = runtimes (+ floors), then berth/runc, berth/crun.
        let mut cols: Vec<String> = rts.iter().map(|r| r.name.clone()).collect();
        let lc = ctx.rec.data.get("lifecycle");
        for f in ["floor", "floor+", "floor+sj"] {
            if lc.is_some_and(|d| d.contains_key(f)) {
                cols.push(f.into());
            }
        }
        let ratios: Vec<(&str, &str)> = [("berth", "runc"), ("berth", "crun")].into_iter().filter(|(a, b)| self.has(a) && self.has(b)).collect();
        let lw = 42;
        let cw = 15;
        let header = |o: &mut String, title: &str, cols: &[String], ratio_names: &[String]| {
            let _ = write!(o, "\n{title:<lw$}");
            for c in cols {
                let _ = write!(o, "{c:>cw$}");
            }
            for r in ratio_names {
                let _ = write!(o, "{r:>12}");
            }
            let _ = writeln!(o);
        };
        let ratio_names: Vec<String> = ratios.iter().map(|(a, b)| format!("{a}/{b}")).collect();
        let row = |o: &mut String, label: &str, section: &str, metric: &str, cols: &[String]| {
            let _ = write!(o, "{label:<lw$}");
            for c in cols {
                let _ = write!(o, "{:>cw$}", cell(ctx.rec.summary(section, c, metric)));
            }
            for (a, b) in &ratios {
                let r = ratio(ctx.rec.median(section, a, metric), ctx.rec.median(section, b, metric));
                let _ = write!(o, "{:>12}", rcell(r));
            }
            let _ = writeln!(o);
        };
        if lc.is_some() {
            header(&mut o, "LIFECYCLE (busybox /bin/true)", &cols, &ratio_names);
            let rows: &[(&str, &str)] = &[
                ("run: wall", "run.wall_ms"),
                ("run: CPU user+sys (with waited children)", "run.cpu_ms"),
                ("run: peak RSS", "run.maxrss_kb"),
                ("run: minor page faults", "run.minflt"),
                ("run, hybrid layout (v1+unified): wall", "run_hybrid.wall_ms"),
                ("run, hybrid layout: CPU", "run_hybrid.cpu_ms"),
                ("create: wall", "create.wall_ms"),
                ("create: CPU", "create.cpu_ms"),
                ("create: CPU + init's own setup CPU", "create_total.cpu_ms"),
                ("create: peak RSS", "create.maxrss_kb"),
                ("created init: RSS", "init.rss_kb"),
                ("created init: PSS", "init.pss_kb"),
                ("start: wall", "start.wall_ms"),
                ("start: CPU", "start.cpu_ms"),
                ("start: peak RSS", "start.maxrss_kb"),
                ("state: wall", "state.wall_ms"),
                ("state: CPU", "state.cpu_ms"),
                ("state: peak RSS", "state.maxrss_kb"),
                ("kill (created): wall", "kill.wall_ms"),
                ("kill: CPU", "kill.cpu_ms"),
                ("kill: peak RSS", "kill.maxrss_kb"),
                ("delete (stopped): wall", "delete.wall_ms"),
                ("delete: CPU", "delete.cpu_ms"),
                ("delete: peak RSS", "delete.maxrss_kb"),
                ("init whole life CPU (setup+exec true)", "init.total_cpu_ms"),
            ];
            for (label, metric) in rows {
                if cols.iter().any(|c| ctx.rec.get("lifecycle", c, metric).is_some()) {
                    row(&mut o, label, "lifecycle", metric, &cols);
                }
            }
            // Derived: peak RSS over commands, binary size.
            let _ = write!(o, "{:<lw$}", "peak RSS, max over the commands above");
            for c in &cols {
                let _ = write!(o, "{:>cw$}", self.peak_rss(c).map(num).unwrap_or_else(|| "-".into()));
            }
            for (a, b) in &ratios {
                let _ = write!(o, "{:>12}", rcell(ratio(self.peak_rss(a), self.peak_rss(b))));
            }
            let _ = writeln!(o);
            let size = |n: &str| -> Option<f64> {
                match n {
                    "floor" | "floor+" | "floor+sj" => Some(super::file_size(&ctx.opts.floor) as f64 / 1024.0),
                    _ => ctx.rts.iter().find(|r| r.name == n).map(|r| r.size as f64 / 1024.0),
                }
            };
            let _ = write!(o, "{:<lw$}", "binary size");
            for c in &cols {
                let _ = write!(o, "{:>cw$}", size(c).map(num).unwrap_or_else(|| "-".into()));
            }
            for (a, b) in &ratios {
                let _ = write!(o, "{:>12}", rcell(ratio(size(a), size(b))));
            }
            let _ = writeln!(o);
        }

        if ctx.rec.data.contains_key("scale") {
            let rcols: Vec<String> = rts.iter().map(|r| r.name.clone()).collect();
            let n = ctx.opts.scale;
            header(&mut o, &format!("SCALE ({n} sleep containers)"), &rcols, &ratio_names);
            let rows: Vec<(String, String)> = vec![
                ("one by one: create, 1st-10th: wall".into(), "seq.create.wall_ms.first10".into()),
                (format!("one by one: create, {}-{}: wall", ordinal(n - 9), ordinal(n)), "seq.create.wall_ms.last10".into()),
                ("one by one: create, 1st-10th: CPU".into(), "seq.create.cpu_ms.first10".into()),
                (format!("one by one: create, {}-{}: CPU", ordinal(n - 9), ordinal(n)), "seq.create.cpu_ms.last10".into()),
                ("one by one: start, 1st-10th: wall".into(), "seq.start.wall_ms.first10".into()),
                (format!("one by one: start, {}-{}: wall", ordinal(n - 9), ordinal(n)), "seq.start.wall_ms.last10".into()),
                (format!("one by one: create+start all {n}: total"), "seq.up_total_ms".into()),
                (format!("one by one: kill+delete all {n}: total"), "seq.down_total_ms".into()),
                ("one by one: kill: wall".into(), "seq.kill.wall_ms".into()),
                ("one by one: delete: wall".into(), "seq.delete.wall_ms".into()),
                (format!("list with {n}: wall"), "list.wall_ms".into()),
                (format!("list with {n}: CPU"), "list.cpu_ms".into()),
                (format!("list with {n}: peak RSS"), "list.maxrss_kb".into()),
                ("list with none: wall".into(), "list_empty.wall_ms".into()),
                ("8 at a time: create: wall".into(), "par8.create.wall_ms".into()),
                ("8 at a time: create: CPU".into(), "par8.create.cpu_ms".into()),
                (format!("8 at a time: create+start all {n}: total"), "par8.up_total_ms".into()),
                (format!("8 at a time: kill+delete all {n}: total"), "par8.down_total_ms".into()),
            ];
            for (label, metric) in &rows {
                row(&mut o, label, "scale", metric, &rcols);
            }
            let growth = |c: &str| ratio(self.med("scale", c, "seq.create.wall_ms.last10"), self.med("scale", c, "seq.create.wall_ms.first10"));
            let _ = write!(o, "{:<lw$}", "create growth: last 10 / first 10 (wall)");
            for c in &rcols {
                let _ = write!(o, "{:>cw$}", rcell(growth(c)));
            }
            let _ = writeln!(o);
            let _ = write!(o, "{:<lw$}", "create wall by decile of the count present");
            let _ = writeln!(o);
            for c in &rcols {
                let d: Vec<String> =
                    (0..10).map(|i| self.med("scale", c, &format!("seq.create.wall_ms.d{i}")).map(num).unwrap_or_else(|| "-".into())).collect();
                let _ = writeln!(o, "  {c:<8} {}", d.join(" "));
            }
        }

        if let Some(sh) = ctx.rec.data.get("shims") {
            let shim_rts: Vec<&str> = ["runc", "berth", "crun"].into_iter().filter(|r| sh.keys().any(|k| k.ends_with(&format!("+{r}")))).collect();
            let _ = writeln!(o, "\n{:<lw$}{:>cw$}{:>cw$}{:>15}", "SHIMS (one per running sleep container)", "berth-shim", "conmon", "b-shim/conmon");
            let rows: &[(&str, &str)] = &[
                ("PSS, one shim", "pss_kb"),
                ("  of which anonymous", "pss_anon_kb"),
                ("  of which file-backed", "pss_file_kb"),
                ("RSS, one shim", "rss_kb"),
                ("PSS per shim, 10 running", "pss_kb_of_10"),
                ("RSS per shim, 10 running", "rss_kb_of_10"),
                ("shim's own CPU, launch + 300 ms idle", "own_cpu_ms"),
                ("launch until created (caller + pid file)", "launch_ms"),
            ];
            for rt in shim_rts {
                let _ = writeln!(o, "  containers by {rt}:");
                let (a, b) = (format!("berth-shim+{rt}"), format!("conmon+{rt}"));
                for (label, metric) in rows {
                    let _ = writeln!(
                        o,
                        "  {:<w$}{:>cw$}{:>cw$}{:>15}",
                        label,
                        cell(ctx.rec.summary("shims", &a, metric)),
                        cell(ctx.rec.summary("shims", &b, metric)),
                        rcell(ratio(self.med("shims", &a, metric), self.med("shims", &b, metric))),
                        w = lw - 2
                    );
                }
            }
            let bin = |p: &Path| super::file_size(p) / 1024;
            let _ = writeln!(o, "  {:<w$}{:>cw$}{:>cw$}", "binary size", bin(&ctx.opts.berth_shim), bin(&ctx.opts.conmon), w = lw - 2);
        }

        if let Some(bd) = ctx.rec.data.get("builder") {
            // Columns: every subject measured, then berth-build/each other one.
            let a = "berth-build";
            let subjects: Vec<&str> = super::builder::SUBJECTS.into_iter().filter(|s| bd.contains_key(*s)).collect();
            let others: Vec<&str> = subjects.iter().copied().filter(|s| *s != a).collect();
            let short = |s: &str| if s == "buildkit" { "bkit" } else { s }.to_string();
            // Wide enough for the longest "label: peak RSS".
            let lw = super::builder::ROWS.iter().map(|(l, _)| l.len() + ": peak RSS ".len()).fold(lw, usize::max);
            let _ = write!(o, "\n{:<lw$}", "BUILDER (same Dockerfiles)");
            for s in &subjects {
                let _ = write!(o, "{s:>cw$}");
            }
            for b in &others {
                let _ = write!(o, "{:>13}", format!("bb/{}", short(b)));
            }
            let _ = writeln!(o);
            for (label, op) in super::builder::ROWS {
                for (what, metric) in [("wall", "wall_ms"), ("CPU", "cpu_ms"), ("peak RSS", "maxrss_kb")] {
                    let m = format!("{op}.{metric}");
                    if ctx.rec.get("builder", a, &m).is_none() {
                        continue;
                    }
                    let _ = write!(o, "{:<lw$}", format!("{label}: {what}"));
                    for s in &subjects {
                        let _ = write!(o, "{:>cw$}", cell(ctx.rec.summary("builder", s, &m)));
                    }
                    for b in &others {
                        let _ = write!(o, "{:>13}", rcell(ratio(self.med("builder", a, &m), self.med("builder", b, &m))));
                    }
                    let _ = writeln!(o);
                }
            }
        }

        let _ = writeln!(o, "\nTARGETS (issue 9)");
        for t in self.targets() {
            let status = match t.met {
                Some(true) => "MET",
                Some(false) => "NOT MET",
                None => "not measured",
            };
            let _ = writeln!(o, "  {:<72} {:>6}  {status}", t.what, t.value.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()));
        }
        let nm = self.not_measured();
        if !nm.is_empty() {
            let _ = writeln!(o, "\nNOT MEASURED");
            for n in nm {
                let _ = writeln!(o, "  {n}");
            }
        }
        if !ctx.notes.is_empty() {
            let _ = writeln!(o, "\nNOTES");
            for n in &ctx.notes {
                let _ = writeln!(o, "  {n}");
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(o, "\nINCOMPLETE: {e}");
        }
        for p in &self.cleanup_problems {
            let _ = writeln!(o, "cleanup: {p}");
        }
        o
    }

    pub fn json(&self) -> Value {
        let ctx = self.ctx;
        let targets: Vec<Value> =
            self.targets().iter().map(|t| json!({"target": t.what, "value": t.value.map(round), "limit": t.limit, "met": t.met})).collect();
        let mut ratios = serde_json::Map::new();
        if let Some(lc) = ctx.rec.data.get("lifecycle") {
            for (a, b) in [("berth", "runc"), ("berth", "crun")] {
                let (Some(ma), Some(_)) = (lc.get(a), lc.get(b)) else { continue };
                let mut m = serde_json::Map::new();
                for metric in ma.keys() {
                    if let Some(r) = ratio(self.med("lifecycle", a, metric), self.med("lifecycle", b, metric)) {
                        m.insert(metric.clone(), json!(round(r)));
                    }
                }
                ratios.insert(format!("lifecycle {a}/{b}"), Value::Object(m));
            }
        }
        if let Some(sh) = ctx.rec.data.get("shims") {
            for rt in ["runc", "berth", "crun"] {
                let (a, b) = (format!("berth-shim+{rt}"), format!("conmon+{rt}"));
                let (Some(ma), Some(_)) = (sh.get(&a), sh.get(&b)) else { continue };
                let mut m = serde_json::Map::new();
                for metric in ma.keys() {
                    if let Some(r) = ratio(self.med("shims", &a, metric), self.med("shims", &b, metric)) {
                        m.insert(metric.clone(), json!(round(r)));
                    }
                }
                ratios.insert(format!("shims {a}/{b}"), Value::Object(m));
            }
        }
        if let Some(bd) = ctx.rec.data.get("builder") {
            let a = "berth-build";
            for b in super::builder::SUBJECTS.into_iter().filter(|b| *b != a && bd.contains_key(*b)) {
                let Some(ma) = bd.get(a) else { continue };
                let mut m = serde_json::Map::new();
                for metric in ma.keys() {
                    if let Some(r) = ratio(self.med("builder", a, metric), self.med("builder", b, metric)) {
                        m.insert(metric.clone(), json!(round(r)));
                    }
                }
                ratios.insert(format!("builder {a}/{b}"), Value::Object(m));
            }
        }
        json!({
            "bench": "berth issue 9: runtime and shim",
            "date": self.date,
            "elapsed_s": round(self.elapsed_s),
            "machine": self.machine,
            "loadavg": ctx.loads.iter().map(|(w, l)| json!({"when": w, "loadavg": l})).collect::<Vec<_>>(),
            "options": {
                "rounds": ctx.opts.rounds, "scale": ctx.opts.scale, "scale_rounds": ctx.opts.scale_rounds,
                "shim_rounds": ctx.opts.shim_rounds, "only": ctx.opts.only, "runtimes": ctx.opts.runtimes,
                "builder_rounds": ctx.opts.builder_rounds, "buildkit": ctx.opts.buildkit,
            },
            "subjects": ctx.rts.iter().map(|r| json!({"name": r.name, "bin": r.bin, "version": r.version, "size_bytes": r.size})).collect::<Vec<_>>(),
            "other_binaries": {
                "berth-shim": {"bin": ctx.opts.berth_shim, "size_bytes": super::file_size(&ctx.opts.berth_shim)},
                "conmon": {"bin": ctx.opts.conmon, "size_bytes": super::file_size(&ctx.opts.conmon)},
                "bench-floor": {"bin": ctx.opts.floor, "size_bytes": super::file_size(&ctx.opts.floor)},
            },
            "units": "times in ms, memory in KiB; each metric: median, p90 (nearest rank), min, max, n, samples (when <= 64)",
            "results": ctx.rec.json(),
            "peak_rss_kb": ctx.rts.iter().map(|r| (r.name.clone(), json!(self.peak_rss(&r.name)))).collect::<serde_json::Map<_, _>>(),
            "ratios": ratios,
            "targets": targets,
            "not_measured": self.not_measured(),
            "notes": ctx.notes,
            "error": self.error,
            "cleanup_problems": self.cleanup_problems,
        })
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        let text = serde_json::to_string_pretty(&self.json()).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ordinals() {
        let v: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 91, 100].iter().map(|n| super::ordinal(*n)).collect();
        assert_eq!(v, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "91st", "100th"]);
    }
}
