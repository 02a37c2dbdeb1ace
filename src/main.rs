//! The `custos` binary: parse the command line, hand over to the library, map the outcome to
//! an exit code (0 ok, 2 usage/configuration error, 1 runtime failure).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = custos::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("custos: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(custos::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custos: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
