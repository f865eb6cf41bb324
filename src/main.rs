use clap::Parser;
use syncstorm::cli::{Cli, Command};
use syncstorm::report_cmd;

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => syncstorm::run_cmd::run(args),
        Command::Worker => syncstorm::run_cmd::worker(),
        Command::Stack(args) => syncstorm::stack_cmd::run(args),
        Command::StackWorker => syncstorm::stack_cmd::worker(),
        Command::Model(args) => syncstorm::model::model(&args),
        Command::Calibrate(args) => syncstorm::model::calibrate(&args),
        Command::Capacity(args) => syncstorm::model::capacity::capacity(&args),
        Command::Validate(args) => syncstorm::model::validate::validate(&args),
        Command::Report(args) => report_cmd::report(&args),
        Command::Compare(args) => report_cmd::compare(&args),
        Command::Merge(args) => report_cmd::merge(&args),
        Command::Cleanup(args) => syncstorm::cleanup::run(&args),
        Command::Keys(args) => syncstorm::keys_cmd::run(&args),
    };
    std::process::exit(code);
}
