//! Instructions that only change the image config (ENV LABEL CMD ENTRYPOINT EXPOSE VOLUME
//! USER STOPSIGNAL HEALTHCHECK SHELL ONBUILD MAINTAINER; WORKDIR's config part): each
//! returns the `created_by` text of its history entry (`empty_layer`).

use std::collections::HashMap;
use std::sync::Arc;

use berth_spec::image::{ContainerConfig, Empty, HealthConfig};

use crate::dockerfile::{default_shell, Env, HealthcheckInstr, Instr, Layered, Lexer};

/// A stage's environment: the image's `Env` and the ENV instructions so far, as
/// `KEY=VALUE` in image order, with an index by name. ENV and every expansion cost O(1)
/// per variable: the list is neither scanned nor copied per instruction (it was, and
/// 16k ENV lines took 16 s).
#[derive(Debug, Clone, Default)]
pub struct EnvVars {
    list: Vec<String>,
    /// Name -> (first, last) position in `list`: ENV replaces the first entry of its
    /// name (as Docker does), a lookup sees the last (an image Env may repeat a name).
    index: HashMap<String, (usize, usize)>,
}

impl EnvVars {
    pub fn from_list(list: Vec<String>) -> EnvVars {
        let mut index: HashMap<String, (usize, usize)> = HashMap::with_capacity(list.len());
        for (i, kv) in list.iter().enumerate() {
            index.entry(env_key(kv).to_string()).and_modify(|p| p.1 = i).or_insert((i, i));
        }
        EnvVars { list, index }
    }

    /// Sets `k=v`, replacing the entry of that name.
    pub fn set(&mut self, k: &str, v: &str) {
        let kv = format!("{k}={v}");
        match self.index.get(k) {
            Some(&(first, _)) => self.list[first] = kv,
            None => {
                self.index.insert(k.to_string(), (self.list.len(), self.list.len()));
                self.list.push(kv);
            }
        }
    }

    /// `KEY=VALUE`, in image order.
    pub fn list(&self) -> &[String] {
        &self.list
    }
}

fn env_key(kv: &str) -> &str {
    kv.split_once('=').map_or(kv, |(k, _)| k)
}

impl Env for EnvVars {
    fn get_var(&self, name: &str) -> Option<String> {
        let &(_, last) = self.index.get(name)?;
        let kv = &self.list[last];
        Some(kv.split_once('=').map_or("", |(_, v)| v).to_string())
    }
}

/// What the stage's metadata instructions act on.
#[derive(Debug, Clone, Default)]
pub struct MetaState {
    /// The config; its `env` is empty while the stage is built: the environment is
    /// [`MetaState::env`] (see [`MetaState::to_container_config`]).
    pub config: ContainerConfig,
    /// Shared with the expansion of the instruction at hand (a clone is O(1)); only
    /// ENV changes it, when no expansion holds it, so it is never copied.
    pub env: Arc<EnvVars>,
    pub author: Option<String>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl MetaState {
    /// The state of a stage whose base has this config.
    pub fn new(mut config: ContainerConfig, author: Option<String>) -> MetaState {
        let env = Arc::new(EnvVars::from_list(std::mem::take(&mut config.env)));
        MetaState { config, env, author, cmd_set: false }
    }

    /// The config with the environment in it.
    pub fn to_container_config(&self) -> ContainerConfig {
        let mut c = self.config.clone();
        c.env = self.env.list().to_vec();
        c
    }

    /// The shell of shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.config.shell.clone().unwrap_or_else(default_shell)
    }

    /// The working directory ("/" when unset).
    pub fn workdir(&self) -> String {
        self.config.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into())
    }

    /// Sets `KEY=VALUE` in Env, replacing the same key.
    pub fn set_env(&mut self, k: &str, v: &str) {
        Arc::make_mut(&mut self.env).set(k, v);
    }
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn nanos(d: Option<std::time::Duration>) -> i64 {
    d.map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Applies a metadata instruction. Variables expand with the stage's Env over `args`
/// (its ARGs). Returns the history text, or None when the instruction is not a metadata
/// one.
pub fn apply(st: &mut MetaState, instr: &Instr, lex: &Lexer, args: &dyn Env) -> crate::Result<Option<String>> {
    let e = |x: crate::dockerfile::ExpandError| x.to_string();
    // A clone of the Arc (not of the variables): the expansion reads it while `st`
    // changes; ENV, the one instruction that changes it, drops it first.
    let vars = Arc::clone(&st.env);
    let env = &Layered(&*vars, args);
    Ok(Some(match instr {
        Instr::Env(i) => {
            let pairs = i.expand(lex, env).map_err(e)?;
            drop(vars);
            for (k, v) in &pairs {
                st.set_env(k, v);
            }
            format!("ENV {}", pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
        }
        Instr::Label(i) => {
            let pairs = i.expand(lex, env).map_err(e)?;
            for (k, v) in &pairs {
                st.config.labels.insert(k.clone(), v.clone());
            }
            format!("LABEL {}", pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
        }
        Instr::Maintainer(m) => {
            st.author = Some(m.name.clone());
            format!("MAINTAINER {}", m.name)
        }
        Instr::Expose(x) => {
            let ports = x.expand(lex, env)?;
            for p in &ports {
                st.config.exposed_ports.insert(p.clone(), Empty {});
            }
            format!("EXPOSE {}", ports.join(" "))
        }
        Instr::Cmd(c) => {
            let argv = c.command.argv(&st.shell());
            st.config.cmd = Some(argv.clone());
            st.cmd_set = true;
            format!("CMD {}", json(&argv))
        }
        Instr::Entrypoint(ep) => {
            let argv = ep.command.as_ref().map(|c| c.argv(&st.shell())).unwrap_or_default();
            st.config.entrypoint = Some(argv.clone());
            if !st.cmd_set {
                // Docker: an ENTRYPOINT resets a CMD inherited from the base image.
                st.config.cmd = None;
            }
            format!("ENTRYPOINT {}", json(&argv))
        }
        Instr::Volume(v) => {
            let paths = v.expand(lex, env).map_err(e)?;
            for p in &paths {
                st.config.volumes.insert(p.clone(), Empty {});
            }
            format!("VOLUME {}", json(&paths))
        }
        Instr::User(u) => {
            let user = u.expand(lex, env).map_err(e)?;
            st.config.user = Some(user.clone());
            format!("USER {user}")
        }
        Instr::StopSignal(s) => {
            let sig = s.expand(lex, env).map_err(e)?;
            st.config.stop_signal = Some(sig.clone());
            format!("STOPSIGNAL {sig}")
        }
        Instr::Healthcheck(h) => {
            let mut hc = HealthConfig { test: h.test(), ..Default::default() };
            if let HealthcheckInstr::Cmd(c) = h {
                hc.interval = nanos(c.interval);
                hc.timeout = nanos(c.timeout);
                hc.start_period = nanos(c.start_period);
                hc.start_interval = nanos(c.start_interval);
                hc.retries = c.retries.unwrap_or(0) as i64;
            }
            st.config.healthcheck = Some(hc);
            format!("HEALTHCHECK {}", json(&h.test()))
        }
        Instr::Shell(s) => {
            st.config.shell = Some(s.shell.clone());
            format!("SHELL {}", json(&s.shell))
        }
        Instr::Onbuild(o) => {
            st.config.on_build.get_or_insert_with(Vec::new).push(o.expression.clone());
            format!("ONBUILD {}", o.expression)
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile;

    fn run(text: &str) -> MetaState {
        let df = dockerfile::parse(&format!("FROM scratch\n{text}"), "Dockerfile").unwrap();
        let mut st = MetaState::default();
        st.config.cmd = Some(vec!["inherited".into()]);
        let lex = df.lexer();
        for i in &df.stages[0].instructions {
            apply(&mut st, &i.kind, &lex, &dockerfile::NoEnv).unwrap();
        }
        st
    }

    #[test]
    fn config_changes() {
        let st = run("ENV A=1 B=x\nENV C=$A$B\nLABEL l=$C\nEXPOSE 80 53/udp\nUSER app:grp\nCMD echo hi\nVOLUME /data\nSTOPSIGNAL SIGQUIT\nHEALTHCHECK --interval=5s CMD true\nONBUILD RUN x\nMAINTAINER me\n");
        assert_eq!(st.env.list(), ["A=1", "B=x", "C=1x"]);
        assert_eq!(st.config.labels["l"], "1x");
        assert!(st.config.exposed_ports.contains_key("53/udp"));
        assert_eq!(st.config.user.as_deref(), Some("app:grp"));
        assert_eq!(st.config.cmd.as_ref().unwrap(), &["/bin/sh", "-c", "echo hi"]);
        assert!(st.config.volumes.contains_key("/data"));
        assert_eq!(st.config.healthcheck.as_ref().unwrap().interval, 5_000_000_000);
        assert_eq!(st.config.on_build.as_ref().unwrap(), &["RUN x"]);
        assert_eq!(st.author.as_deref(), Some("me"));
        let st = run("ENTRYPOINT [\"/bin/app\"]\n");
        assert_eq!(st.config.cmd, None);
        let st = run("CMD [\"a\"]\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT run it\n");
        assert_eq!(st.config.cmd.as_ref().unwrap(), &["a"]);
        assert_eq!(st.config.entrypoint.as_ref().unwrap(), &["/bin/bash", "-c", "run it"]);
    }
}
