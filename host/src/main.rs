fn main() {
    std::process::exit(triage::cli::main());
}
