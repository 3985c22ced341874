//! kubectl-pullfix gets pods out of `ImagePullBackOff` / `ErrImagePull`.
//!
//! Layout, by what each part does in the runbook:
//! - [`cli`]: the command line (clap), kubectl's conventions.
//! - [`registry`]: image references, pull-secret credentials and the
//!   kubelet's keyring rules, a distribution-API client (pure parsing kept
//!   apart from the client that does I/O).
//! - [`sandbox`]: the simulated kubelet and its message profiles; it powers
//!   the lab today and the practice sandbox later.
//! - [`lab`]: scenario fixtures (each seed failure, set up in a namespace).
//! - [`kubeconfig`]: building a Kubernetes client from kubectl-style flags.

pub mod cli;
pub mod collect;
pub mod diagnose;
pub mod errors;
pub mod kubeconfig;
pub mod lab;
pub mod probe;
pub mod registry;
pub mod remediate;
pub mod render;
pub mod sandbox;
pub mod scan;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// Exit code: nothing failing.
pub const EXIT_OK: u8 = 0;
/// Exit code: failures found (or fixes pending).
pub const EXIT_FAILURES: u8 = 1;
/// Exit code: an error prevented the command from doing its job.
pub const EXIT_ERROR: u8 = 2;

/// Parses arguments, runs the command, prints any error once on stderr and
/// maps the outcome to kubectl-style exit codes.
pub fn main_entry(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    // One crypto provider for every rustls user (kube, reqwest, aws-sdk).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = match cli::parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    cli::init_tracing(cli.verbosity);
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
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Writes a file only its owner can read, atomically: a 0600 temporary file
/// next to it, renamed over it, so a reader polling for the file never sees
/// a partial one and an older file with wider permissions is replaced, not
/// reused. For reports, kubeconfigs and anything holding credentials.
pub fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = f.write_all(contents.as_bytes());
    drop(f);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Resolves at Ctrl-C or SIGTERM (long-running commands stop cleanly on
/// either).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_even_when_they_existed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("env");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&p, "new").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        let missing = dir.path().join("no-such-dir").join("f");
        assert!(write_private(&missing, "x").is_err());
    }
}
