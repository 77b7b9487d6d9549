//! Samples and their summaries: every figure is a median over repeated rounds, with its
//! 90th percentile (nearest rank), min, max and count.

use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
}

pub fn summarize(v: &[f64]) -> Option<Summary> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    // Nearest rank: the smallest value with at least 90% of the samples at or below it.
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    Some(Summary { n, median, p90: s[rank - 1], min: s[0], max: s[n - 1] })
}

impl Summary {
    pub fn json(&self) -> Value {
        json!({"n": self.n, "median": round(self.median), "p90": round(self.p90), "min": round(self.min), "max": round(self.max)})
    }
}

pub fn round(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    (x * 1000.0).round() / 1000.0
}

/// section -> subject (a runtime, a shim, the floor) -> metric -> samples.
#[derive(Default)]
pub struct Record {
    pub data: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<f64>>>>,
}

impl Record {
    pub fn push(&mut self, section: &str, subject: &str, metric: &str, v: f64) {
        self.data.entry(section.to_string()).or_default().entry(subject.to_string()).or_default().entry(metric.to_string()).or_default().push(v);
    }

    /// The standard metrics of one runtime command: `<op>.wall_ms`, `.cpu_ms`, `.user_ms`,
    /// `.sys_ms`, `.maxrss_kb`, `.minflt`, `.majflt`, `.csw`.
    pub fn exit(&mut self, section: &str, subject: &str, op: &str, e: &super::procs::Exit) {
        self.push(section, subject, &format!("{op}.wall_ms"), e.wall_ms());
        self.push(section, subject, &format!("{op}.cpu_ms"), e.cpu_ms());
        self.push(section, subject, &format!("{op}.user_ms"), e.user_ms());
        self.push(section, subject, &format!("{op}.sys_ms"), e.sys_ms());
        self.push(section, subject, &format!("{op}.maxrss_kb"), e.maxrss_kb());
        self.push(section, subject, &format!("{op}.minflt"), e.minflt());
        self.push(section, subject, &format!("{op}.majflt"), e.majflt());
        self.push(section, subject, &format!("{op}.csw"), e.csw());
    }

    pub fn get(&self, section: &str, subject: &str, metric: &str) -> Option<&Vec<f64>> {
        self.data.get(section)?.get(subject)?.get(metric)
    }

    pub fn summary(&self, section: &str, subject: &str, metric: &str) -> Option<Summary> {
        summarize(self.get(section, subject, metric)?)
    }

    pub fn median(&self, section: &str, subject: &str, metric: &str) -> Option<f64> {
        self.summary(section, subject, metric).map(|s| s.median)
    }

    /// Summaries of everything, plus the raw samples of series short enough to keep.
    pub fn json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (section, subjects) in &self.data {
            let mut so = serde_json::Map::new();
            for (subject, metrics) in subjects {
                let mut mo = serde_json::Map::new();
                for (metric, v) in metrics {
                    let Some(s) = summarize(v) else { continue };
                    let mut j = s.json();
                    if v.len() <= 64 {
                        j["samples"] = json!(v.iter().map(|x| round(*x)).collect::<Vec<_>>());
                    }
                    mo.insert(metric.clone(), j);
                }
                so.insert(subject.clone(), Value::Object(mo));
            }
            out.insert(section.clone(), Value::Object(so));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90() {
        let s = summarize(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.median, s.p90, s.min, s.max, s.n), (3.0, 5.0, 1.0, 5.0, 5));
        let s = summarize(&(1..=10).map(f64::from).collect::<Vec<_>>()).unwrap();
        assert_eq!((s.median, s.p90), (5.5, 9.0));
        assert!(summarize(&[f64::NAN]).is_none());
    }
}
