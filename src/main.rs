fn main() -> std::process::ExitCode {
    vault_run::cli::main()
}
