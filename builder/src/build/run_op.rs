//! RUN as a filesystem step: the key (argv, environment, user, workdir, network, mounts
//! and what bind mounts read), then the container ([`crate::exec`]) on a miss.

use std::path::PathBuf;

use berth_spec::image::NetworkMode;

use super::ops::{one_line, source_layers, source_layers_b};
use super::stage::StageState;
use super::step::{self, Mode, StepEnv};
use super::Builder;
use crate::cache::{content_key, KeyBuilder};
use crate::dockerfile::{self, Dockerfile, Env, Instr, Instruction, MountType, StageArgs};
use crate::exec::{self, mounts, RunRequest, Stubs};

pub fn run(b: &mut Builder, df: &Dockerfile, st: &mut StageState, args: &StageArgs, ins: &Instruction, env: &dyn Env) -> crate::Result<()> {
    let Instr::Run(r) = &ins.kind else { unreachable!() };
    let plan = r.plan();
    let argv = plan.command.argv(&st.meta.shell());
    let specs = r.expand_mounts(&df.lexer(), env)?;
    if r.security == Some(dockerfile::SecurityMode::Insecure) {
        return Err("RUN --security=insecure is not allowed by berth-build".into());
    }
    let network = match r.network {
        Some(dockerfile::NetworkMode::None) => NetworkMode::None,
        Some(dockerfile::NetworkMode::Host) => NetworkMode::Host,
        _ => b.opts.network,
    };
    let mut extra_env: Vec<String> = args.values().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let workdir = st.meta.workdir();

    let mut key = KeyBuilder::new("RUN", &content_key(&st.diff_ids()));
    key.list("argv", &argv)
        .list("env", st.meta.env.list())
        .list("args", &extra_env)
        .field("user", st.meta.config.user.as_deref().unwrap_or(""))
        .field("workdir", &workdir)
        .field("network", if network == NetworkMode::Host { "host" } else { "none" })
        .list("mounts", &r.mounts_raw);
    let settings = b.opts.extra.run.clone();
    // Only when set: the keys of builds without these flags stay as they were.
    if !settings.key_fields().is_empty() {
        key.list("settings", &settings.key_fields());
    }
    if let Some(f) = &plan.inline_file {
        key.field("inline", &format!("{} {:o} {}", f.path, f.mode, f.data));
    }
    for m in &specs {
        if m.kind != MountType::Bind {
            continue;
        }
        let src = m.source.clone().unwrap_or_default();
        match &m.from {
            None => {
                let h = if src.is_empty() || src == "/" || src == "." {
                    let all = b.context.resolve_sources(&[".".into()])?;
                    b.context.content_hash(&all)?
                } else {
                    let s = b.context.resolve_sources(std::slice::from_ref(&src))?;
                    b.context.content_hash(&s)?
                };
                key.field("bind", &h);
            }
            Some(from) => {
                key.field("bind-from", content_key(&source_layers(b, df, st, from)?.0).as_str());
            }
        }
    }
    let key = key.finish();
    for (k, v) in proxy_args(&b.opts.build_args) {
        extra_env.push(format!("{k}={v}"));
    }

    let created_by = format!("RUN {}", argv.join(" "));
    let shown = format!("RUN {}", one_line(&command_text(&r.command)));
    let image = st.to_config();
    let stage_index = st.index;
    let mut op = |b: &mut Builder, e: &StepEnv| -> crate::Result<Option<Stubs>> {
        let run_dir = e.dir.join("run");
        std::fs::create_dir_all(&run_dir)?;
        let mut stubs = Stubs::default();
        // The heredoc script, bound at /dev/pipes/NAME (under /dev: never in the layer).
        let mut mounts_extra = Vec::new();
        if let Some(f) = &plan.inline_file {
            let p = run_dir.join("inline");
            std::fs::write(&p, &f.data)?;
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(f.mode))?;
            mounts_extra.push(berth_spec::config::Mount {
                destination: f.path.clone(),
                typ: Some("bind".into()),
                source: Some(p.to_string_lossy().into_owned()),
                options: vec!["rbind".into(), "ro".into()],
                uid_mappings: Vec::new(),
                gid_mappings: Vec::new(),
            });
        }
        let store_root = b.store.root().to_path_buf();
        // Resolving `from=` needs the builder, mounting needs its links: two parts.
        let mut from_dirs: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
        for m in &specs {
            if let Some(f) = &m.from {
                if !from_dirs.contains_key(f) {
                    let (_, dirs) = source_layers_b(b, df, stage_index, f)?;
                    from_dirs.insert(f.clone(), dirs);
                }
            }
        }
        let lookup =
            |f: &str| -> crate::Result<Vec<PathBuf>> { from_dirs.get(f).cloned().ok_or_else(|| crate::Error::msg(format!("unknown mount source {f}"))) };
        let context = b.context.clone();
        let secrets = b.secrets.clone();
        let ssh = b.opts.extra.ssh.clone();
        let mut menv = mounts::MountEnv {
            store_root: &store_root,
            context: &context,
            secrets: &secrets,
            run_dir: &run_dir,
            links: &mut b.links,
            layers_of: &lookup,
            ssh: &ssh,
        };
        let prepared = mounts::prepare(&specs, &workdir, &mut menv)?;
        let mut all_mounts = prepared.mounts.clone();
        all_mounts.extend(mounts_extra);
        let mut env_all = extra_env.clone();
        env_all.extend(prepared.env.clone());
        b.seq += 1;
        let req = RunRequest {
            id: format!("bb-{}-{}", b.work_id(), b.seq),
            rootfs: e.root,
            run_dir: &run_dir,
            socket_dir: b.links_dir(),
            image: &image,
            argv: argv.clone(),
            extra_env: env_all,
            network,
            mounts: all_mounts,
            settings: &settings,
        };
        let progress = b.progress.clone();
        let id = e.id;
        let result = exec::run(&b.tools, &req, &mut stubs, &mut |_, data| progress.output(id, data));
        drop(prepared);
        let fin = result?;
        if fin.dropped {
            progress.note(id, "(output incomplete: the whole log follows)");
            progress.output(id, exec::run_log(&run_dir).as_bytes());
        }
        if fin.code != 0 {
            return Err(format!("RUN failed: exit code {}", fin.code).into());
        }
        Ok(Some(stubs))
    };
    step::run(b, st, &shown, key, &created_by, Mode::Overlay, &mut op)
}

/// The proxy build args given (in RUN's environment without an ARG, not in the key).
fn proxy_args(flags: &[String]) -> Vec<(String, String)> {
    flags
        .iter()
        .filter_map(|f| f.split_once('='))
        .filter(|(k, _)| dockerfile::args::PROXY_ARGS.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn command_text(c: &dockerfile::CommandLine) -> String {
    match c {
        dockerfile::CommandLine::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
        dockerfile::CommandLine::Shell(s) => s.clone(),
    }
}
