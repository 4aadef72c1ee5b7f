//! `nasheed`: parse arguments, run the command, map the outcome to the exit code of the contract.

mod cli;
mod server;

fn main() -> std::process::ExitCode {
    let args = cli::args::parse();
    match cli::run(args) {
        Ok(cli::Outcome::Success) => std::process::ExitCode::from(0),
        Ok(cli::Outcome::Matched) => std::process::ExitCode::from(1),
        Ok(cli::Outcome::Failed) => std::process::ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
