//! COPY and ADD as filesystem steps: sources resolved and hashed for the key (context
//! files in place; `--from` by the source's layers; URLs by their checksum or content;
//! git sources by the commit their ref resolves to), then written by [`crate::copy`] on a
//! miss.

use std::path::PathBuf;

use super::ops::{one_line, source_label, source_layers};
use super::stage::StageState;
use super::step::{self, Mode, StepEnv};
use super::Builder;
use crate::cache::{content_key, KeyBuilder};
use crate::context::{self, AddSourceKind, Context, ResolveOptions, Source};
use crate::copy::{self, CopyParams};
use crate::dockerfile::{self, Dockerfile, Env, Instr, Instruction};
use crate::exec::Stubs;
use crate::overlay;
use crate::rootfs::resolve_chown;

/// A COPY/ADD source after classification.
enum AddSrc {
    /// Resolved context (or stage) sources: copied, or extracted when archives (ADD).
    Local(Vec<Source>),
    /// ADD <url>: (url, file name, expected checksum, downloaded file + sha when fetched).
    Url { url: String, name: String, checksum: Option<context::Checksum>, fetched: Option<(PathBuf, copy::http::Download)> },
    /// ADD <git url>: the source, the commit its ref resolved to, and the dir of the build's
    /// work dir (in the store's tmp/) it is fetched into, removed with the step.
    Git { src: copy::git::GitSource, resolved: copy::git::Resolved, keep_git_dir: bool, git: copy::git::Git, dir: copy::git::FetchDir },
}

pub fn copy_or_add(b: &mut Builder, df: &Dockerfile, st: &mut StageState, ins: &Instruction, env: &dyn Env) -> crate::Result<()> {
    let lex = df.lexer();
    let (is_add, x, from, link, parents, excludes, checksum, unpack, keep_git_dir) = match &ins.kind {
        Instr::Copy(c) => (false, c.expand(&lex, env)?, c.from.clone(), c.link, c.parents, c.excludes.clone(), None, None, None),
        Instr::Add(a) => (true, a.expand(&lex, env)?, None, a.link, false, a.excludes.clone(), a.expand_checksum(&lex, env)?, a.unpack, a.keep_git_dir),
        _ => unreachable!(),
    };
    let word = if is_add { "ADD" } else { "COPY" };
    let excludes: Vec<String> = excludes.iter().map(|e| lex.expand_word(e, env)).collect::<Result<_, _>>()?;
    let ropts = ResolveOptions { excludes: excludes.clone(), parents };
    let chmod = match &x.chmod {
        Some(m) => Some(dockerfile::parse_chmod(m)?),
        None => None,
    };
    let workdir = st.meta.workdir();
    // For a URL the checksum is the content's sha256; for a git source, the commit.
    let http_checksum = || -> crate::Result<Option<context::Checksum>> {
        match &checksum {
            Some(c) => Ok(Some(context::Checksum::parse(c).map_err(crate::Error::msg)?)),
            None => Ok(None),
        }
    };

    let mut key = KeyBuilder::new(word, &content_key(&st.diff_ids()));
    key.list("sources", &x.sources)
        .field("dest", &x.dest)
        .field("workdir", &workdir)
        .field("chown", x.chown.as_deref().unwrap_or(""))
        .field("chmod", x.chmod.as_deref().unwrap_or(""))
        .field("link", if link { "1" } else { "" })
        .field("parents", if parents { "1" } else { "" })
        .list("exclude", &excludes)
        .field("unpack", &format!("{unpack:?}"));
    for (name, data) in &x.inline_files {
        key.field("inline", name).field("data", data);
    }

    // Sources: from another stage or image (resolved at run time, keyed by its content),
    // or from the context (resolved and hashed now, without copying).
    let from_label = from.as_ref().map(|f| source_label(df, st.index, f));
    let from_src = match &from {
        Some(f) => {
            let (ids, dirs) = source_layers(b, df, st, f)?;
            key.field("from", content_key(&ids).as_str());
            Some(dirs)
        }
        None => None,
    };
    let mut srcs: Vec<AddSrc> = Vec::new();
    if from_src.is_none() {
        for s in &x.sources {
            match if is_add { context::classify_add_source(s) } else { AddSourceKind::Local } {
                AddSourceKind::Git => {
                    let g = copy::git::GitSource::parse(s)?;
                    let keep = keep_git_dir.or(g.keep_git_dir).unwrap_or(false);
                    b.seq += 1;
                    let dir = copy::git::FetchDir::new(b.work.join(format!("git{}", b.seq)))?;
                    let git = copy::git::Git::new(&dir.path().join("home"))?;
                    let resolved = git.resolve(&g).map_err(|e| e.context(format!("ADD {s}")))?;
                    if let Some(want) = checksum.as_deref().or(g.checksum.as_deref()) {
                        copy::git::check_commit(want, &g, &resolved).map_err(|e| e.context(format!("ADD {s}")))?;
                    }
                    key.field("git", &g.remote)
                        .field("commit", &resolved.commit)
                        .field("ref", resolved.refname.as_deref().unwrap_or(""))
                        .field("subdir", g.subdir.as_deref().unwrap_or(""))
                        .field("keep-git-dir", if keep { "1" } else { "" });
                    srcs.push(AddSrc::Git { src: g, resolved, keep_git_dir: keep, git, dir });
                }
                AddSourceKind::Http => {
                    let name = context::add::url_file_name(s);
                    match http_checksum()? {
                        Some(c) => {
                            key.field("url", s).field("sha256", &c.sha256);
                            srcs.push(AddSrc::Url { url: s.clone(), name, checksum: Some(c), fetched: None });
                        }
                        None => {
                            // Without a checksum the content is the key: fetch it now.
                            let dl_dir = b.work.join("downloads");
                            std::fs::create_dir_all(&dl_dir)?;
                            b.seq += 1;
                            let file = dl_dir.join(format!("d{}", b.seq));
                            let d = copy::http::download(s, &file)?;
                            key.field("url", s).field("sha256", &d.sha256);
                            srcs.push(AddSrc::Url { url: s.clone(), name, checksum: None, fetched: Some((file, d)) });
                        }
                    }
                }
                AddSourceKind::Local => {
                    if checksum.is_some() && is_add {
                        return Err("ADD --checksum can only be used with HTTP(S) and git sources".into());
                    }
                    let resolved = b.context.resolve(std::slice::from_ref(s), &ropts)?;
                    key.field("content", &b.context.content_hash(&resolved)?);
                    srcs.push(AddSrc::Local(resolved));
                }
            }
        }
    }
    let key = key.finish();
    let shown = one_line(&ins.original);
    let created_by = format!("{word} {} {}", x.sources.iter().chain(x.inline_files.iter().map(|(n, _)| n)).cloned().collect::<Vec<_>>().join(" "), x.dest);
    let lowers = st.lowers();
    let mode = if link { Mode::Link } else { Mode::Overlay };
    let now = crate::store::now_or_epoch();
    let sources_patterns = x.sources.clone();
    let inline: Vec<(String, Vec<u8>)> = x.inline_files.iter().map(|(n, d)| (n.clone(), d.as_bytes().to_vec())).collect();

    let mut op = |b: &mut Builder, e: &StepEnv| -> crate::Result<Option<Stubs>> {
        // --chown names need the stage's /etc/passwd and /etc/group: the merged dir, or
        // (--link) a read-only mount of the layers below.
        let owner = match &x.chown {
            None => (0, 0),
            Some(spec) => {
                let numeric = spec.split(':').all(|p| p.is_empty() || p.parse::<u32>().is_ok());
                if mode == Mode::Link && !numeric {
                    let d = e.dir.join("passwd-root");
                    std::fs::create_dir_all(&d)?;
                    let m = overlay::mount(&mut b.links, &lowers, None, &d)?;
                    resolve_chown(spec, Some(&m.path))?
                } else {
                    resolve_chown(spec, Some(e.root))?
                }
            }
        };
        let params = CopyParams { root: e.root, dest: &x.dest, workdir: &workdir, owner, chmod: chmod.as_ref(), now };
        let chown_opt = x.chown.as_ref().map(|_| owner);
        if let Some(dirs) = &from_src {
            let d = e.dir.join("from");
            std::fs::create_dir_all(&d)?;
            let m = overlay::mount(&mut b.links, dirs, None, &d)?;
            let sctx = Context::open_rootfs(&m.path, from_label.as_deref().unwrap_or_default())?;
            let resolved = sctx.resolve(&sources_patterns, &ropts)?;
            copy::copy(&params, &sctx, &resolved, &inline)?;
            return Ok(None);
        }
        let mut plain: Vec<Source> = Vec::new();
        for s in &srcs {
            match s {
                AddSrc::Local(resolved) => {
                    for src in resolved {
                        if is_add && unpack != Some(false) && src.kind == context::SourceKind::File {
                            let host = b.context.host_path(&src.path);
                            if let Ok(Some(kind)) = context::detect_archive_file(&host) {
                                if crate::copy::archive::is_tar(&host, kind) {
                                    let (dest, _) = params.dest_abs();
                                    let r = crate::copy::archive::open_archive(&host, kind)?;
                                    crate::copy::archive::extract(e.root, &dest, r, chown_opt).map_err(|m| format!("ADD {}: {m}", src.path))?;
                                    continue;
                                }
                            }
                        }
                        plain.push(src.clone());
                    }
                }
                AddSrc::Url { url, name, checksum, fetched } => {
                    let (file, dl) = match fetched {
                        Some((f, d)) => (f.clone(), d.clone()),
                        None => {
                            let f = e.dir.join("download");
                            let d = copy::http::download(url, &f)?;
                            (f, d)
                        }
                    };
                    if let Some(c) = checksum {
                        if c.sha256 != dl.sha256 {
                            return Err(format!("ADD {url}: digest mismatch sha256:{}: expected sha256:{}", dl.sha256, c.sha256).into());
                        }
                    }
                    if unpack == Some(true) {
                        if let Ok(Some(kind)) = context::detect_archive_file(&file) {
                            let (dest, _) = params.dest_abs();
                            let r = crate::copy::archive::open_archive(&file, kind)?;
                            crate::copy::archive::extract(e.root, &dest, r, chown_opt)?;
                            continue;
                        }
                    }
                    let mtime = dl.last_modified.unwrap_or(now);
                    copy::place_file(&params, &file, name, 0o600, mtime)?;
                }
                AddSrc::Git { src, resolved, keep_git_dir, git, dir } => {
                    let shown = format!("ADD {}", src_label(src));
                    let repo = dir.path().join("repo");
                    let _ = std::fs::remove_dir_all(&repo);
                    git.checkout(src, resolved, &repo).map_err(|e| e.context(&shown))?;
                    if !keep_git_dir {
                        std::fs::remove_dir_all(repo.join(".git")).map_err(|e| crate::Error::from(e).context(&shown))?;
                    }
                    // Resolved as a rootfs: a symlink in the tree cannot lead out of it.
                    let gctx = Context::open_rootfs(&repo, &format!("git repository {}", src_label(src)))?;
                    let pattern = match &src.subdir {
                        Some(sub) => {
                            if std::fs::symlink_metadata(repo.join(sub)).is_err() {
                                return Err(crate::Error::new(
                                    crate::error::ErrorKind::NotFound,
                                    format!("{shown}: subdir {sub:?} not found in {} at {} (commit {})", src.remote, src.ref_shown(), resolved.commit),
                                ));
                            }
                            copy::git::literal_pattern(sub)
                        }
                        None => ".".to_string(),
                    };
                    let found = gctx.resolve(&[pattern], &ResolveOptions { excludes: excludes.clone(), parents: false })?;
                    copy::copy(&params, &gctx, &found, &[])?;
                }
            }
        }
        if !plain.is_empty() || !inline.is_empty() {
            copy::copy(&params, &b.context, &plain, &inline)?;
        }
        Ok(None)
    };
    step::run(b, st, &shown, key, &created_by, mode, &mut op)
}

/// `URL#ref` as a git source is named in messages.
fn src_label(g: &copy::git::GitSource) -> String {
    format!("{}#{}", g.remote, g.ref_shown())
}
