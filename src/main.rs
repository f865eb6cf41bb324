use clap::Parser;
use syncstorm::cli::Cli;

fn main() {
    let cli = Cli::parse();
    match cli.command {}
}
