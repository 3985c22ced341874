//! The hostile-cluster suite (issue 16): the lab's `rotated-password`
//! scenario in a namespace named at the 63-character limit, surrounded by
//! everything a real API server accepts but no sane cluster holds. Next to
//! the failing `deploy/checkout` it builds: pull secrets of every wrong
//! shape and type (an `Opaque` `.dockerconfigjson` that is `[1,2]`, bytes
//! that are not UTF-8, JSON nested 5,000 deep; docker configs whose `auths`
//! is a list, a string per host, a non-base64 or colon-less `auth`, `null`,
//! or missing; a `dockercfg` whose host maps to a number; the credential
//! under the wrong key; a `basic-auth` secret; registry keys with escape
//! sequences, bidi overrides and unicode), a secret named at the
//! 253-character limit whose username clears the screen and forges a line,
//! a docker config of about 1 MB; a Deployment named at 240 characters
//! (its ReplicaSet reaches 251) that lists all of those secrets and carries
//! annotations full of control characters; a Deployment whose image holds
//! an accent and an OSC title sequence (`InvalidImageName`); an event with
//! `count: 10000` and a 20 KB message of escapes, C1 controls, carriage
//! returns, bidi overrides and forged lines; and 1,000 more events on the
//! long-named Deployment's pod.
//!
//! Every run goes through a dedicated identity (the ServiceAccount
//! `hostile-oncall`, bound to `cluster-admin`, with a kubeconfig of its own
//! token), so the audit log tells this test's requests from everyone
//! else's. For `scan`, `diagnose` in every output format and with `-v=6`,
//! `fix --dry-run --yes` on both Deployments and the real `fix --yes` of
//! `deploy/checkout`, it asserts: no panic (exit 0, 1 or 2, never 101, no
//! `panicked`), bounded wall time (the child is killed at a hard cap),
//! nothing raw on the terminal or in the report (no control or bidi
//! character but a line feed, no forged line), JSON and YAML that parse,
//! no secret value printed (the registry passwords, the hostile secrets'
//! passwords, the ServiceAccount's token), and from the audit log: a
//! rehearsal writes nothing for real, the real fix writes only the objects
//! its plan names in this namespace, and nothing reads or writes another
//! namespace (but `scan -A`'s cluster-wide reads).

use std::collections::{BTreeSet, HashSet};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::lab::{
    env, json as kjson, kubectl, kubectl_ok, lab_bin, unique_ns, wait_pull_error, wait_waiting,
};

const NODE: &str = "lab-k128-cd21";
const SA: &str = "hostile-oncall";
/// A username that clears the screen, turns the text red and forges a line.
const EVIL_USER: &str = "evil\u{1b}[2J\u{1b}[31mFAKE-OK\nline2";
const TITLE: &str = "\u{1b}]0;TITLE\u{7}";
/// One chunk of the hostile event message: an OSC title, a C1 CSI, a bare
/// carriage return, a bidi override and a newline starting a forged line.
const EVENT_CHUNK: &str =
    "\u{1b}]0;PWNED\u{7} \u{9b}31m bare\rCR \u{202e}RTL \u{200f}\u{2066}iso\nFORGED-LINE ";
/// The bound asserted on each run's wall time, and the hard cap at which
/// the child is killed (so the test cannot hang).
const BOUND: Duration = Duration::from_secs(60);
const FIX_BOUND: Duration = Duration::from_secs(120);
const HARD_CAP: Duration = Duration::from_secs(180);

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Deletes the namespace and the ClusterRoleBinding, even when an
/// assertion fails.
struct Cleanup {
    ns: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "clusterrolebinding", &self.ns, "--wait=false"]);
        let _ = kubectl(&["delete", "namespace", &self.ns, "--wait=false"]);
    }
}

/// No control or format character other than a line feed (C0, DEL, C1,
/// zero-width, line/paragraph separators, bidi embeddings, overrides and
/// isolates).
pub(crate) fn raw_control(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        c != '\n'
            && (c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'))
    })
}

fn assert_inert(what: &str, s: &str) {
    if let Some(c) = raw_control(s) {
        let at = s.chars().take_while(|&x| x != c).count();
        let near: String = s.chars().skip(at.saturating_sub(200)).take(400).collect();
        panic!("{what}: raw {c:?} reached the output, near: {near:?}");
    }
    for l in s.lines() {
        assert!(
            !l.starts_with("line2") && !l.starts_with("FORGED-LINE"),
            "{what}: a value's newline forged a line: {l:?}"
        );
    }
}

fn assert_no_secret(what: &str, s: &str, secrets: &[String]) {
    for (i, v) in secrets.iter().enumerate() {
        assert!(
            !s.contains(v.as_str()),
            "{what}: secret value #{i} (of {}) was printed",
            secrets.len()
        );
    }
}

/// One run of the plugin: what it printed, how it ended, how long it took
/// and what it asked of the API server.
struct Run {
    name: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    audit: Vec<Value>,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }
}

struct Harness {
    ns: String,
    kubeconfig: PathBuf,
    username: String,
    runs: Vec<(String, Option<i32>, Duration)>,
}

impl Harness {
    /// Runs the plugin as `hostile-oncall` with `input` on stdin; kills it
    /// at the hard cap. The audit entries are this identity's, appended to
    /// the log while it ran (the lab's audit backend blocks each request
    /// until its entry is written).
    fn run(&mut self, name: &str, args: &[&str], input: &str) -> Run {
        let log = env("PULLFIX_LAB_AUDIT_LOG");
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"));
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PULLFIX_REGISTRY_HOSTS", env("PULLFIX_LAB_REGISTRY_HOSTS"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn kubectl-pullfix");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_string();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let err_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for kubectl-pullfix") {
                break s;
            }
            if started.elapsed() > HARD_CAP {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{name}: `kubectl pullfix {}` still ran after {HARD_CAP:?}: killed",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let took = started.elapsed();
        let _ = writer.join();
        let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
        let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
        let audit = self.audit_since(&log, offset);
        // For a look at what each run showed: PULLFIX_HOSTILE_DUMP=DIR.
        if let Ok(dump) = std::env::var("PULLFIX_HOSTILE_DUMP") {
            let base = Path::new(&dump).join(name.replace(['/', ' ', '<', '>'], "_"));
            let _ = std::fs::create_dir_all(&dump);
            let _ = std::fs::write(base.with_extension("out"), &stdout);
            let _ = std::fs::write(base.with_extension("err"), &stderr);
            let audit_text: Vec<String> = audit.iter().map(short).collect();
            let _ = std::fs::write(base.with_extension("audit"), audit_text.join("\n"));
        }
        self.runs.push((name.to_string(), status.code(), took));
        Run {
            name: name.to_string(),
            code: status.code(),
            stdout,
            stderr,
            took,
            audit,
        }
    }

    fn audit_since(&self, log: &str, offset: u64) -> Vec<Value> {
        let mut f = std::fs::File::open(log).expect("open the audit log");
        let mut buf = Vec::new();
        use std::io::Seek as _;
        f.seek(std::io::SeekFrom::Start(offset)).unwrap();
        f.read_to_end(&mut buf).unwrap();
        let mut seen = HashSet::new();
        String::from_utf8_lossy(&buf)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["user"]["username"] == self.username.as_str())
            .filter(|e| seen.insert(e["auditID"].as_str().unwrap_or_default().to_string()))
            .collect()
    }
}

fn is_write(e: &Value) -> bool {
    matches!(
        e["verb"].as_str(),
        Some("create" | "update" | "patch" | "delete" | "deletecollection")
    ) && !is_review(e)
}

/// Access reviews are `create` requests that store nothing: pullfix asks
/// the API server what it may do before it plans.
fn is_review(e: &Value) -> bool {
    e["objectRef"]["resource"]
        .as_str()
        .is_some_and(|r| r.ends_with("accessreviews") || r.ends_with("rulesreviews"))
}

fn short(e: &Value) -> String {
    format!(
        "{} {} ({})",
        e["verb"].as_str().unwrap_or("?"),
        e["requestURI"].as_str().unwrap_or("?"),
        e["responseStatus"]["code"]
    )
}

/// The checks every run gets.
fn check_run(r: &Run, bound: Duration, ns: &str, secrets: &[String]) {
    let all = r.all();
    assert!(
        matches!(r.code, Some(0..=2)),
        "{}: exit {:?} (101 is a panic):\n{}",
        r.name,
        r.code,
        all.chars().take(20_000).collect::<String>()
    );
    assert!(!all.contains("panicked"), "{}: {all}", r.name);
    assert!(
        r.took <= bound,
        "{}: took {:?}, more than {bound:?}",
        r.name,
        r.took
    );
    assert_inert(&format!("{} (stdout)", r.name), &r.stdout);
    assert_inert(&format!("{} (stderr)", r.name), &r.stderr);
    assert_no_secret(&r.name, &all, secrets);
    assert!(
        !r.audit.is_empty(),
        "{}: no request of {SA} in the audit log",
        r.name
    );
    // No namespaced write anywhere but here.
    for e in r.audit.iter().filter(|e| is_write(e)) {
        assert_eq!(
            e["objectRef"]["namespace"].as_str(),
            Some(ns),
            "{}: a write outside {ns}: {}",
            r.name,
            short(e)
        );
    }
}

/// Every namespaced request names this namespace; the rest are
/// cluster-scoped reads (nodes, API discovery, and the cluster-wide list of
/// pull secrets that `diagnose` compares the failing credential with: the
/// "same stale secret elsewhere" of docs/json-output.md's
/// `other_namespaces`) or access reviews, never a write.
fn assert_only_this_namespace(r: &Run, ns: &str) {
    for e in &r.audit {
        match e["objectRef"]["namespace"].as_str() {
            Some(n) => assert_eq!(n, ns, "{}: reached {n}: {}", r.name, short(e)),
            None => assert!(
                !is_write(e),
                "{}: a cluster-scoped write: {}",
                r.name,
                short(e)
            ),
        }
    }
}

fn assert_no_real_write(r: &Run) {
    let real: Vec<String> = crate::fix::non_dry_run(&r.audit)
        .into_iter()
        .filter(|e| is_write(e))
        .map(short)
        .collect();
    assert!(
        real.is_empty(),
        "{}: wrote without dryRun=All: {real:#?}",
        r.name
    );
}

/// The objects a fix's plan names (`Plan for …` then `  1. update pull
/// secret NS/NAME for …`, `  2. rollout restart deploy/NAME -n NS …`), as
/// `resource/name`.
fn plan_objects(stdout: &str, ns: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_plan = false;
    for line in stdout.lines() {
        if line.starts_with("Plan for ") {
            in_plan = true;
            continue;
        }
        let step = line
            .trim_start()
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        let Some((_, step)) = step.filter(|_| in_plan) else {
            in_plan = false;
            continue;
        };
        if let Some((_, rest)) = step.split_once(&format!("pull secret {ns}/")) {
            out.insert(format!(
                "secrets/{}",
                rest.split(' ').next().unwrap_or_default()
            ));
        }
        if let Some((_, rest)) = step.split_once("deploy/") {
            out.insert(format!(
                "deployments/{}",
                rest.split(' ').next().unwrap_or_default()
            ));
        }
    }
    out
}

fn assert_file_inert(what: &str, path: &Path, secrets: &[String]) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{what}: {} is not readable: {e}", path.display()));
    assert_inert(what, &text);
    assert_no_secret(what, &text, secrets);
    text
}

/// The names of the files in a backup directory carry no raw control
/// character, and every backup is private.
fn assert_backups_inert(what: &str, dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_inert(&format!("{what}: backup file name"), &name);
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{what}: {name} is not private");
    }
}

fn create(items: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let mut child = Command::new("kubectl")
        .args(["create", "--validate=false", "-o", "name", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl create");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(list.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "kubectl create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn secret(ns: &str, name: &str, kind: &str, data: &[(&str, Vec<u8>)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(b64(v))))
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": kind,
        "metadata": {"name": name, "namespace": ns}, "data": data})
}

fn docker_config(ns: &str, name: &str, config: &Value) -> Value {
    secret(
        ns,
        name,
        "kubernetes.io/dockerconfigjson",
        &[(".dockerconfigjson", config.to_string().into_bytes())],
    )
}

/// A Deployment with checkout's pod template (its node, its pull policy),
/// renamed, with its own labels, image, pull secrets and annotations.
fn deployment_like(
    template: &Value,
    ns: &str,
    name: &str,
    app: &str,
    image: &str,
    secrets: &[String],
    annotations: &Value,
) -> Value {
    let mut t = template.clone();
    t["metadata"] = json!({"labels": {"app": app}, "annotations": annotations});
    let mut c = t["spec"]["containers"][0].clone();
    c["name"] = json!(app);
    c["image"] = json!(image);
    t["spec"]["containers"] = json!([c]);
    t["spec"]["imagePullSecrets"] = json!(
        secrets
            .iter()
            .map(|s| json!({"name": s}))
            .collect::<Vec<_>>()
    );
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app},
            "annotations": annotations},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}}, "template": t}})
}

/// A name of exactly `len` characters: `prefix`, then a filler of
/// lowercase words, ending in a letter.
fn padded(prefix: &str, len: usize, sep: char) -> String {
    let filler = format!("{sep}overlong");
    let mut s = prefix.to_string();
    while s.len() < len {
        s.push_str(&filler);
    }
    s.truncate(len);
    while s.ends_with(['-', '.']) {
        s.pop();
        s.push('z');
    }
    s
}

#[test]
fn a_hostile_cluster_is_diagnosed_and_fixed_inertly_within_scope() {
    let t0 = Instant::now();
    let reg = env("PULLFIX_LAB_REGISTRY");
    let user = env("PULLFIX_LAB_REGISTRY_USER");
    let lab_password = env("PULLFIX_LAB_REGISTRY_PASSWORD");
    let nonce = unique_ns("n");

    // 1. The scenario, in a namespace at the 63-character limit.
    let ns = padded(&unique_ns("hostile"), 63, '-');
    assert_eq!(ns.len(), 63);
    let _cleanup = Cleanup { ns: ns.clone() };
    let out = Command::new(lab_bin())
        .args(["scenario", "rotated-password", "-n", &ns, "--node", NODE])
        .output()
        .expect("run pullfix-lab scenario");
    assert!(
        out.status.success(),
        "pullfix-lab scenario rotated-password -n {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 2. The dedicated identity.
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, token) = crate::lab::service_account_kubeconfig(&ns, SA, dir.path());
    kubectl_ok(&[
        "create",
        "clusterrolebinding",
        &ns,
        "--clusterrole=cluster-admin",
        &format!("--serviceaccount={ns}:{SA}"),
    ]);

    // The scenario's own stale password is a secret too.
    let regcred = kjson(&["get", "secret", "regcred", "-n", &ns]);
    let config: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(regcred["data"][".dockerconfigjson"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let stale = config["auths"][&reg]["password"]
        .as_str()
        .expect("regcred's password")
        .to_string();

    // 3. Hostile objects.
    let pw = |i: u32| format!("hostile-pw-{nonce}-{i}-never-printed");
    let cred =
        |u: &str, p: &str| json!({"username": u, "password": p, "auth": b64(format!("{u}:{p}"))});
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let long_secret = padded(&format!("hostile-{nonce}"), 253, '.');
    assert_eq!(long_secret.len(), 253);
    // About 1 MB of docker config (the API server's limit is 1 MiB per
    // secret): a username of 999,000 bytes, and no `auth`.
    let huge_user = format!("{EVIL_USER}{}", "u".repeat(999_000));
    let mut secrets = vec![
        secret(
            &ns,
            "opaque-array",
            "Opaque",
            &[(".dockerconfigjson", b"[1,2]".to_vec())],
        ),
        secret(
            &ns,
            "opaque-not-utf8",
            "Opaque",
            &[(
                ".dockerconfigjson",
                b"{\"auths\":{\"\xff\xfe\x00\x1b]0;T\x07\":\xc0\xaf}}".to_vec(),
            )],
        ),
        secret(
            &ns,
            "opaque-deep",
            "Opaque",
            &[(".dockerconfigjson", deep.into_bytes())],
        ),
        docker_config(&ns, "auths-list", &json!({"auths": []})),
        docker_config(&ns, "auths-string", &json!({"auths": {&reg: "str"}})),
        docker_config(
            &ns,
            "auth-not-base64",
            &json!({"auths": {&reg: {"auth": "!!notbase64"}}}),
        ),
        docker_config(
            &ns,
            "auth-no-colon",
            &json!({"auths": {&reg: {"auth": b64("nocolon")}}}),
        ),
        docker_config(&ns, "auths-null", &json!({"auths": null})),
        docker_config(&ns, "empty-config", &json!({})),
        secret(
            &ns,
            "dockercfg-number",
            "kubernetes.io/dockercfg",
            &[(".dockercfg", json!({&reg: 5}).to_string().into_bytes())],
        ),
        // The API server refuses a dockerconfigjson secret without its
        // `.dockerconfigjson` key: the closest it accepts is an empty docker
        // config with the credential under another key.
        secret(
            &ns,
            "wrong-key",
            "kubernetes.io/dockerconfigjson",
            &[
                (".dockerconfigjson", br#"{"auths":{}}"#.to_vec()),
                (
                    "config.json",
                    json!({"auths": {&reg: cred(&user, &pw(1))}})
                        .to_string()
                        .into_bytes(),
                ),
            ],
        ),
        secret(
            &ns,
            "basic-auth",
            "kubernetes.io/basic-auth",
            &[
                ("username", EVIL_USER.as_bytes().to_vec()),
                ("password", pw(2).into_bytes()),
            ],
        ),
        docker_config(
            &ns,
            "odd-keys",
            &json!({"auths": {
                TITLE: cred("u", &pw(3)),
                format!("\u{202e}{reg}"): cred("u", &pw(4)),
                format!("{reg}9{TITLE}"): cred("u", &pw(5)),
                "régistry.ünïcödé.example/路径": cred("ü\u{9b}31m", &pw(6)),
                "": cred("", &pw(7)),
            }}),
        ),
        docker_config(
            &ns,
            &long_secret,
            &json!({"auths": {&reg: cred(EVIL_USER, &pw(8))}}),
        ),
        docker_config(
            &ns,
            "huge",
            &json!({"auths": {&reg: {"username": huge_user, "password": pw(9)}}}),
        ),
    ];
    let secret_names: Vec<String> = secrets
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let never_printed: Vec<String> = [lab_password.clone(), stale, token.clone()]
        .into_iter()
        .chain((1..=9).map(pw))
        .collect();

    let checkout = kjson(&["get", "deployment", "checkout", "-n", &ns]);
    let template = &checkout["spec"]["template"];
    let image = template["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    let annotations = json!({
        "hostile.example/title": TITLE,
        "hostile.example/user": EVIL_USER,
        "hostile.example/c1": "c1\u{9b}31m\u{85}nel",
        "hostile.example/bidi": "rtl\u{202e}txt.exe\u{2066}\u{200f}",
        "hostile.example/cr": "over\rwrite\tTAB\u{7f}DEL",
        "hostile.example/unicode": "über ünïcödé 日本語 🙂 \u{feff}bom",
    });
    let long_name = padded("long", 240, '-');
    assert_eq!(long_name.len(), 240);
    let bad_image = format!("{reg}/shop/évil{TITLE}:v1");
    secrets.push(deployment_like(
        template,
        &ns,
        &long_name,
        "long",
        &image,
        &secret_names,
        &annotations,
    ));
    secrets.push(deployment_like(
        template,
        &ns,
        "badimage",
        "badimage",
        &bad_image,
        &[],
        &annotations,
    ));
    let started = Instant::now();
    create(secrets);
    let created_objects = started.elapsed();

    let (checkout_pod, _) = wait_pull_error(&ns, "checkout", false);
    let message = format!(
        "Failed to pull image \"{image}\": {}",
        EVENT_CHUNK.repeat(20_000 / EVENT_CHUNK.len() + 1)
    );
    assert!(message.len() > 20_000);
    let started = Instant::now();
    create(vec![
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("hostile-10000.{nonce}"), "namespace": ns},
            "involvedObject": {"kind": "Pod", "name": checkout_pod, "namespace": ns,
                "apiVersion": "v1", "fieldPath": "spec.containers{checkout}"},
            "reason": "Failed", "type": "Warning", "count": 10000, "message": message,
            "source": {"component": format!("kubelet{TITLE}\u{202e}"), "host": format!("{NODE}\nFORGED-LINE")},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-12-01T00:00:00Z",
        }),
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("hostile-reason.{nonce}"), "namespace": ns},
            "involvedObject": {"kind": "Pod", "name": checkout_pod, "namespace": ns},
            "reason": format!("Back{TITLE}Off\u{9b}2J\nFORGED-LINE"), "type": "Warn\u{1b}[31ming",
            "count": 10000, "message": EVENT_CHUNK,
            "source": {"component": "\u{202e}telebuk"},
        }),
    ]);
    let (long_pod, _) = wait_pull_error(&ns, "long", false);
    let events: Vec<Value> = (0..1000)
        .map(|i| {
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("hostile-{i}.{nonce}"), "namespace": ns},
                "involvedObject": {"kind": "Pod", "name": long_pod, "namespace": ns,
                    "apiVersion": "v1", "fieldPath": "spec.containers{long}"},
                "reason": if i % 2 == 0 { "Failed" } else { "BackOff" },
                "type": "Warning", "count": i + 1,
                "message": format!("Failed to pull image \"{image}\": attempt {i}{EVENT_CHUNK}"),
                "source": {"component": "kubelet"},
            })
        })
        .collect();
    create(events);
    let created_events = started.elapsed();
    wait_waiting(&ns, "badimage", "InvalidImageName", false);
    eprintln!(
        "hostile: objects created in {created_objects:?}, 1,002 events in {created_events:?}, set up in {:?}",
        t0.elapsed()
    );

    // 4. The runs.
    let mut h = Harness {
        ns: ns.clone(),
        kubeconfig,
        username: format!("system:serviceaccount:{ns}:{SA}"),
        runs: Vec::new(),
    };
    let ns = &h.ns.clone();
    let long_target = format!("deploy/{long_name}");

    let r = h.run("scan -n", &["scan", "-n", ns], "");
    check_run(&r, BOUND, ns, &never_printed);
    assert_only_this_namespace(&r, ns);
    assert_no_real_write(&r);

    let r = h.run("scan -A -o json", &["scan", "-A", "-o", "json"], "");
    check_run(&r, BOUND, ns, &never_printed);
    assert_no_real_write(&r);
    serde_json::from_str::<Value>(&r.stdout)
        .unwrap_or_else(|e| panic!("scan -A -o json: {e}:\n{}", r.all()));
    assert!(r.stdout.contains(ns.as_str()), "{}", r.all());

    let mut diagnosed = String::new();
    // Everything every run printed.
    let mut seen = String::new();
    for (name, extra) in [
        ("diagnose", vec![]),
        ("diagnose -o json", vec!["-o", "json"]),
        ("diagnose -o yaml", vec!["-o", "yaml"]),
        ("diagnose -o wide", vec!["-o", "wide"]),
        ("diagnose -v=6", vec!["-v=6"]),
    ] {
        let mut args = vec!["diagnose", "-n", ns];
        args.extend(extra);
        let r = h.run(name, &args, "");
        check_run(&r, BOUND, ns, &never_printed);
        assert_only_this_namespace(&r, ns);
        assert_no_real_write(&r);
        if name.ends_with("json") {
            serde_json::from_str::<Value>(&r.stdout)
                .unwrap_or_else(|e| panic!("{name}: {e}:\n{}", r.all()));
        }
        if name.ends_with("yaml") {
            serde_saphyr::from_str::<serde_json::Value>(&r.stdout)
                .unwrap_or_else(|e| panic!("{name}: {e}:\n{}", r.all()));
        }
        if name.ends_with("-v=6") {
            assert!(!r.stderr.is_empty(), "-v=6 logs on stderr");
        }
        if name == "diagnose" {
            diagnosed = r.all();
        }
        seen.push_str(&r.all());
    }
    // The hostile text did reach the tool, and is shown escaped.
    for shown in [
        r"évil\x1b]0;TITLE\x07:v1",
        r"\x1b]0;PWNED\x07 \u{9b}31m bare\rCR \u{202e}RTL",
        "(x10000)",
        "opaque-deep",
    ] {
        assert!(
            diagnosed.contains(shown),
            "diagnose does not show {shown:?}:\n{diagnosed}"
        );
    }

    let r = h.run(
        "diagnose deploy/<240>",
        &["diagnose", &long_target, "-n", ns],
        "",
    );
    check_run(&r, BOUND, ns, &never_printed);
    assert_only_this_namespace(&r, ns);
    assert_no_real_write(&r);

    let password = format!("{lab_password}\n");
    for (name, target) in [
        ("fix checkout --dry-run", "deploy/checkout"),
        ("fix deploy/<240> --dry-run", long_target.as_str()),
    ] {
        let report = dir.path().join(format!("dry-{}.md", h.runs.len()));
        let backups = dir.path().join(format!("dry-backups-{}", h.runs.len()));
        let r = h.run(
            name,
            &[
                "fix",
                target,
                "-n",
                ns,
                "--dry-run",
                "--yes",
                "--username",
                &user,
                "--password-stdin",
                "--report",
                report.to_str().unwrap(),
                "--backup-dir",
                backups.to_str().unwrap(),
            ],
            &password,
        );
        seen.push_str(&r.all());
        check_run(&r, BOUND, ns, &never_printed);
        assert_only_this_namespace(&r, ns);
        assert_no_real_write(&r);
        assert!(
            r.audit.iter().any(|e| is_write(e)
                && e["requestURI"]
                    .as_str()
                    .is_some_and(|u| u.contains("dryRun=All"))),
            "{name}: no server-side dry-run was sent:\n{}",
            r.all()
        );
        assert_file_inert(&format!("{name}: report"), &report, &never_printed);
        assert_backups_inert(name, &backups);
    }

    // The 253-character secret's username reached some run's output,
    // escaped: as text (`\x1b`), or in a JSON document (`\u001b`).
    let as_text = r"evil\x1b[2J\x1b[31mFAKE-OK\nline2";
    let as_json = r"evil\u001b[2J\u001b[31mFAKE-OK\nline2";
    assert!(
        seen.contains(as_text) || seen.contains(as_json),
        "no run shows the hostile username:\n{seen}"
    );

    // The real fix, of checkout only.
    let report = dir.path().join("fix.md");
    let backups = dir.path().join("fix-backups");
    // (The lab's user is `pullfix`, which the shared arguments name.)
    assert_eq!(user, "pullfix");
    let mut args = crate::fix::fix_checkout_args(ns).to_vec();
    args.extend([
        "--report",
        report.to_str().unwrap(),
        "--backup-dir",
        backups.to_str().unwrap(),
    ]);
    let r = h.run("fix checkout --yes", &args, &password);
    check_run(&r, FIX_BOUND, ns, &never_printed);
    assert_only_this_namespace(&r, ns);
    assert_eq!(r.code, Some(0), "the real fix:\n{}", r.all());
    let md = assert_file_inert("fix: report", &report, &never_printed);
    assert!(!md.is_empty(), "an empty report");
    assert_backups_inert("fix", &backups);
    let written: BTreeSet<String> = crate::fix::non_dry_run(&r.audit)
        .into_iter()
        .filter(|e| is_write(e))
        .map(|e| {
            format!(
                "{}/{}",
                e["objectRef"]["resource"].as_str().unwrap_or("?"),
                e["objectRef"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let planned = plan_objects(&r.stdout, ns);
    let expected: BTreeSet<String> = ["secrets/regcred", "deployments/checkout"]
        .map(String::from)
        .into();
    assert_eq!(planned, expected, "the plan:\n{}", r.all());
    assert!(
        !written.is_empty() && written.is_subset(&planned),
        "the real fix wrote {written:?}; its plan names {planned:?}:\n{}",
        r.all()
    );
    let d = kjson(&["get", "deployment", "checkout", "-n", ns]);
    assert_eq!(
        d["status"]["readyReplicas"], d["spec"]["replicas"],
        "checkout is ready after the fix"
    );
    // The hostile objects are untouched.
    for name in &secret_names {
        kubectl_ok(&["get", "secret", name, "-n", ns, "-o", "name"]);
    }
    kubectl_ok(&["get", "deployment", &long_name, "-n", ns, "-o", "name"]);

    eprintln!("hostile: wall time per run");
    for (name, code, took) in &h.runs {
        eprintln!("  {name:<28} exit {code:?}  {:>6.2}s", took.as_secs_f64());
    }
    eprintln!("hostile: whole test {:?}", t0.elapsed());
}
