//! berth-build: see `berth_build::cli`.
fn main() {
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    std::process::exit(berth_build::cli::main(argv));
}
