fn main() {
    gmvae::cli::exit_quietly_on_closed_stdout();
    gmvae::alloc::keep_freed_memory();
    let cli = gmvae::cli::Cli::parse_args();
    if let Err(e) = gmvae::cli::run(cli) {
        eprintln!("error: {}", gmvae::cli::error_line(&e));
        std::process::exit(1);
    }
}
