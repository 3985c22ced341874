//! `kubectl-pullfix`: found by kubectl on PATH and run as `kubectl pullfix`.

use std::process::ExitCode;

fn main() -> ExitCode {
    pullfix::main_entry(std::env::args_os())
}
