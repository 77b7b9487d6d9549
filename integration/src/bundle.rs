//! A bundle: a directory with a copy of the busybox rootfs and the config.json the test
//! builds from runc's default config (`berth_spec::default_config`).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

/// runc's default config, changed only where a test harness must: no terminal (the
/// tests capture stdio) and `true` as the process. Everything else, including
/// `root.readonly: true`, `noNewPrivileges` and the NOFILE rlimit of 1024, is the default.
pub fn base_config() -> Value {
    let mut c = berth_spec::default_config::default_spec_json(false);
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(["true"]);
    c
}

impl Bundle {
    /// A new bundle in `dir` (created) with its own copy of the rootfs.
    pub fn new(dir: &Path) -> Bundle {
        std::fs::create_dir_all(dir).expect("create bundle dir");
        crate::rootfs::copy_to(&dir.join("rootfs")).unwrap_or_else(|e| panic!("copy rootfs to {}: {e}", dir.display()));
        Bundle { dir: dir.to_path_buf(), config: base_config() }
    }

    /// The rootfs directory (root.path resolved against the bundle).
    pub fn rootfs(&self) -> PathBuf {
        let p = self.config["root"]["path"].as_str().unwrap_or("rootfs");
        self.dir.join(p)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Writes config.json (the runtime helpers call this before create/run).
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("config serializes");
        std::fs::write(self.config_path(), text).expect("write config.json");
    }

    /// process.args
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// process.args = ["sh", "-c", script]
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Sets the value at a JSON pointer ("/process/user/uid"), creating objects on the way.
    pub fn set(&mut self, pointer: &str, v: Value) -> &mut Self {
        let mut cur = &mut self.config;
        let parts: Vec<String> = pointer.split('/').skip(1).map(|p| p.replace("~1", "/").replace("~0", "~")).collect();
        for (i, p) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if let Value::Array(a) = cur {
                let idx: usize = p.parse().unwrap_or_else(|_| panic!("{pointer}: {p} is not an index"));
                if last {
                    a[idx] = v;
                    return self;
                }
                cur = &mut a[idx];
                continue;
            }
            if !cur.is_object() {
                *cur = json!({});
            }
            let obj = cur.as_object_mut().expect("object");
            if last {
                obj.insert(p.clone(), v);
                return self;
            }
            cur = obj.entry(p.clone()).or_insert_with(|| json!({}));
        }
        self
    }

    /// Removes the value at a JSON pointer, if there.
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        match self.config.pointer_mut(parent) {
            Some(Value::Object(o)) => {
                o.remove(key);
            }
            Some(Value::Array(a)) => {
                if let Ok(i) = key.parse::<usize>() {
                    if i < a.len() {
                        a.remove(i);
                    }
                }
            }
            _ => {}
        }
        self
    }

    /// Appends to the array at a JSON pointer (created if missing).
    pub fn push(&mut self, pointer: &str, v: Value) -> &mut Self {
        if !self.config.pointer(pointer).is_some_and(|x| x.is_array()) {
            self.set(pointer, json!([]));
        }
        self.config.pointer_mut(pointer).and_then(|a| a.as_array_mut()).expect("array").push(v);
        self
    }

    pub fn mount(&mut self, m: Value) -> &mut Self {
        self.push("/mounts", m)
    }

    /// A bind mount of a host path.
    pub fn bind(&mut self, source: &Path, dest: &str, options: &[&str]) -> &mut Self {
        let mut opts = vec!["rbind"];
        opts.extend_from_slice(options);
        self.mount(json!({"destination": dest, "type": "bind", "source": source, "options": opts}))
    }

    /// root.readonly = false: for tests whose container writes to its rootfs.
    pub fn writable(&mut self) -> &mut Self {
        self.set("/root/readonly", json!(false))
    }

    /// Replaces (or adds) a namespace entry of this type.
    pub fn namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        self.without_namespace(typ);
        let mut ns = json!({"type": typ});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.push("/linux/namespaces", ns)
    }

    pub fn without_namespace(&mut self, typ: &str) -> &mut Self {
        if let Some(a) = self.config.pointer_mut("/linux/namespaces").and_then(|a| a.as_array_mut()) {
            a.retain(|n| n["type"] != typ);
        }
        self
    }

    pub fn env(&mut self, kv: &str) -> &mut Self {
        self.push("/process/env", json!(kv))
    }
}
