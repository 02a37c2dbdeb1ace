//! The `custos` binary: parse the command line, hand over to the library, map the outcome to
//! an exit code (0 ok, 2 usage/configuration error, 1 runtime failure). A fatal error is
//! logged like every other line (JSON unless stderr is a terminal).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match custos::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version go to stdout as clap prints them.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            custos::telemetry::fatal(e.render().to_string().trim_end(), 2);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            custos::telemetry::fatal(&format!("cannot start the async runtime: {e}"), 1);
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(custos::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            custos::telemetry::fatal(&e.to_string(), code);
            ExitCode::from(code)
        }
    }
}
