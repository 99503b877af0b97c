use clap::Parser;

fn main() {
    let cli = gmvae::cli::Cli::parse();
    if let Err(e) = gmvae::cli::run(cli) {
        // One line per cause; candle errors may carry a backtrace after their first line.
        let causes: Vec<String> = e
            .chain()
            .map(|c| c.to_string().lines().next().unwrap_or("").to_string())
            .collect();
        eprintln!("error: {}", causes.join(": "));
        std::process::exit(1);
    }
}
