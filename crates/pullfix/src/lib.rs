//! kubectl-pullfix's library: everything the plugin does, without its
//! command line. The runbook's pipeline, module by module:
//!
//! - [`kubeconfig`]: a Kubernetes client from kubectl-style flags.
//! - [`api`]: the one gateway to the API server (typed requests, typed
//!   errors: [`errors`]).
//! - [`input`], [`duration`], [`target`]: checks on what a person typed
//!   (names, durations, `deploy/NAME`), each failure with a `help:` line.
//! - [`collect`]: reading the cluster (paged lists into small structs).
//! - [`scan`]: the quick assessment across namespaces (runbook step 0).
//! - [`diagnose`]: classify the real error and decide the cause (pure), from
//!   what [`collect`] read and what [`probe`] asked the registry.
//! - [`registry`]: image references, pull-secret credentials and the
//!   kubelet's keyring rules (pure), and a distribution-API client.
//! - [`probe`]: registry probes from this machine.
//! - [`remediate`]: plan (pure), apply (writes, with confirmation), verify,
//!   and the incident report.
//! - [`render`]: text and `-o wide|json|yaml|name`.
//! - [`namespace`]: the namespace a command looks in exists (or the close
//!   names there are); [`redact`]: credentials kept out of the logs.
//! - [`sanitize`]: cluster and registry text made inert before it is
//!   printed (escapes shown escaped, long values cut, Markdown escaped).
//! - [`terminal`]: Ctrl-C (a typed [`terminal::Interrupted`]) and the
//!   spinners shown while waiting.
//!
//! The command line lives in the plugin (`src/cli.rs` at the workspace
//! root); the practice sandbox and the lab are crates of their own that use
//! this one.

// Objects from the API server and answers from registries are untrusted
// input: any shape is a finding, never a panic (no unwrap, no indexing
// that could panic). Tests may unwrap and index (clippy.toml). Issue 16.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod api;
pub mod collect;
pub mod diagnose;
pub mod duration;
pub mod encoding;
pub mod errors;
#[cfg(test)]
mod hostile_tests;
pub mod input;
pub mod kubeconfig;
pub mod namespace;
pub mod probe;
pub mod redact;
pub mod registry;
pub mod remediate;
pub mod render;
pub mod sanitize;
pub mod scan;
pub mod target;
pub mod terminal;
pub mod throttle;

use std::io::Write;

/// Exit code: nothing failing.
pub const EXIT_OK: u8 = 0;
/// Exit code: failures found (or fixes pending).
pub const EXIT_FAILURES: u8 = 1;
/// Exit code: an error prevented the command from doing its job.
pub const EXIT_ERROR: u8 = 2;
/// Exit code: interrupted (Ctrl-C), as a shell reports a SIGINT (128 + 2).
pub const EXIT_INTERRUPTED: u8 = 130;

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

/// True when the error comes from writing to a closed pipe (`| head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
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
