fn main() {
    eprintln!("berth-build: the command line is not wired up yet");
    std::process::exit(2);
}
