//! `kubectl-pullfix`: found by kubectl on PATH and run as `kubectl pullfix`.

// No unwrap/expect/panic or indexing that could panic in the product;
// tests may (clippy.toml). Issue 16.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cli;

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use pullfix::{EXIT_ERROR, EXIT_OK};

fn main() -> ExitCode {
    main_entry(std::env::args_os())
}

/// Parses arguments, runs the command, prints any error once on stderr and
/// maps the outcome to kubectl-style exit codes.
fn main_entry(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    // One crypto provider for every rustls user (kube, reqwest, aws-sdk).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = match cli::parse(cli::normalize_args(args)) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::from(EXIT_OK);
        }
        Err(e) => {
            let _ = write!(std::io::stderr(), "{}", cli::error_text(&e));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    cli::init_tracing(cli.globals.log_level(), cli.globals.log_color());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) if pullfix::is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) if pullfix::terminal::is_interrupted(&e) => {
            // Ctrl-C before the flow knew of any step (choosing a workload).
            pullfix::terminal::restore();
            let _ = write!(
                std::io::stderr(),
                "interrupted (Ctrl-C): {}",
                pullfix::terminal::written_text()
            );
            ExitCode::from(pullfix::EXIT_INTERRUPTED)
        }
        Err(e) => {
            // An error can quote the API server or a registry: shown inert.
            let text = format!("{e:#}");
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                pullfix::sanitize::block(&text)
            );
            ExitCode::from(EXIT_ERROR)
        }
    }
}
