//! Parser tests: every instruction, errors with line numbers, directives,
//! continuations, heredocs, ARG scoping, stages.

use std::time::Duration;

use super::*;

fn p(text: &str) -> Dockerfile {
    parse(text, "Dockerfile").unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    parse(text, "Dockerfile").unwrap_err().to_string()
}

/// The single instruction of a one-stage file `FROM scratch\n<line>`.
fn one(line: &str) -> Instr {
    let df = p(&format!("FROM scratch\n{line}\n"));
    assert_eq!(df.stages[0].instructions.len(), 1, "{line}");
    df.stages[0].instructions[0].kind.clone()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------ each instruction

#[test]
fn from_forms() {
    let df = p("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nFROM alpine\nFROM build as final\n");
    assert_eq!(df.stages.len(), 3);
    let s0 = &df.stages[0];
    assert_eq!((s0.base.as_str(), s0.name.as_deref(), s0.platform.as_deref()), ("golang:1.22", Some("build"), Some("$BUILDPLATFORM")));
    assert_eq!(s0.line, 1);
    assert_eq!(df.stages[1].name, None);
    assert_eq!(df.stages[1].display_name(), "stage-1");
    assert_eq!(df.stages[2].name.as_deref(), Some("final"));
    assert_eq!(df.stages[2].index, 2);
}

#[test]
fn run_forms() {
    let Instr::Run(r) = one("RUN apt-get update && apt-get install -y curl") else { panic!() };
    assert_eq!(r.command, CommandLine::Shell("apt-get update && apt-get install -y curl".into()));
    let Instr::Run(r) = one(r#"RUN ["echo", "hello world"]"#) else { panic!() };
    assert_eq!(r.command, CommandLine::Exec(s(&["echo", "hello world"])));
    // not valid JSON: shell form, as docker does
    let Instr::Run(r) = one("RUN [ \"echo\", foo ]") else { panic!() };
    assert!(matches!(r.command, CommandLine::Shell(_)));
    let Instr::Run(r) = one("RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=tok --network=none --security=insecure make") else { panic!() };
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(r.mounts[1].kind, MountType::Secret);
    assert_eq!(r.network, Some(NetworkMode::None));
    assert_eq!(r.security, Some(SecurityMode::Insecure));
    assert_eq!(r.command, CommandLine::Shell("make".into()));
    assert_eq!(CommandLine::Shell("make".into()).argv(&default_shell()), ["/bin/sh", "-c", "make"]);
}

#[test]
fn run_mount_expansion() {
    let Instr::Run(r) = one("RUN --mount=type=cache,target=$DIR,id=${ID:-x} go build") else { panic!() };
    let m = r.expand_mounts(&Lexer::default(), &env(&[("DIR", "/go/pkg")])).unwrap();
    assert_eq!(m[0].target.as_deref(), Some("/go/pkg"));
    assert_eq!(m[0].id.as_deref(), Some("x"));
}

#[test]
fn cmd_entrypoint_shell() {
    assert_eq!(one(r#"CMD ["nginx", "-g", "daemon off;"]"#), Instr::Cmd(CmdInstr { command: CommandLine::Exec(s(&["nginx", "-g", "daemon off;"])) }));
    assert_eq!(one("CMD echo $HOME"), Instr::Cmd(CmdInstr { command: CommandLine::Shell("echo $HOME".into()) }));
    assert_eq!(one("ENTRYPOINT [\"/entry.sh\"]"), Instr::Entrypoint(EntrypointInstr { command: Some(CommandLine::Exec(s(&["/entry.sh"]))) }));
    assert_eq!(one("ENTRYPOINT []"), Instr::Entrypoint(EntrypointInstr { command: None }));
    assert_eq!(one("ENTRYPOINT exec top -b"), Instr::Entrypoint(EntrypointInstr { command: Some(CommandLine::Shell("exec top -b".into())) }));
    assert_eq!(one(r#"SHELL ["/bin/bash", "-o", "pipefail", "-c"]"#), Instr::Shell(ShellInstr { shell: s(&["/bin/bash", "-o", "pipefail", "-c"]) }));
}

#[test]
fn label_env_maintainer() {
    let Instr::Label(l) = one(r#"LABEL version="1.0" description='a b' multi=x\ y"#) else { panic!() };
    let got = l.expand(&Lexer::default(), &env(&[])).unwrap();
    assert_eq!(got, env(&[("version", "1.0"), ("description", "a b"), ("multi", "x y")]));
    let Instr::Env(e) = one(r#"ENV A=1 B="two words" C=${A}x"#) else { panic!() };
    let got = e.expand(&Lexer::default(), &env(&[("A", "old")])).unwrap();
    assert_eq!(got, env(&[("A", "1"), ("B", "two words"), ("C", "oldx")]));
    let Instr::Env(e) = one("ENV LEGACY value with spaces") else { panic!() };
    assert!(e.vars[0].legacy);
    assert_eq!(e.expand(&Lexer::default(), &env(&[])).unwrap(), env(&[("LEGACY", "value with spaces")]));
    assert_eq!(one("MAINTAINER Jane <jane@example.com>"), Instr::Maintainer(MaintainerInstr { name: "Jane <jane@example.com>".into() }));
}

#[test]
fn expose_user_workdir_stopsignal_volume() {
    let Instr::Expose(e) = one("EXPOSE 80 443/tcp ${DNS}/udp") else { panic!() };
    assert_eq!(e.expand(&Lexer::default(), &env(&[("DNS", "53")])).unwrap(), ["80/tcp", "443/tcp", "53/udp"]);
    let Instr::User(u) = one("USER ${U:-app}:staff") else { panic!() };
    assert_eq!(u.expand(&Lexer::default(), &env(&[])).unwrap(), "app:staff");
    assert_eq!(split_user_group("app:staff"), ("app".to_string(), Some("staff".to_string())));
    let Instr::Workdir(w) = one("WORKDIR /src/$APP") else { panic!() };
    assert_eq!(w.expand(&Lexer::default(), &env(&[("APP", "x")])).unwrap(), "/src/x");
    let Instr::StopSignal(sg) = one("STOPSIGNAL SIGTERM") else { panic!() };
    assert_eq!(sg.signal, "SIGTERM");
    let Instr::Volume(v) = one(r#"VOLUME ["/data", "/logs"]"#) else { panic!() };
    assert_eq!((v.paths.clone(), v.json), (s(&["/data", "/logs"]), true));
    let Instr::Volume(v) = one("VOLUME /var/log /var/db") else { panic!() };
    assert_eq!((v.paths.clone(), v.json), (s(&["/var/log", "/var/db"]), false));
}

#[test]
fn arg_forms() {
    let Instr::Arg(a) = one(r#"ARG A B=2 C="x y" D="#) else { panic!() };
    assert_eq!(a.line, 2);
    let names: Vec<_> = a.args.iter().map(|d| (d.name.as_str(), d.default.as_deref())).collect();
    assert_eq!(names, [("A", None), ("B", Some("2")), ("C", Some("\"x y\"")), ("D", Some(""))]);
}

#[test]
fn copy_forms() {
    let Instr::Copy(c) = one("COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=tmp a b /dst/") else { panic!() };
    assert_eq!(c.sources, ["a", "b"]);
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link && c.parents);
    assert_eq!(c.excludes, ["*.md", "tmp"]);
    let Instr::Copy(c) = one(r#"COPY ["a b.txt", "/x y/"]"#) else { panic!() };
    assert_eq!((c.sources.clone(), c.dest.clone(), c.json), (s(&["a b.txt"]), "/x y/".to_string(), true));
    let Instr::Copy(c) = one("COPY $SRC ${DEST:-/app}/") else { panic!() };
    let x = c.expand(&Lexer::default(), &env(&[("SRC", "src")])).unwrap();
    assert_eq!((x.sources, x.dest), (s(&["src"]), "/app/".to_string()));
}

#[test]
fn add_forms() {
    let Instr::Add(a) = one("ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --chown=1:2 --link https://example.com/a.tgz /x/") else { panic!() };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert_eq!(a.keep_git_dir, Some(true));
    assert_eq!(a.unpack, Some(false));
    assert!(a.link);
    assert_eq!(a.sources, ["https://example.com/a.tgz"]);
    let Instr::Add(a) = one("ADD --exclude=*.tmp ctx.tar.gz /") else { panic!() };
    assert_eq!(a.excludes, ["*.tmp"]);
    assert_eq!(a.keep_git_dir, None);
}

#[test]
fn onbuild() {
    let Instr::Onbuild(o) = one("ONBUILD RUN make /app") else { panic!() };
    assert_eq!(o.expression, "RUN make /app");
    assert!(matches!(*o.trigger, Instr::Run(_)));
    let Instr::Onbuild(o) = one("onbuild COPY --from=x a /b") else { panic!() };
    assert_eq!(o.expression, "COPY --from=x a /b");
    assert!(err("FROM a\nONBUILD ONBUILD RUN x\n").contains("Dockerfile:2: Chaining ONBUILD"));
    assert!(err("FROM a\nONBUILD FROM b\n").contains("Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"));
    assert!(err("FROM a\nONBUILD BOGUS x\n").contains("Dockerfile:2: unknown instruction: BOGUS"));
    assert!(err("FROM a\nONBUILD COPY --frm=x a b\n").contains("unknown flag: --frm"));
}

#[test]
fn healthcheck() {
    assert_eq!(one("HEALTHCHECK NONE"), Instr::Healthcheck(HealthcheckInstr::None));
    let Instr::Healthcheck(h) =
        one("HEALTHCHECK --interval=5m --timeout=3s --start-period=10s --start-interval=1s --retries=3 CMD curl -f http://localhost/ || exit 1")
    else {
        panic!()
    };
    let HealthcheckInstr::Cmd(c) = &h else { panic!() };
    assert_eq!(c.interval, Some(Duration::from_secs(300)));
    assert_eq!(c.timeout, Some(Duration::from_secs(3)));
    assert_eq!(c.start_period, Some(Duration::from_secs(10)));
    assert_eq!(c.start_interval, Some(Duration::from_secs(1)));
    assert_eq!(c.retries, Some(3));
    assert_eq!(h.test(), ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
    let Instr::Healthcheck(h) = one(r#"HEALTHCHECK CMD ["/bin/check", "-q"]"#) else { panic!() };
    assert_eq!(h.test(), ["CMD", "/bin/check", "-q"]);
    assert!(err("FROM a\nHEALTHCHECK NONE x\n").contains("HEALTHCHECK NONE takes no arguments"));
    assert!(err("FROM a\nHEALTHCHECK CMD\n").contains("Missing command after HEALTHCHECK CMD"));
    assert!(err("FROM a\nHEALTHCHECK FOO x\n").contains("Unknown type \"FOO\" in HEALTHCHECK"));
    assert!(err("FROM a\nHEALTHCHECK --interval=5 CMD x\n").contains("missing unit"));
    assert!(err("FROM a\nHEALTHCHECK --retries=-1 CMD x\n").contains("--retries cannot be negative"));
    assert!(err("FROM a\nHEALTHCHECK --intervl=1s CMD x\n").contains("unknown flag: --intervl (did you mean --interval?)"));
}

#[test]
fn keywords_are_case_insensitive() {
    let df = p("from alpine as b\nrun echo\nCoPy a b\n");
    assert_eq!(df.stages[0].instructions[0].keyword(), "RUN");
    assert_eq!(df.stages[0].instructions[1].keyword(), "COPY");
    assert_eq!(df.stages[0].instructions[1].original, "CoPy a b");
}

// ------------------------------------------------------------ errors and lines

#[test]
fn errors_name_file_and_line() {
    let text = "FROM alpine\n\n# comment\nRUN echo a \\\n  b\n\n\n\n\n\n\nFOOBAR x\n";
    assert_eq!(err(text), "Dockerfile:12: unknown instruction: FOOBAR");
    assert_eq!(parse("FROM a\nRUNN x\n", "ci/Dockerfile.prod").unwrap_err().to_string(), "ci/Dockerfile.prod:2: unknown instruction: RUNN (did you mean run?)");
    assert_eq!(err("# syntax=x\n\nFROM\n"), "Dockerfile:3: FROM requires at least one argument");
    assert_eq!(err("FROM a b\n"), "Dockerfile:1: FROM requires either one or three arguments");
    assert_eq!(err("FROM a AS 1st\n"), "Dockerfile:1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols");
    assert_eq!(err("FROM a\n\n\n\n\n\nCOPY --frm=build a b\n"), "Dockerfile:7: unknown flag: --frm (did you mean --from?)");
    assert_eq!(err("FROM a\nCOPY a\n"), "Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined");
    assert_eq!(err("FROM a\nRUN [\"a\", 1]\n"), "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only");
    assert_eq!(err("FROM a\nSHELL /bin/bash -c\n"), "Dockerfile:2: SHELL requires the arguments to be in JSON form: /bin/bash -c");
    assert_eq!(err("FROM a\nRUN <<EOF\necho\n"), "Dockerfile:2: unterminated heredoc \"EOF\"");
    assert_eq!(err("FROM a\nCOPY --link=maybe a b\n"), "Dockerfile:2: expecting boolean value for flag --link, not: maybe");
    assert_eq!(err("FROM a\nCOPY --from=a --from=b x y\n"), "Dockerfile:2: duplicate flag specified: --from");
    assert_eq!(err("FROM a\nRUN --network=bridge x\n"), "Dockerfile:2: invalid network mode \"bridge\"");
    assert_eq!(err("FROM a\nRUN --mount=type=nfs,target=/x x\n"), "Dockerfile:2: unsupported mount type \"nfs\"");
    assert_eq!(err("FROM a\nENV\n"), "Dockerfile:2: ENV requires at least one argument");
    assert_eq!(err("FROM a\nENV A\n"), "Dockerfile:2: ENV must have two arguments");
    assert_eq!(err("FROM a\nENV A=1 B\n"), "Dockerfile:2: Syntax error - can't find = in \"B\". Must be of the form: name=value");
    assert_eq!(err("FROM a\nLABEL =x\n"), "Dockerfile:2: LABEL names can not be blank");
    assert_eq!(err("FROM a\nARG =x\n"), "Dockerfile:2: ARG names can not be blank");
    assert_eq!(err("FROM a\nUSER\n"), "Dockerfile:2: USER requires exactly one argument");
    assert_eq!(err("FROM a\nWORKDIR\n"), "Dockerfile:2: WORKDIR requires exactly one argument");
    assert_eq!(err("FROM a\nEXPOSE\n"), "Dockerfile:2: EXPOSE requires at least one argument");
    assert_eq!(err("FROM a\nVOLUME []\n"), "Dockerfile:2: VOLUME requires at least one argument");
    assert_eq!(err("FROM a\nCMD --foo x\n"), "Dockerfile:2: unknown flag: --foo");
    assert_eq!(err("FROM a\nCOPY --chmod=999 a b\n"), "Dockerfile:2: invalid chmod parameter: '999'. it should be octal string and between 0 and 07777");
    assert_eq!(
        err("FROM a\nCOPY --from=$X a b\n"),
        "Dockerfile:2: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
    );
    assert_eq!(err("FROM a\nCOPY a <<EOF\nx\nEOF\n"), "Dockerfile:2: COPY cannot accept a heredoc as a destination");
    assert_eq!(err("RUN x\n"), "Dockerfile:1: no build stage in current context: RUN must come after FROM");
    assert_eq!(err("ARG X\n"), "Dockerfile: dockerfile contains no stages to build");
    assert_eq!(err("# just a comment\n\n"), "Dockerfile: file with no instructions");
    assert_eq!(err("FROM a AS x\nFROM b AS X\n"), "Dockerfile:2: duplicate stage name \"x\"");
    assert_eq!(err("# escape=x\nFROM a\n"), "Dockerfile:1: invalid escape token 'x' does not match ` or \\");
    assert_eq!(err("# escape=\\\n# escape=`\nFROM a\n"), "Dockerfile:2: only one escape parser directive can be used");
    // the error is reported at the line the instruction starts on
    assert_eq!(err("FROM a\nRUN --mount=type=bogus \\\n  echo\n"), "Dockerfile:2: unsupported mount type \"bogus\"");
}

#[test]
fn instruction_lines() {
    let df = p("FROM a\n\nRUN a \\\n b \\\n c\n# x\nRUN <<EOF\nbody\nEOF\nCMD x\n");
    let ins = &df.stages[0].instructions;
    assert_eq!((ins[0].line, ins[0].end_line), (3, 5));
    assert_eq!((ins[1].line, ins[1].end_line), (7, 9));
    assert_eq!(ins[2].line, 10);
}

// ------------------------------------------------------------ directives, escape, continuations

#[test]
fn directives() {
    let df = p("# syntax=docker/dockerfile:1.7\n# check=skip=all\n#escape=`\nFROM a\n");
    assert_eq!(df.directives.syntax(), Some("docker/dockerfile:1.7"));
    assert_eq!(df.directives.check().unwrap().skip, ["all"]);
    assert_eq!(df.escape, '`');
    // not a directive once something else came first
    let df = p("FROM a\n# escape=`\nRUN x \\\n y\n");
    assert_eq!(df.escape, '\\');
    assert!(df.directives.list.is_empty());
    let df = p("\n# escape=`\nFROM a\n");
    assert_eq!(df.escape, '\\');
}

#[test]
fn backtick_escape() {
    let df = p("# escape=`\nFROM mcr.microsoft.com/windows/servercore\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n  /b\nENV P=C:\\a\\b X=a` b\n");
    let ins = &df.stages[0].instructions;
    let Instr::Copy(c) = &ins[0].kind else { panic!() };
    assert_eq!(c.dest, "c:\\");
    let Instr::Run(r) = &ins[1].kind else { panic!() };
    assert_eq!(r.command, CommandLine::Shell("dir c:\\   /b".into()));
    let Instr::Env(e) = &ins[2].kind else { panic!() };
    assert_eq!(e.expand(&df.lexer(), &env(&[])).unwrap(), env(&[("P", "C:\\a\\b"), ("X", "a b")]));
}

#[test]
fn continuations() {
    let df = p("FROM a\n  RUN set -e; \\\n    # a comment inside\n    echo one; \\\n\n    echo two\n\tCMD [\"a\", \\\n  \"b\"]\n");
    let ins = &df.stages[0].instructions;
    assert_eq!(
        ins[0].kind,
        Instr::Run(RunInstr {
            command: CommandLine::Shell("set -e;     echo one;     echo two".into()),
            heredocs: vec![],
            mounts_raw: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })
    );
    assert_eq!(ins[1].kind, Instr::Cmd(CmdInstr { command: CommandLine::Exec(s(&["a", "b"])) }));
    assert_eq!(df.warnings.len(), 1);
    assert!(df.warnings[0].message.contains("Empty continuation line"));
    // a continuation at the end of the file
    let df = p("FROM a\nRUN echo \\\n");
    assert_eq!(df.stages[0].instructions[0].kind.keyword(), "RUN");
}

// ------------------------------------------------------------ heredocs

fn run_of(text: &str) -> RunInstr {
    let df = p(text);
    let Instr::Run(r) = df.stages[0].instructions[0].kind.clone() else { panic!() };
    r
}

#[test]
fn heredoc_script() {
    let r = run_of("FROM a\nRUN <<EOF\napt-get update\napt-get install -y vim\nEOF\n");
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].content, "apt-get update\napt-get install -y vim\n");
    assert_eq!(r.plan(), RunPlan { command: CommandLine::Shell("apt-get update\napt-get install -y vim\n".into()), inline_file: None });
}

#[test]
fn heredoc_shebang() {
    let r = run_of("FROM a\nRUN <<EOT\n#!/usr/bin/env python3\nprint('hi')\nEOT\n");
    let plan = r.plan();
    assert_eq!(plan.command, CommandLine::Shell("/dev/pipes/EOT".into()));
    assert_eq!(plan.inline_file, Some(InlineFile { path: "/dev/pipes/EOT".into(), data: "#!/usr/bin/env python3\nprint('hi')\n".into(), mode: 0o755 }));
}

#[test]
fn heredoc_stdin_and_multiple() {
    let r = run_of("FROM a\nRUN python3 <<EOF\nprint(1)\nEOF\n");
    assert_eq!(r.plan().command, CommandLine::Shell("python3 <<EOF\nprint(1)\nEOF".into()));
    let r = run_of("FROM a\nRUN cat <<A >/a && cat <<\"B\" >/b\nfirst $X\nA\nsecond $X\nB\nCMD done\n");
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!((r.heredocs[0].expand, r.heredocs[1].expand), (true, false));
    assert_eq!(r.plan().command, CommandLine::Shell("cat <<A >/a && cat <<\"B\" >/b\nfirst $X\nA\nsecond $X\nB".into()));
}

#[test]
fn heredoc_chomp() {
    let r = run_of("FROM a\nRUN <<-EOF\n\t\techo hi\n\tEOF\n");
    assert_eq!(r.heredocs[0].content, "\t\techo hi\n");
    assert_eq!(r.plan().command, CommandLine::Shell("echo hi\n".into()));
}

#[test]
fn heredoc_copy() {
    let df = p("FROM a\nARG NAME=world\nCOPY <<EOF <<'RAW' /dest/\nhello $NAME\nEOF\nhello $NAME\nRAW\n");
    let Instr::Copy(c) = &df.stages[0].instructions[1].kind else { panic!() };
    assert!(c.sources.is_empty());
    assert_eq!(c.heredocs.len(), 2);
    let x = c.expand(&df.lexer(), &env(&[("NAME", "berth")])).unwrap();
    assert_eq!(x.inline_files, [("EOF".to_string(), "hello berth\n".to_string()), ("RAW".to_string(), "hello $NAME\n".to_string())]);
    assert_eq!(x.dest, "/dest/");
    let df = p("FROM a\nCOPY <<-EOF /x\n\tindented\n\tEOF\n");
    let Instr::Copy(c) = &df.stages[0].instructions[0].kind else { panic!() };
    assert_eq!(c.expand(&df.lexer(), &env(&[])).unwrap().inline_files[0].1, "indented\n");
}

#[test]
fn heredoc_onbuild() {
    let df = p("FROM a\nONBUILD RUN <<EOF\necho x\nEOF\n");
    let Instr::Onbuild(o) = &df.stages[0].instructions[0].kind else { panic!() };
    assert_eq!(o.expression, "RUN <<EOF\necho x\nEOF");
}

#[test]
fn heredoc_not_in_other_instructions() {
    let df = p("FROM a\nCMD cat <<EOF\nRUN x\n");
    assert_eq!(df.stages[0].instructions.len(), 2);
}

// ------------------------------------------------------------ args

#[test]
fn global_args_in_from() {
    let df = p("ARG VERSION=3.19\nARG BASE=alpine:${VERSION}\nFROM $BASE AS a\nFROM --platform=$BUILDPLATFORM busybox\n");
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(df.global_args[1].line, 2);
    let ba = BuildArgs::default();
    let g = ba.global_scope(&df).unwrap();
    let lex = df.lexer();
    assert_eq!(df.stages[0].from_instr().expand_image(&lex, &g).unwrap(), "alpine:3.19");
    assert_eq!(df.stages[1].from_instr().expand_platform(&lex, &g).unwrap().as_deref(), Some("linux/amd64"));
    let ba = BuildArgs::new([("VERSION", "3.20")]);
    let g = ba.global_scope(&df).unwrap();
    assert_eq!(df.stages[0].from_instr().expand_image(&lex, &g).unwrap(), "alpine:3.20");
    let ba = BuildArgs::new([("BASE", "debian")]);
    assert_eq!(df.stages[0].from_instr().expand_image(&lex, &ba.global_scope(&df).unwrap()).unwrap(), "debian");
    // blank base
    let df = p("ARG B\nFROM $B\n");
    let e = df.stages[0].from_instr().expand_image(&df.lexer(), &BuildArgs::default().global_scope(&df).unwrap());
    assert!(e.unwrap_err().msg.contains("should not be blank"));
}

#[test]
fn stage_arg_scoping() {
    let df = p("ARG G=global\nARG ONLY=x\nFROM a\nARG G\nARG L=${G}-local\nARG TARGETARCH\nARG NOVAL\nARG FROMARG=2\n");
    let ba = BuildArgs::new([("FROMARG", "cli"), ("UNUSED", "1"), ("HTTP_PROXY", "http://p")]);
    let g = ba.global_scope(&df).unwrap();
    let mut st = ba.stage_args(&df, &g);
    let mut envv: Vec<(String, String)> = Vec::new();
    let mut all = Vec::new();
    for a in df.stages[0].args() {
        for (k, v) in st.declare(a, &envv).unwrap() {
            if let Some(v) = &v {
                envv.push((k.clone(), v.clone()));
            }
            all.push((k, v));
        }
    }
    let want: Vec<(String, Option<String>)> = vec![
        ("G".into(), Some("global".into())),
        ("L".into(), Some("global-local".into())),
        ("TARGETARCH".into(), Some("amd64".into())),
        ("NOVAL".into(), None),
        ("FROMARG".into(), Some("cli".into())),
    ];
    assert_eq!(all, want);
    // global ONLY was not re-declared in the stage: not visible there
    assert_eq!(st.get_var("ONLY"), None);
    assert_eq!(st.get_var("G").as_deref(), Some("global"));
    assert_eq!(ba.unused(), ["UNUSED"]);
    assert_eq!(ba.proxy_env(), env(&[("HTTP_PROXY", "http://p")]));
    assert_eq!(ba.unused_in(&df, &[0]), ["UNUSED"]);
}

#[test]
fn platform_args() {
    let ba = BuildArgs::default().with_platforms(Platform::parse("linux/amd64").unwrap(), Platform::parse("linux/arm64/v8").unwrap());
    let pa = ba.platform_args();
    let get = |k: &str| pa.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("TARGETPLATFORM"), "linux/arm64/v8");
    assert_eq!(get("TARGETVARIANT"), "v8");
    assert_eq!(get("BUILDARCH"), "amd64");
    assert_eq!(get("BUILDVARIANT"), "");
    assert!(Platform::parse("a/b/c/d").is_err());
    let ba = BuildArgs::new([("TARGETARCH", "riscv64")]);
    assert_eq!(ba.platform_args().iter().find(|(k, _)| k == "TARGETARCH").unwrap().1, "riscv64");
}

#[test]
fn build_args_from_flags() {
    let lookup = |k: &str| (k == "FROM_ENV").then(|| "e".to_string());
    let ba = BuildArgs::from_flags(&s(&["A=1", "B=", "FROM_ENV", "MISSING"]), &lookup);
    assert_eq!(ba.get("A"), Some("1"));
    assert_eq!(ba.get("B"), Some(""));
    assert_eq!(ba.get("FROM_ENV"), Some("e"));
    assert_eq!(ba.get("MISSING"), None);
}

#[test]
fn arg_default_errors_name_the_line() {
    let df = p("ARG A=${X\nFROM a\n");
    let e = BuildArgs::default().global_scope(&df).unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:1: failed to process \"${X\": syntax error: missing '}'");
    let df = p("FROM a\nARG B=\"${Y:?must be set}\"\n");
    let ba = BuildArgs::default();
    let g = ba.global_scope(&df).unwrap();
    let mut st = ba.stage_args(&df, &g);
    let a = df.stages[0].args().next().unwrap();
    assert_eq!(st.declare(a, &NoEnv).unwrap_err().to_string(), "Dockerfile:2: failed to process \"\\\"${Y:?must be set}\\\"\": Y: must be set");
    // an expansion error from an instruction helper, attached to its line
    let df = p("FROM a\nWORKDIR ${D\n");
    let ins = &df.stages[0].instructions[0];
    let Instr::Workdir(w) = &ins.kind else { panic!() };
    let e = w.expand(&df.lexer(), &NoEnv).map_err(|e| df.error_at(ins.line, e)).unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:2: failed to process \"${D\": syntax error: missing '}'");
}

// ------------------------------------------------------------ stages

const MULTI: &str = "\
ARG BASE=alpine
FROM $BASE AS base
RUN echo base

FROM golang AS build
COPY . /src
RUN go build -o /out/app

FROM base AS test
COPY --from=build /out/app /app
RUN /app -test

FROM scratch AS docs
COPY README.md /

FROM base AS final
COPY --from=1 /out/app /app
RUN --mount=type=bind,from=docs,target=/docs ls /docs
";

#[test]
fn stages_needed_default_target() {
    let df = p(MULTI);
    assert_eq!(df.stages_needed(None).unwrap(), [0, 1, 3, 4]);
}

#[test]
fn stages_needed_with_target() {
    let df = p(MULTI);
    assert_eq!(df.stages_needed(Some("test")).unwrap(), [0, 1, 2]);
    assert_eq!(df.stages_needed(Some("BUILD")).unwrap(), [1]);
    assert_eq!(df.stages_needed(Some("docs")).unwrap(), [3]);
    assert_eq!(df.stages_needed(Some("base")).unwrap(), [0]);
    assert_eq!(df.stages_needed(Some("tset")).unwrap_err().to_string(), "Dockerfile: target stage \"tset\" could not be found (did you mean test?)");
    assert_eq!(df.stages_needed(Some("nothing-like-it")).unwrap_err().to_string(), "Dockerfile: target stage \"nothing-like-it\" could not be found");
}

#[test]
fn stages_needed_from_via_global_arg() {
    let df = p("ARG B=one\nFROM alpine AS one\nFROM alpine AS two\nFROM $B\nRUN x\n");
    assert_eq!(df.stages_needed(None).unwrap(), [0, 2]);
    let ba = BuildArgs::new([("B", "two")]);
    assert_eq!(df.stages_needed_with(None, &ba).unwrap(), [1, 2]);
}

#[test]
fn stages_needed_errors() {
    let df = p("FROM a AS one\nCOPY --from=two /x /y\nFROM b AS two\n");
    assert_eq!(
        df.stages_needed(Some("one")).unwrap_err().to_string(),
        "Dockerfile:2: cannot copy from stage \"two\", it needs to be defined before current stage \"one\""
    );
    let df = p("FROM a\nCOPY --from=5 /x /y\n");
    assert_eq!(df.stages_needed(None).unwrap_err().to_string(), "Dockerfile:2: invalid stage index 5");
    let df = p("FROM a AS one\nRUN --mount=from=two,target=/t x\nFROM b AS two\n");
    assert!(df.stages_needed(Some("one")).unwrap_err().to_string().contains("cannot mount from stage \"two\""));
    // --from naming an image is not a stage dependency
    let df = p("FROM a\nCOPY --from=nginx:latest /etc/nginx /x\n");
    assert_eq!(df.stages_needed(None).unwrap(), [0]);
    assert_eq!(df.find_stage("0"), Some(0));
}

#[test]
fn a_realistic_dockerfile() {
    let text = r#"# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS="-trimpath"
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app

FROM gcr.io/distroless/static:nonroot
LABEL org.opencontainers.image.source="https://example.com/repo" \
      maintainer="team"
COPY --from=build --chown=nonroot:nonroot /out/app /usr/local/bin/app
USER nonroot:nonroot
EXPOSE 8080/tcp
HEALTHCHECK --interval=30s CMD ["/usr/local/bin/app", "health"]
STOPSIGNAL SIGINT
VOLUME /data
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve"]
"#;
    let df = p(text);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].instructions.len(), 7);
    assert_eq!(df.stages[1].instructions.len(), 9);
    assert_eq!(df.stages_needed(None).unwrap(), [0, 1]);
    let Instr::Env(e) = &df.stages[0].instructions[1].kind else { panic!() };
    assert_eq!(e.expand(&df.lexer(), &NoEnv).unwrap(), env(&[("CGO_ENABLED", "0"), ("GOFLAGS", "-trimpath")]));
    assert_eq!(df.stages[1].instructions[2].line, 20);
}
