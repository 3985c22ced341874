//! Issue 17 (outage scale): the API requests of `diagnose -A` do not grow
//! with the number of failing pods, counted from the apiserver's audit log.
//!
//! The test populates a small bench set of its own (`pullfix-lab populate
//! --prefix`: its own namespaces and bench nodes, next to other tests), runs
//! `diagnose -A --no-probe -o json` with 40 and then 80 of its 80 pods
//! failing, as a ServiceAccount of its own (so the audit log tells its
//! requests from every other test's), and compares the requests made
//! cluster-wide or in its own namespaces (other tests' failing pods, in
//! other namespaces, come and go while it runs and are not counted).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::process::Command;

use serde_json::Value;

use crate::diagnose::pullfix;
use crate::lab::{env, kubectl, kubectl_ok, lab_bin, service_account_kubeconfig, unique_ns};

/// Requests the larger size may make beyond the smaller one (a list page
/// more, a retry).
const SLACK: usize = 4;

/// The test's own namespaces and pods: more namespaces than pullfix lists
/// one by one (8), so that both sizes below read cluster-wide lists, where
/// the claim "requests grow with list pages, not failures" is made.
const NAMESPACES: usize = 20;
const PODS_PER_NAMESPACE: usize = 4;
const SMALL: usize = 40;
const LARGE: usize = 80;

/// Deletes what the test made, even when an assertion failed.
struct Cleanup {
    prefix: String,
    sa_ns: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(lab_bin())
            .args(["depopulate", "--prefix", &self.prefix])
            .output();
        let _ = kubectl(&["delete", "clusterrolebinding", &self.sa_ns, "--wait=false"]);
        let _ = kubectl(&["delete", "namespace", &self.sa_ns, "--wait=false"]);
    }
}

fn populate(prefix: &str, failing: usize) -> String {
    let out = Command::new(lab_bin())
        .args([
            "populate",
            "--prefix",
            prefix,
            "--namespaces",
            &NAMESPACES.to_string(),
            "--pods-per-namespace",
            &PODS_PER_NAMESPACE.to_string(),
            "--failing",
            &failing.to_string(),
        ])
        .output()
        .expect("run pullfix-lab populate");
    assert!(
        out.status.success(),
        "pullfix-lab populate --prefix {prefix} --failing {failing}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The audit log's position: (inode, length).
fn audit_log_pos() -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(env("PULLFIX_LAB_AUDIT_LOG")).expect("the audit log");
    (m.ino(), m.len())
}

/// The audit log written since `pos`. The apiserver rotates it at 100 MB
/// (renamed to `audit-TIME.log`, same inode): then the rest of the rotated
/// file and all of the new one.
fn audit_log_since((ino, offset): (u64, u64)) -> String {
    use std::os::unix::fs::MetadataExt as _;
    let log = std::path::PathBuf::from(env("PULLFIX_LAB_AUDIT_LOG"));
    let read_from = |path: &std::path::Path, offset: u64| {
        let mut f = std::fs::File::open(path).expect("open the audit log");
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        text
    };
    if std::fs::metadata(&log).expect("the audit log").ino() == ino {
        return read_from(&log, offset);
    }
    let rotated = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == ino))
        .expect("the rotated audit log");
    read_from(&rotated, offset) + &read_from(&log, 0)
}

/// The requests `user` made since `pos` (see [`audit_log_pos`]),
/// cluster-scoped or in a namespace starting with `prefix`, as "verb path"
/// with namespaces and object names folded.
fn requests_since(pos: (u64, u64), user: &str, prefix: &str) -> Vec<String> {
    audit_log_since(pos)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete" && e["user"]["username"] == user)
        .filter(|e| {
            e["objectRef"]["namespace"]
                .as_str()
                .is_none_or(|ns| ns.starts_with(prefix))
        })
        .map(|e| {
            let verb = e["verb"].as_str().unwrap_or_default();
            let uri = e["requestURI"].as_str().unwrap_or_default();
            let path = uri.split('?').next().unwrap_or_default();
            let mut parts: Vec<&str> = path.split('/').collect();
            if let Some(i) = parts.iter().position(|p| *p == "namespaces")
                && i + 2 < parts.len()
            {
                parts[i + 1] = "*";
            }
            // An object's name: /api/v1/[namespaces/*/]RESOURCE/NAME or
            // /apis/GROUP/VERSION/[namespaces/*/]RESOURCE/NAME (not
            // discovery paths such as /apis/batch/v1).
            let base = if parts.get(1) == Some(&"api") { 3 } else { 4 };
            let base = if parts.get(base) == Some(&"namespaces") && parts.len() > base + 2 {
                base + 2
            } else {
                base
            };
            if parts.len() == base + 2 {
                parts[base + 1] = "NAME";
            }
            format!("{verb} {}", parts.join("/"))
        })
        .collect()
}

/// "verb path xN, ..." by count.
fn breakdown(requests: &[String]) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for r in requests {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(r, n)| format!("{r} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `diagnose -A --no-probe -o json` with `kubeconfig`; returns the
/// requests it made (see [`requests_since`]).
fn diagnose_requests(kubeconfig: &str, user: &str, prefix: &str) -> Vec<String> {
    let offset = audit_log_pos();
    let out = pullfix(&[
        "--kubeconfig",
        kubeconfig,
        "diagnose",
        "-A",
        "--no-probe",
        "-o",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "diagnose -A --no-probe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(prefix),
        "diagnose -A does not name the pods in {prefix}*"
    );
    // The audit backend writes as requests complete; a moment for the last.
    std::thread::sleep(std::time::Duration::from_secs(1));
    requests_since(offset, user, prefix)
}

#[test]
fn diagnose_requests_do_not_grow_with_failing_pods() {
    let prefix = format!("{}-", unique_ns("outage"));
    let sa_ns = unique_ns("outage-sa");
    let _cleanup = Cleanup {
        prefix: prefix.clone(),
        sa_ns: sa_ns.clone(),
    };
    kubectl_ok(&["create", "namespace", &sa_ns]);
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, _token) = service_account_kubeconfig(&sa_ns, "diagnose", dir.path());
    kubectl_ok(&[
        "create",
        "clusterrolebinding",
        &sa_ns,
        "--clusterrole=cluster-admin",
        &format!("--serviceaccount={sa_ns}:diagnose"),
    ]);
    let user = format!("system:serviceaccount:{sa_ns}:diagnose");
    let kubeconfig = kubeconfig.to_str().unwrap().to_string();

    let small_pop = populate(&prefix, SMALL);
    let small = diagnose_requests(&kubeconfig, &user, &prefix);
    let large_pop = populate(&prefix, LARGE);
    let large = diagnose_requests(&kubeconfig, &user, &prefix);

    let report = format!(
        "diagnose -A --no-probe API requests: {} with {SMALL} failing pods, {} with {LARGE} \
         (cluster-wide or in {prefix}*)\n  {SMALL} failing ({small_pop}): {}\n  {LARGE} failing ({large_pop}): {}",
        small.len(),
        large.len(),
        breakdown(&small),
        breakdown(&large),
    );
    eprintln!("{report}");
    assert!(
        !small.is_empty() && !large.is_empty(),
        "no audited request of {user}\n{report}"
    );
    assert!(
        large.len() <= small.len() + SLACK,
        "requests grow with failing pods (more than +{SLACK}):\n{report}"
    );
}
