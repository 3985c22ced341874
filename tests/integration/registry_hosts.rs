//! `--registry-hosts DIR`: a containerd certs.d directory, checked before
//! the cluster is asked anything. Needs no cluster: the errors come first.
//! (The lab and sandbox suites run every probe through it.)

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args(args)
        // A kubeconfig that points nowhere: nothing may be asked of it first.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("PULLFIX_REGISTRY_HOSTS")
        .output()
        .expect("run kubectl-pullfix");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_directory_is_an_error_with_a_hint() {
    let (code, err) = run(&["diagnose", "--registry-hosts", "/nonexistent/certs.d"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--registry-hosts /nonexistent/certs.d: no such file or directory"),
        "{err}"
    );
    assert!(err.contains("help: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn keys_a_probe_would_not_follow_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("registry.corp.example");
    std::fs::create_dir_all(&reg).unwrap();
    std::fs::write(
        reg.join("hosts.toml"),
        "server = \"https://registry.corp.example\"\n[host.\"https://mirror.corp.example\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, err) = run(&["fix", "deploy/checkout", "--dry-run", "--registry-hosts", d]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("hosts.toml"), "names the file: {err}");
    assert!(err.contains("override_path"), "{err}");
    assert!(err.contains("help: "), "{err}");
}

#[test]
fn the_environment_variable_is_the_same_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args(["diagnose"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("PULLFIX_REGISTRY_HOSTS", "/nonexistent/certs.d")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--registry-hosts /nonexistent/certs.d"),
        "{err}"
    );
}
