fn main() -> std::process::ExitCode {
    // Agent-safe mode's CA-bundle holder is this binary re-executed (see proxy/holder.rs).
    vault_run::run_if_holder();
    // `vault-run --version` alone answers before clap builds the whole command (measured in
    // BENCHMARKS.md, "Start-up of the static binary"); the same line clap prints.
    let mut args = std::env::args_os().skip(1);
    if let (Some(flag), None) = (args.next(), args.next()) {
        if flag == "--version" || flag == "-V" {
            println!("vault-run {}", env!("CARGO_PKG_VERSION"));
            return std::process::ExitCode::SUCCESS;
        }
    }
    vault_run::main()
}
