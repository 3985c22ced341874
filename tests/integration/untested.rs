//! Issue 15, first part: a credential this machine cannot test is not
//! called wrong. On the lab's TLS registry, with the right password and no
//! CA given (as on a laptop without the company's CA), `fix` says the
//! credential could not be tested from here and why, names `--registry-ca`,
//! changes nothing and pages nobody; with `--registry-ca` it tests and
//! fixes; with `--allow-untested` it writes it, marked untested.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::lab::{delete_ns, env, json, scenario, wait_pull_error};

const NODE: &str = "lab-k133-cd21";

/// `fix deploy/checkout -n ns --yes` with the right password on stdin and
/// no registry configuration but `extra`.
fn fix(ns: &str, extra: &[&str]) -> (Output, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args(crate::fix::fix_checkout_args(ns))
        .args(extra)
        .env_remove("PULLFIX_REGISTRY_HOSTS")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let password = env("PULLFIX_LAB_REGISTRY_PASSWORD");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(&password), "the password was printed");
    (out, text)
}

fn secret_data(ns: &str) -> String {
    json(&["get", "secret", "regcred", "-n", ns])["data"].to_string()
}

#[test]
fn a_credential_this_machine_cannot_test_is_not_called_wrong() {
    let registry = env("PULLFIX_LAB_REGISTRY");
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let before = secret_data(&ns);

    // No CA: not tested, not written, not "does not work", nobody paged.
    let (out, t) = fix(&ns, &[]);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "could not be tested from here: this machine does not trust {registry}'s certificate"
        )),
        "{t}"
    );
    assert!(t.contains("--registry-ca FILE"), "{t}");
    assert!(
        t.contains("pass --allow-untested (--yes alone does not)"),
        "{t}"
    );
    assert!(!t.contains("does not work"), "{t}");
    assert!(!t.contains("escalate:"), "{t}");
    assert_eq!(secret_data(&ns), before, "written without a test");

    // With the nodes' CA: tested, written, verified.
    let (out, t) = fix(&ns, &["--registry-ca", &env("PULLFIX_LAB_CA")]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(&format!("tested against {registry}: the image resolves")),
        "{t}"
    );
    assert!(!t.contains("untested"), "{t}");
    delete_ns(&ns);

    // Untested on purpose: written, and marked so.
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let (out, t) = fix(&ns, &["--allow-untested"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("write it untested?"), "{t}");
    assert!(t.contains("yes (--allow-untested)"), "{t}");
    assert!(
        t.contains("credential untested: this machine does not trust"),
        "{t}"
    );
    assert!(t.contains("the credential was written untested"), "{t}");
    assert_ne!(secret_data(&ns), before);
    delete_ns(&ns);
}

#[test]
fn a_registry_ca_that_is_not_a_certificate_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("ca.txt");
    std::fs::write(&junk, "not a certificate").unwrap();
    for (path, says) in [
        (junk.to_str().unwrap(), "not a PEM certificate"),
        ("/nonexistent/ca.pem", "no such file or directory"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
            .args(["diagnose", "--registry-ca", path, "-n", "default"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!("error: --registry-ca {path}: {says}")),
            "{err}"
        );
        assert!(err.contains("\nhelp: "), "{err}");
    }
}
