//! The command line:
//!
//! ```text
//! berth-build [--store DIR] COMMAND
//!   build [-f FILE] [-t NAME:TAG]... [--build-arg K=V]... [--target STAGE] [--no-cache]
//!         [--output type=oci|docker|tar|local|bundle|oci-archive|docker-archive,dest=PATH]...
//!         [-q] [REGISTRY FLAGS] ... CONTEXT   (`build --help` lists every flag: cli/build.rs)
//!   images [-q] [--no-trunc] [--format FORMAT] [--filter KEY=VALUE]...
//!   inspect [--format FORMAT] IMAGE
//!   history [--no-trunc] [-q] [--format FORMAT] IMAGE
//!   tag SOURCE TARGET
//!   rmi [-f] IMAGE...
//!   prune [--cache]
//!   import [--compression gzip|zstd] [--message TEXT] [--change INSTRUCTION]... TARBALL NAME
//!   save [--format docker-archive|oci-archive] -o FILE IMAGE
//!   from [--name NAME] [REGISTRY FLAGS] IMAGE
//!   run [-v SRC:DST[:ro]]... [--network host|none] NAME -- CMD...
//!   copy [--chown USER[:GROUP]] NAME SRC... DST
//!   config [--env K=V] [--cmd C] [--entrypoint E] [--workdir D] [--user U] [--label K=V]
//!          [--port P] [--volume V] [--change INSTRUCTION] NAME
//!   commit [--compression gzip|zstd] NAME IMAGE
//!   rm NAME...
//!   containers [-q] [--no-trunc] [--format FORMAT]
//!   pull [REGISTRY FLAGS] [-q] REF
//!   push [REGISTRY FLAGS] [--chunk-size N] [-q] NAME [REF]
//!   login [--tls-verify=false] [--authfile F] -u USER (--password-stdin | -p PASS) HOST
//!   logout [--authfile F] HOST
//!   load [-i] FILE [NAME]
//!
//! IMAGE: a name, an image id (the config digest) or a unique prefix of one (4+ hex).
//! FORMAT: `json`, or a Go-template subset (see template.rs), `table ...` for columns.
//! --filter: reference=PATTERN, label=KEY[=VALUE], dangling=true|false, before=IMAGE,
//! since=IMAGE.
//!
//! REGISTRY FLAGS: --tls-verify=false, --insecure-registry HOST, --cert-file PEM,
//! --creds USER:PASS, --authfile FILE, --platform OS/ARCH[/VARIANT]
//! ```
//!
//! The store is `--store`, else `$BERTH_STORE`, else /var/lib/berth. Exit status: 0, 1 on
//! an error, 2 on bad usage.

pub mod args;
mod build;
mod images;
pub mod remote;
pub mod template;
mod working;

use std::path::PathBuf;

pub const USAGE: &str = "Usage: berth-build [--store DIR] COMMAND [ARGS]

Commands:
  build    Build an image from a Dockerfile
  images   List images
  inspect  Show an image's manifest and config
  history  Show an image's history
  tag      Give an image another name
  rmi      Remove image names (by name, or every name of an image id)
  prune    Remove unreferenced blobs, layers and temp files (--cache: also the build cache)
  import   Make an image from a rootfs tarball
  pull     Pull an image from a registry into the store
  push     Push an image to a registry
  login    Log in to a registry
  logout   Log out of a registry
  load     Load an oci-archive or docker-archive into the store
  save     Write an image as a docker-archive or oci-archive

Working containers (scripted builds):
  from        Make a working container from an image; prints its name
  run         Run a command in a working container
  copy        Copy files into a working container
  config      Change a working container's image config
  commit      Make an image of a working container's changes
  rm          Remove working containers
  containers  List working containers

Global options:
  --store DIR   the image store (default: $BERTH_STORE, else /var/lib/berth)
  -h, --help    this help
  --version     the version
";

/// A command's failure: the message, the exit status, and the Dockerfile excerpt
/// to show above the message when the failure is at a Dockerfile line.
pub struct Fail {
    pub code: i32,
    pub msg: String,
    pub excerpt: Option<String>,
}

impl Fail {
    pub fn usage(msg: impl std::fmt::Display) -> Fail {
        Fail { code: 2, msg: msg.to_string(), excerpt: None }
    }
    pub fn err(msg: impl std::fmt::Display) -> Fail {
        Fail { code: 1, msg: msg.to_string(), excerpt: None }
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        Fail::err(e)
    }
}

impl From<crate::Error> for Fail {
    fn from(e: crate::Error) -> Fail {
        Fail { code: 1, msg: e.to_string(), excerpt: e.excerpt().map(str::to_string) }
    }
}

/// Runs the command line; returns the exit status.
pub fn main(argv: Vec<String>) -> i32 {
    let mut store: Option<PathBuf> = None;
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--store" {
            match argv.get(i + 1) {
                Some(v) => store = Some(PathBuf::from(v)),
                None => return usage_error("flag needs an argument: --store"),
            }
            i += 2;
        } else if let Some(v) = a.strip_prefix("--store=") {
            store = Some(PathBuf::from(v));
            i += 1;
        } else if a == "-h" || a == "--help" {
            print!("{USAGE}");
            return 0;
        } else if a == "--version" || a == "-v" {
            println!("berth-build version {}", env!("CARGO_PKG_VERSION"));
            return 0;
        } else if a.starts_with('-') {
            return usage_error(&format!("unknown flag: {a}"));
        } else {
            break;
        }
    }
    let Some(cmd) = argv.get(i) else {
        eprint!("{USAGE}");
        return 2;
    };
    let rest: Vec<String> = argv[i + 1..].to_vec();
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", if cmd == "build" { build::HELP } else { USAGE });
        return 0;
    }
    // Absolute: RUN's overlay lowerdirs are links into the store, read from elsewhere.
    let store = crate::store::store_dir(store.as_deref());
    let store = std::path::absolute(&store).unwrap_or(store);
    let r = match cmd.as_str() {
        "build" => build::run(&store, &rest),
        "images" => images::images(&store, &rest),
        "inspect" => images::inspect(&store, &rest),
        "history" => images::history(&store, &rest),
        "tag" => images::tag(&store, &rest),
        "rmi" => images::rmi(&store, &rest),
        "prune" => images::prune(&store, &rest),
        "import" => images::import(&store, &rest),
        "pull" => remote::pull(&store, &rest),
        "push" => remote::push(&store, &rest),
        "login" => remote::login(&store, &rest),
        "logout" => remote::logout(&store, &rest),
        "load" => remote::load(&store, &rest),
        "from" => working::from(&store, &rest),
        "run" => working::run(&store, &rest),
        "copy" => working::copy(&store, &rest),
        "config" => working::config(&store, &rest),
        "commit" => working::commit(&store, &rest),
        "rm" => working::rm(&store, &rest),
        "containers" => working::containers(&store, &rest),
        "save" => working::save(&store, &rest),
        other => Err(Fail::usage(format!("unknown command {other:?}"))),
    };
    match r {
        Ok(()) => 0,
        Err(f) => {
            if let Some(x) = &f.excerpt {
                eprint!("{x}");
            }
            eprintln!("berth-build: {}", f.msg);
            if f.code == 2 {
                eprintln!("Run 'berth-build --help' for usage.");
            }
            f.code
        }
    }
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("berth-build: {msg}\nRun 'berth-build --help' for usage.");
    2
}
