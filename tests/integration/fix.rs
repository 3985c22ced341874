//! `kubectl pullfix fix` against the lab: each fixable scenario is fixed and
//! verified; every safety rule is tested (dry-run writes nothing per the
//! audit log, no terminal means nothing is written, conflicts are not
//! overwritten, managed secrets need an extra yes, permissions are checked,
//! backups are private, paused Deployments are not restarted).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::lab::{delete_ns, env, json, kubectl_ok, scenario, wait_pull_error, wait_waiting};

const NODE: &str = "lab-k128-cd21";

/// Runs the plugin with the lab's registry knobs, stdin fed from `input`.
pub(crate) fn pullfix_in(args: &[&str], input: &str, extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"));
    cmd.args(args)
        .env("PULLFIX_REGISTRY_HOSTS", env("PULLFIX_LAB_REGISTRY_HOSTS"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn kubectl-pullfix");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait for kubectl-pullfix")
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn password() -> String {
    env("PULLFIX_LAB_REGISTRY_PASSWORD") + "\n"
}

/// Fixes with --yes (and the good credential on stdin); asserts exit 0,
/// the verdict, and that the workload is fully ready.
fn fix_ok(ns: &str, target: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let mut args = vec![
        "fix",
        target,
        "-n",
        ns,
        "--yes",
        "--timeout",
        "90s",
        "--backup-dir",
        backups.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = pullfix_in(&args, &password(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "fix {target} -n {ns}:\n{t}");
    assert!(
        t.contains("resolved: every workload this run diagnosed or changed is verified healthy"),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "✔ {target} -n {ns}: {n}/{n} ready, no pod in ImagePullBackOff",
            n = ready(ns, target.trim_start_matches("deploy/")).1
        )),
        "one line per workload: {t}"
    );
    assert!(
        !t.contains(&env("PULLFIX_LAB_REGISTRY_PASSWORD")),
        "the password leaked into the output"
    );
    // Every backup is private.
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(&backups).into_iter().flatten().flatten() {
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", entry.path().display());
    }
    t
}

fn ready(ns: &str, deploy: &str) -> (i64, i64) {
    let d = json(&["get", "deployment", deploy, "-n", ns]);
    (
        d["status"]["readyReplicas"].as_i64().unwrap_or(0),
        d["spec"]["replicas"].as_i64().unwrap_or(0),
    )
}

fn audit_writes(ns_prefix: &str) -> Vec<Value> {
    let log = std::fs::read_to_string(env("PULLFIX_LAB_AUDIT_LOG")).unwrap();
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|u| u.starts_with("kubectl-pullfix/"))
        })
        .filter(|e| {
            e["objectRef"]["namespace"]
                .as_str()
                .is_some_and(|n| n.starts_with(ns_prefix))
        })
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete")
            )
        })
        .collect()
}

pub(crate) fn non_dry_run(writes: &[Value]) -> Vec<&Value> {
    writes
        .iter()
        .filter(|e| {
            !e["requestURI"]
                .as_str()
                .unwrap_or_default()
                .contains("dryRun=All")
        })
        .collect()
}

#[test]
fn fixes_credentials_with_a_tested_secret_and_restart() {
    for (id, extra) in [
        (
            "rotated-password",
            vec!["--username", "pullfix", "--password-stdin"],
        ),
        (
            "secret-opaque",
            vec!["--username", "pullfix", "--password-stdin"],
        ),
        (
            "wrong-registry-key",
            vec!["--username", "pullfix", "--password-stdin"],
        ),
        (
            "secret-missing",
            vec!["--username", "pullfix", "--password-stdin"],
        ),
        (
            "no-pull-secrets",
            vec!["--username", "pullfix", "--password-stdin"],
        ),
    ] {
        let ns = scenario(id, Some(NODE));
        wait_pull_error(&ns, "checkout", false);
        let t = fix_ok(&ns, "deploy/checkout", &extra);
        assert!(t.contains("tested against"), "{id}: {t}");
        let (r, d) = ready(&ns, "checkout");
        assert_eq!(r, d, "{id}");
        let s = json(&[
            "get",
            "secret",
            "regcred",
            "-n",
            &ns,
            "--show-managed-fields",
        ]);
        assert_eq!(s["type"], "kubernetes.io/dockerconfigjson", "{id}");
        let fm = s["metadata"]["managedFields"].to_string();
        assert!(fm.contains("kubectl-pullfix"), "{id}: field manager: {fm}");
        delete_ns(&ns);
    }
}

#[test]
fn a_secret_the_kubelet_cannot_decode_is_repaired_from_its_own_credential() {
    // No credential given: regcred's own entry for the registry is tested
    // (the kubelet never sent it), and the entry it cannot decode is dropped.
    let ns = scenario("secret-undecodable", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let t = fix_ok(&ns, "deploy/checkout", &[]);
    for want in [
        "the kubelet cannot decode its entry `mirror.internal.example`",
        "- auths[mirror.internal.example]: dropped, the kubelet cannot decode it (illegal base64 data at input byte 4)",
        "the credential already in",
        "tested against",
    ] {
        assert!(t.contains(want), "missing {want:?}:\n{t}");
    }
    let s = json(&["get", "secret", "regcred", "-n", &ns]);
    let config = s["data"][".dockerconfigjson"].as_str().unwrap();
    use base64::Engine as _;
    let config: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(config)
            .unwrap(),
    )
    .unwrap();
    let keys: Vec<&String> = config["auths"].as_object().unwrap().keys().collect();
    assert_eq!(keys, [&env("PULLFIX_LAB_REGISTRY")], "{config:#}");
    delete_ns(&ns);
}

#[test]
fn a_bad_new_credential_is_refused_before_it_is_written() {
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let before = json(&["get", "secret", "regcred", "-n", &ns])["data"].to_string();
    let out = pullfix_in(
        &[
            "fix",
            "deploy/checkout",
            "-n",
            &ns,
            "--yes",
            "--username",
            "pullfix",
            "--password-stdin",
        ],
        "still-wrong\n",
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("does not work against"), "{t}");
    assert!(t.contains("the secret was not changed"), "{t}");
    assert!(
        t.contains(&format!(
            "skipped: depends on 'update pull secret {ns}/regcred for "
        )),
        "restart skipped: {t}"
    );
    // A rejected credential is the user's to correct: no page.
    assert!(!t.contains("escalate: page"), "{t}");
    assert_eq!(
        json(&["get", "secret", "regcred", "-n", &ns])["data"].to_string(),
        before
    );
    delete_ns(&ns);
}

#[test]
fn fixes_images_only_with_verified_references() {
    let reg = env("PULLFIX_LAB_REGISTRY");
    // Three tags are close to the missing one: --yes does not guess among
    // them (it says to pass --image), and --image is verified, then set.
    let ns = scenario("wrong-tag", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let out = pullfix_in(&["fix", "deploy/checkout", "-n", &ns, "--yes"], "", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("pullfix does not guess"),
        "{}",
        text(&out)
    );
    let image = format!("{reg}/team/checkout:v2.1.0");
    fix_ok(&ns, "deploy/checkout", &["--image", &image]);
    let d = json(&["get", "deployment", "checkout", "-n", &ns]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
    delete_ns(&ns);

    let ns = scenario("missing-prefix", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    fix_ok(&ns, "deploy/checkout", &[]);
    delete_ns(&ns);

    let ns = scenario("init-container", Some(NODE));
    wait_pull_error(&ns, "migrate", true);
    fix_ok(&ns, "deploy/checkout", &[]);
    let d = json(&["get", "deployment", "checkout", "-n", &ns]);
    assert_eq!(
        d["spec"]["template"]["spec"]["initContainers"][0]["image"],
        format!("{reg}/team/worker:1.4.2")
    );
    delete_ns(&ns);

    // An invalid name has no suggestion: nothing is guessed; --image is checked first.
    let ns = scenario("invalid-name", Some(NODE));
    wait_waiting(&ns, "checkout", "InvalidImageName", false);
    let out = pullfix_in(&["fix", "deploy/checkout", "-n", &ns, "--yes"], "", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no fix pullfix can apply"),
        "{}",
        text(&out)
    );
    let bogus = format!("{reg}/team/checkout:v9.9.9");
    let out = pullfix_in(
        &[
            "fix",
            "deploy/checkout",
            "-n",
            &ns,
            "--yes",
            "--image",
            &bogus,
        ],
        "",
        &[],
    );
    assert!(
        text(&out).contains("does not resolve from here, so it is not set"),
        "{}",
        text(&out)
    );
    fix_ok(
        &ns,
        "deploy/checkout",
        &["--image", &format!("{reg}/team/checkout:v2.1.0")],
    );
    delete_ns(&ns);
}

#[test]
fn attaches_an_existing_secret_to_the_service_account() {
    let ns = scenario("sa-secret-only", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    fix_ok(&ns, "deploy/checkout", &["--attach-to", "service-account"]);
    let sa = json(&["get", "serviceaccount", "checkout", "-n", &ns]);
    assert_eq!(sa["imagePullSecrets"][0]["name"], "regcred");
    delete_ns(&ns);
}

#[test]
fn expired_ecr_token_is_refreshed_from_the_ecr_api() {
    let ns = scenario("ecr-expired", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let t = fix_ok(&ns, "deploy/checkout", &[]);
    // The lab's ECR-paired registry answers 401, the sandbox's 403 as ECR
    // does: either way the decoded expiry makes the cause certain.
    assert!(
        t.contains("cause: credentials-expired — the pull secret's credentials have expired (High confidence)"),
        "{t}"
    );
    assert!(
        t.contains("a fresh ECR token (GetAuthorizationToken)"),
        "{t}"
    );
    assert_eq!(ready(&ns, "checkout"), (5, 5));
    assert!(
        t.contains("ecr-token-refresh"),
        "follow-ups name the failing refresh job: {t}"
    );
    delete_ns(&ns);
}

#[test]
fn stale_secret_is_updated_in_every_namespace_with_one_confirmation() {
    let ns = scenario("stale-secret-many-namespaces", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let t = fix_ok(
        &ns,
        "deploy/checkout",
        &["--username", "pullfix", "--password-stdin"],
    );
    assert!(
        t.contains("update the same stale secret in 2 other namespace(s)"),
        "{t}"
    );
    // The siblings' deployments fail on the same secret: restarted and verified.
    assert!(
        t.contains(&format!("rollout restart deploy/checkout -n {ns}-b")),
        "{t}"
    );
    let good = json(&["get", "secret", "regcred", "-n", &ns])["data"].to_string();
    for sibling in [format!("{ns}-b"), format!("{ns}-c")] {
        assert_eq!(
            json(&["get", "secret", "regcred", "-n", &sibling])["data"].to_string(),
            good,
            "{sibling}"
        );
        assert_eq!(ready(&sibling, "checkout"), (1, 1), "{sibling}");
        delete_ns(&sibling);
    }
    delete_ns(&ns);
}

#[test]
fn a_secret_fixed_in_one_namespace_is_copied_to_the_others() {
    // No credential is given: the sibling someone already fixed provides it
    // (tested against the registry first).
    let ns = scenario("rotated-password-partial", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let dir = tempfile::tempdir().unwrap();
    let out = pullfix_in(
        &[
            "fix",
            "deploy/checkout",
            "-n",
            &ns,
            "--yes",
            "--timeout",
            "90s",
            "--backup-dir",
            dir.path().to_str().unwrap(),
        ],
        "",
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        !t.contains(&env("PULLFIX_LAB_REGISTRY_PASSWORD")),
        "leak: {t}"
    );
    for n in [ns.clone(), format!("{ns}-b"), format!("{ns}-c")] {
        assert_eq!(ready(&n, "checkout"), (2, 2), "{n}: {t}");
    }
    for sibling in [format!("{ns}-b"), format!("{ns}-c")] {
        delete_ns(&sibling);
    }
    delete_ns(&ns);
}

#[test]
fn dry_run_rehearses_every_scenario_and_writes_nothing() {
    let prefix = format!("rehearse{}", std::process::id() % 10000);
    let ids = [
        "wrong-tag",
        "missing-prefix",
        "no-pull-secrets",
        "secret-missing",
        "secret-opaque",
        "wrong-registry-key",
        "rotated-password",
        "stale-secret-many-namespaces",
        "sa-secret-only",
        "ecr-expired",
        "init-container",
        "ifnotpresent-masking",
    ];
    let mut namespaces = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let ns = format!("{prefix}-{i}");
        let out = Command::new(crate::lab::lab_bin())
            .args(["scenario", id, "-n", &ns, "--node", NODE])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        namespaces.push((ns, *id));
    }
    // What must not change: secrets and ServiceAccounts (resourceVersion),
    // Deployments (generation: the spec).
    let snapshot = |ns: &str| {
        let mut out = Vec::new();
        for kind in ["secrets", "serviceaccounts"] {
            for o in json(&["get", kind, "-n", ns])["items"].as_array().unwrap() {
                out.push(format!(
                    "{kind}/{}@{}",
                    o["metadata"]["name"], o["metadata"]["resourceVersion"]
                ));
            }
        }
        for o in json(&["get", "deployments", "-n", ns])["items"]
            .as_array()
            .unwrap()
        {
            out.push(format!(
                "deploy/{}@{}",
                o["metadata"]["name"], o["metadata"]["generation"]
            ));
        }
        out.sort();
        out
    };
    for (ns, id) in &namespaces {
        let container = if *id == "init-container" {
            "migrate"
        } else {
            "checkout"
        };
        wait_pull_error(ns, container, *id == "init-container");
        let before = snapshot(ns);
        let mut args = vec!["fix", "deploy/checkout", "-n", ns, "--dry-run", "--yes"];
        // Several tags are close to wrong-tag's: unattended, it is told which.
        let image = format!("{}/team/checkout:v2.1.0", env("PULLFIX_LAB_REGISTRY"));
        if *id == "wrong-tag" {
            args.extend(["--image", &image]);
        }
        if *id != "ecr-expired" {
            // ECR gets its fresh token from the (moto) ECR API instead.
            args.extend(["--username", "pullfix", "--password-stdin"]);
        }
        let out = pullfix_in(&args, &password(), &[]);
        let t = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{id}: a rehearsal leaves the failure in place:\n{t}"
        );
        assert!(
            t.contains("rehearsed: server-side dry-run succeeded"),
            "{id}: {t}"
        );
        assert!(t.contains("nothing was written"), "{id}: {t}");
        assert_eq!(
            snapshot(ns),
            before,
            "{id}: the rehearsal changed objects in {ns}"
        );
    }
    let writes = audit_writes(&prefix);
    assert!(
        !writes.is_empty(),
        "the rehearsal sent no dry-run request at all"
    );
    let real = non_dry_run(&writes);
    assert!(real.is_empty(), "--dry-run wrote to the cluster: {real:#?}");
    for (ns, id) in &namespaces {
        if *id == "stale-secret-many-namespaces" {
            delete_ns(&format!("{ns}-b"));
            delete_ns(&format!("{ns}-c"));
        }
        delete_ns(ns);
    }
}

#[test]
fn without_a_terminal_or_yes_nothing_is_written_and_fixes_are_pending() {
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let out = pullfix_in(
        &[
            "fix",
            "deploy/checkout",
            "-n",
            &ns,
            "--username",
            "pullfix",
            "--password-stdin",
        ],
        &password(),
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("fix pending"), "{t}");
    assert!(
        t.contains("Plan for deploy/checkout"),
        "the plan is printed: {t}"
    );
    assert!(
        non_dry_run(&audit_writes(&ns)).is_empty(),
        "wrote without confirmation"
    );
    delete_ns(&ns);
}

/// `fix deploy/checkout -n ns --yes` with the lab's user and the password
/// on stdin, 90 s for the rollout.
pub(crate) fn fix_checkout_args(ns: &str) -> [&str; 10] {
    [
        "fix",
        "deploy/checkout",
        "-n",
        ns,
        "--yes",
        "--username",
        "pullfix",
        "--password-stdin",
        "--timeout",
        "90s",
    ]
}

/// `fix --yes` with the right password while `hook` changes regcred just
/// before the write: the write loses the conflict (exit 1, said so).
fn fix_losing_a_conflict(ns: &str, hook: &str) -> String {
    let out = pullfix_in(
        &fix_checkout_args(ns),
        &password(),
        &[("PULLFIX_TEST_BEFORE_WRITE", hook)],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("conflict: the object changed since pullfix read it"),
        "{t}"
    );
    t
}

#[test]
fn a_concurrent_change_is_reported_not_overwritten() {
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let hook = format!(
        "kubectl annotate secret regcred -n {ns} touched-by=someone-else --overwrite >/dev/null"
    );
    let t = fix_losing_a_conflict(&ns, &hook);
    assert!(
        !t.contains("restore with:"),
        "a restore for a write that did not happen: {t}"
    );
    let s = json(&["get", "secret", "regcred", "-n", &ns]);
    assert_eq!(
        s["metadata"]["annotations"]["touched-by"], "someone-else",
        "the other change survives"
    );
    delete_ns(&ns);
}

#[test]
fn a_conflict_lost_to_a_concurrent_fix_is_diagnosed_again_not_escalated() {
    // Someone else writes the right password into regcred between pullfix's
    // read and its write: the write loses the conflict, nothing is
    // overwritten, and the fresh diagnosis says what is left (a restart),
    // without paging anyone for a failure that is not one.
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let hook = format!(
        "kubectl create secret docker-registry regcred -n {ns} --docker-server={} --docker-username={} --docker-password={} --dry-run=client -o yaml | kubectl replace -f - >/dev/null",
        env("PULLFIX_LAB_REGISTRY"),
        env("PULLFIX_LAB_REGISTRY_USER"),
        env("PULLFIX_LAB_REGISTRY_PASSWORD"),
    );
    let t = fix_losing_a_conflict(&ns, &hook);
    assert!(
        !t.contains("escalate:"),
        "a lost conflict paged someone: {t}"
    );
    assert!(
        t.contains(&format!(
            "still failing (credentials-rejected), but the pull secret's credential now works against the registry: the pods only need a restart — continue: kubectl pullfix fix deploy/checkout -n {ns}"
        )),
        "{t}"
    );
    // The continue command, as printed: a restart only (or nothing, when
    // the pods' back-off already ended and they pulled), and resolved.
    let out = pullfix_in(&["fix", "deploy/checkout", "-n", &ns, "--yes"], "", &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("1. rollout restart deploy/checkout")
            || t.contains("nothing was failing to pull its image"),
        "{t}"
    );
    assert!(!t.contains("update pull secret"), "{t}");
    delete_ns(&ns);
}

#[test]
fn managed_secrets_need_an_extra_confirmation() {
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    kubectl_ok(&[
        "label",
        "secret",
        "regcred",
        "-n",
        &ns,
        "app.kubernetes.io/managed-by=Helm",
    ]);
    kubectl_ok(&[
        "annotate",
        "secret",
        "regcred",
        "-n",
        &ns,
        "meta.helm.sh/release-name=checkout",
    ]);
    let out = pullfix_in(
        &[
            "fix",
            "deploy/checkout",
            "-n",
            &ns,
            "--yes",
            "--username",
            "pullfix",
            "--password-stdin",
        ],
        &password(),
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("managed by helm"), "{t}");
    assert!(t.contains("needs --allow-managed"), "{t}");
    fix_ok(
        &ns,
        "deploy/checkout",
        &[
            "--username",
            "pullfix",
            "--password-stdin",
            "--allow-managed",
        ],
    );
    delete_ns(&ns);
}

#[test]
fn missing_permissions_are_shown_not_attempted() {
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let reader = env("PULLFIX_LAB_KUBECONFIG_SECRETS_READER");
    let out = pullfix_in(
        &[
            "--kubeconfig",
            &reader,
            "fix",
            "deploy/checkout",
            "-n",
            &ns,
            "--yes",
            "--username",
            "pullfix",
            "--password-stdin",
        ],
        &password(),
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("not permitted: your identity lacks `update (secrets in namespace"),
        "{t}"
    );
    let real = audit_writes(&ns);
    let real = non_dry_run(&real);
    assert!(real.is_empty(), "{real:#?}");
    delete_ns(&ns);
}

#[test]
fn paused_deployments_are_not_restarted_and_reports_are_written() {
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    kubectl_ok(&["rollout", "pause", "deployment/checkout", "-n", &ns]);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("incident.md");
    let out = pullfix_in(
        &[
            "fix",
            "deploy/checkout",
            "-n",
            &ns,
            "--yes",
            "--username",
            "pullfix",
            "--password-stdin",
            "--report",
            report.to_str().unwrap(),
            "--backup-dir",
            dir.path().join("b").to_str().unwrap(),
        ],
        &password(),
        &[],
    );
    let t = text(&out);
    assert!(t.contains("is paused: resume it first"), "{t}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("deploy/checkout"), "{md}");
    assert!(
        md.contains("kubectl replace -f"),
        "the restore command is in the report: {md}"
    );
    assert!(
        !md.contains(&env("PULLFIX_LAB_REGISTRY_PASSWORD")),
        "password in the report"
    );
    delete_ns(&ns);
}

#[test]
fn outages_have_no_cluster_fix_and_escalate() {
    let ns = scenario("unreachable-refused", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let out = pullfix_in(&["fix", "deploy/checkout", "-n", &ns, "--yes"], "", &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("no fix pullfix can apply"), "{t}");
    assert!(t.contains("escalate: page Platform/Infra on-call"), "{t}");
    delete_ns(&ns);
}

#[test]
fn no_argument_flow_scans_picks_and_fixes() {
    let ns = scenario("wrong-tag", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let image = format!("{}/team/checkout:v2.1.0", env("PULLFIX_LAB_REGISTRY"));
    let out = pullfix_in(
        &[
            "-n",
            &ns,
            "--yes",
            "--image",
            &image,
            "--timeout",
            "90s",
            "--backup-dir",
            "/tmp/pullfix-test-backups",
        ],
        "",
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Step 0 — quick assessment"), "{t}");
    assert!(t.contains("resolved: every workload"), "{t}");
    // -o json carries the incident on stdout.
    let out = pullfix_in(&["fix", "-n", &ns, "-o", "json"], "", &[]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(v.is_null() || v["kind"] == "Incident", "{}", text(&out));
    delete_ns(&ns);
}

#[test]
fn credentials_from_a_docker_config_file() {
    use base64::Engine;
    let reg = env("PULLFIX_LAB_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("pullfix:{}", env("PULLFIX_LAB_REGISTRY_PASSWORD")));
    std::fs::write(
        &cfg,
        serde_json::json!({"auths": {reg.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let t = fix_ok(
        &ns,
        "deploy/checkout",
        &["--from-docker-config", cfg.to_str().unwrap()],
    );
    assert!(t.contains("credential from --from-docker-config"), "{t}");
    delete_ns(&ns);
}

#[test]
fn a_closed_pipe_exits_quietly() {
    let ns = scenario("wrong-tag", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    for format in ["json", "text"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
            .args(["diagnose", "-n", &ns, "--no-probe", "-o", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "-o {format}: {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "-o {format}: {err}"
        );
    }
    delete_ns(&ns);
}
