//! Config changes given as Dockerfile instructions (`import --change 'CMD ...'`, as docker
//! import takes them) or as `config` flags (turned into such instructions), applied with
//! the same code as a Dockerfile's metadata instructions ([`crate::build::meta`]).

use crate::build::meta::{self, MetaState};
use crate::dockerfile::{self, Instr, NoEnv};
use berth_spec::image::ContainerConfig;

/// Applies one instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR,
/// STOPSIGNAL, ONBUILD, HEALTHCHECK, SHELL, MAINTAINER) to `config`; returns its history
/// text. Anything that would change the filesystem is refused.
pub fn apply(config: &mut ContainerConfig, author: &mut Option<String>, line: &str) -> crate::Result<String> {
    if line.contains('\n') {
        return Err(format!("change {line:?}: one instruction on one line").into());
    }
    let df = dockerfile::parse(&format!("FROM scratch\n{line}\n"), "--change").map_err(|e| crate::Error::msg(format!("change {line:?}: {e}")))?;
    let [ins] = df.stages[0].instructions.as_slice() else {
        return Err(format!("change {line:?}: want exactly one instruction").into());
    };
    match &ins.kind {
        Instr::Workdir(w) => {
            let cur = config.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
            let new = w.resolve(&df.lexer(), &NoEnv, &cur)?;
            config.working_dir = Some(new.clone());
            Ok(format!("WORKDIR {new}"))
        }
        Instr::Run(_) | Instr::Copy(_) | Instr::Add(_) | Instr::Arg(_) | Instr::From(_) => {
            Err(format!("change {line:?}: only config instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, ...) are allowed").into())
        }
        kind => {
            let mut st = MetaState::new(config.clone(), author.clone());
            // A change to ENTRYPOINT keeps the CMD (buildah config, docker import).
            st.cmd_set = true;
            let text = meta::apply(&mut st, kind, &df.lexer(), &NoEnv)?.ok_or_else(|| crate::Error::msg(format!("change {line:?}: not supported")))?;
            *config = st.to_container_config();
            *author = st.author;
            Ok(text)
        }
    }
}

/// A value as one Dockerfile word: double-quoted, with `\`, `"` and `$` escaped.
pub fn quote(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        if matches!(c, '\\' | '"' | '$') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// `KEY=VALUE` as an ENV/LABEL argument (the value quoted); a flag without `=` is refused.
pub fn key_value(flag: &str, kv: &str) -> crate::Result<String> {
    let (k, v) = kv.split_once('=').ok_or_else(|| crate::Error::msg(format!("--{flag} {kv:?}: want KEY=VALUE")))?;
    if k.is_empty() || k.contains(char::is_whitespace) {
        return Err(format!("--{flag} {kv:?}: bad key").into());
    }
    Ok(format!("{k}={}", quote(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(lines: &[&str]) -> (ContainerConfig, Vec<String>) {
        let mut c = ContainerConfig { cmd: Some(vec!["old".into()]), ..Default::default() };
        let mut author = None;
        let texts = lines.iter().map(|l| apply(&mut c, &mut author, l).unwrap()).collect();
        (c, texts)
    }

    #[test]
    fn docker_import_changes_set_the_config() {
        let (c, texts) = applied(&["CMD [\"/bin/sh\", \"-c\", \"echo hi\"]", "ENV A=1", "WORKDIR /srv", "WORKDIR app", "EXPOSE 80", "USER 1000"]);
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.env, ["A=1"]);
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert!(c.exposed_ports.contains_key("80/tcp"));
        assert_eq!(c.user.as_deref(), Some("1000"));
        assert_eq!(texts[1], "ENV A=1");
    }

    #[test]
    fn entrypoint_keeps_the_cmd_and_quoted_values_stay_whole() {
        let v = "a \"b\" $HOME \\x";
        let (c, _) = applied(&["ENTRYPOINT [\"/app\"]", &format!("ENV {}", key_value("env", &format!("K={v}")).unwrap())]);
        assert_eq!(c.cmd.unwrap(), ["old"]);
        assert_eq!(c.env, [format!("K={v}")]);
    }

    #[test]
    fn filesystem_instructions_and_bad_lines_are_refused() {
        let mut c = ContainerConfig::default();
        for bad in ["RUN echo", "COPY a b", "CMD a\nRUN b", "NOTANINSTRUCTION x"] {
            assert!(apply(&mut c, &mut None, bad).is_err(), "{bad}");
        }
        assert!(key_value("env", "novalue").is_err());
    }
}
