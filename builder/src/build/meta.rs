//! Instructions that only change the image config (ENV LABEL CMD ENTRYPOINT EXPOSE VOLUME
//! USER STOPSIGNAL HEALTHCHECK SHELL ONBUILD MAINTAINER; WORKDIR's config part): each
//! returns the `created_by` text of its history entry (`empty_layer`).

use berth_spec::image::{ContainerConfig, Empty, HealthConfig};

use crate::dockerfile::{default_shell, Env, HealthcheckInstr, Instr, Lexer};

/// What the stage's metadata instructions act on.
#[derive(Debug, Clone, Default)]
pub struct MetaState {
    pub config: ContainerConfig,
    pub author: Option<String>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl MetaState {
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
        let kv = format!("{k}={v}");
        match self.config.env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
            Some(slot) => *slot = kv,
            None => self.config.env.push(kv),
        }
    }
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn nanos(d: Option<std::time::Duration>) -> i64 {
    d.map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Applies a metadata instruction. `env` is what variables expand with (the stage's Env
/// over its ARGs). Returns the history text, or None when the instruction is not a
/// metadata one.
pub fn apply(st: &mut MetaState, instr: &Instr, lex: &Lexer, env: &dyn Env) -> Result<Option<String>, String> {
    let e = |x: crate::dockerfile::ExpandError| x.to_string();
    Ok(Some(match instr {
        Instr::Env(i) => {
            let pairs = i.expand(lex, env).map_err(e)?;
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
            let env = st.config.env.clone();
            apply(&mut st, &i.kind, &lex, &env).unwrap();
        }
        st
    }

    #[test]
    fn config_changes() {
        let st = run("ENV A=1 B=x\nENV C=$A$B\nLABEL l=$C\nEXPOSE 80 53/udp\nUSER app:grp\nCMD echo hi\nVOLUME /data\nSTOPSIGNAL SIGQUIT\nHEALTHCHECK --interval=5s CMD true\nONBUILD RUN x\nMAINTAINER me\n");
        assert_eq!(st.config.env, ["A=1", "B=x", "C=1x"]);
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
