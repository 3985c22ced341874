//! `kubectl pullfix sandbox`: practise the runbook on an embedded cluster.
//!
//! [`catalog`] pairs each lab scenario the sandbox can host with its success
//! condition ([`Goal`]); [`run`] starts the cluster ([`Cluster`]), loads
//! the scenario, then either runs the guided fix (the tool itself, as a
//! child process with the sandbox's environment, exactly what a user gets
//! in a second terminal), plays the training script first (`--train`), or
//! leaves the sandbox up for the user (`--shell`). At the end it checks the
//! goal against the cluster itself, not against the tool's own verdict.

use std::path::{Path, PathBuf};

/// `println!` that hands the write error back (a closed pipe then ends the
/// run quietly, as everywhere else in the tool) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::Client;
use serde_json::Value;

use crate::cluster::{Cluster, ClusterOptions, write_private};
use crate::scenarios::{self, LabEnv, Placement, Scenario};
use pullfix::registry::keyring::{Credential, dockerconfigjson};
use pullfix::render::Palette;

/// The namespace scenarios are loaded into unless `-n` names another
/// (siblings get `-b`, `-c`).
pub const NAMESPACE: &str = "shop";
/// The scenario `kubectl pullfix sandbox` runs when none is named: the
/// incident replay.
pub const DEFAULT_SCENARIO: &str = "ecr-expired";

/// What must hold at the end for a scenario to count as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// The workload is fully ready and no pod fails to pull, in the
    /// scenario's namespace and these sibling suffixes (`-b`).
    Ready { siblings: &'static [&'static str] },
    /// Nothing in the cluster can fix it: the right move is to diagnose it
    /// as `cause` and escalate, writing nothing.
    Escalate { cause: &'static str },
}

/// A lab scenario as the sandbox hosts it.
pub struct Practice {
    pub scenario: Scenario,
    pub goal: Goal,
    /// The new credential the registry team hands over (written to a docker
    /// config file the guided fix reads; never printed).
    pub handover: bool,
    /// Extra arguments for the guided fix with `--yes` (what a responder
    /// would have found out by then, e.g. the right image).
    pub auto_args: AutoArgs,
}

/// Arguments the guided fix gets with `--yes`, from the sandbox's registries.
type AutoArgs = fn(&LabEnv) -> Vec<String>;

fn none(_: &LabEnv) -> Vec<String> {
    Vec::new()
}

/// Every scenario the sandbox hosts, in the runbook's order. The lab's
/// `tls-unknown-ca` is missing: the sandbox's registries speak plain HTTP.
pub fn catalog() -> Vec<Practice> {
    let ready = Goal::Ready { siblings: &[] };
    let escalate = |cause| Goal::Escalate { cause };
    scenarios::all()
        .into_iter()
        .filter_map(|scenario| {
            let (goal, handover, auto_args): (Goal, bool, AutoArgs) = match scenario.id {
                "missing-prefix" | "sa-secret-only" | "ecr-expired" | "init-container"
                | "secret-undecodable" => (ready.clone(), false, none),
                // Three tags are close to the missing one: the guided fix
                // asks which; unattended, it is told (it never guesses).
                "wrong-tag" => (ready.clone(), false, |env| {
                    vec![
                        "--image".into(),
                        format!("{}/team/checkout:v2.1.0", env.registry),
                    ]
                }),
                "no-pull-secrets"
                | "secret-missing"
                | "secret-opaque"
                | "wrong-registry-key"
                | "rotated-password"
                | "ifnotpresent-masking" => (ready.clone(), true, none),
                "stale-secret-many-namespaces" => (
                    Goal::Ready {
                        siblings: &["-b", "-c"],
                    },
                    true,
                    none,
                ),
                "rotated-password-partial" => (
                    Goal::Ready {
                        siblings: &["-b", "-c"],
                    },
                    false,
                    none,
                ),
                "invalid-name" => (ready.clone(), false, |env| {
                    vec![
                        "--image".into(),
                        format!("{}/team/checkout:v2.1.0", env.registry),
                    ]
                }),
                "unreachable-dns" | "unreachable-refused" | "unreachable-timeout" => {
                    (escalate("registry-unreachable"), false, none)
                }
                "rate-limited" => (escalate("rate-limited"), false, none),
                "repo-not-found" => (escalate("repository-not-found"), false, none),
                "access-denied" => (escalate("access-denied"), false, none),
                "never-pull" => (escalate("never-pull"), false, none),
                "platform-mismatch" => (escalate("platform-mismatch"), false, none),
                _ => return None,
            };
            Some(Practice {
                scenario,
                goal,
                handover,
                auto_args,
            })
        })
        .collect()
}

/// Finds a sandbox scenario by id.
pub fn find(id: &str) -> anyhow::Result<Practice> {
    let mut all = catalog();
    let ids: Vec<&str> = all.iter().map(|p| p.scenario.id).collect();
    let ids = ids.join(", ");
    match all.iter().position(|p| p.scenario.id == id) {
        Some(i) => Ok(all.swap_remove(i)),
        None if id == "tls-unknown-ca" => anyhow::bail!(
            "scenario `tls-unknown-ca` needs TLS registries, which the sandbox does not have\nhelp: run it in the lab (scripts/lab up, then target/debug/pullfix-lab scenario tls-unknown-ca -n demo)"
        ),
        None => anyhow::bail!(
            "unknown scenario `{id}`\nhelp: `kubectl pullfix sandbox --list` shows them: {ids}"
        ),
    }
}

impl Practice {
    /// The namespaces the goal covers.
    pub fn namespaces(&self, ns: &str) -> Vec<String> {
        let mut out = vec![ns.to_string()];
        if let Goal::Ready { siblings } = &self.goal {
            out.extend(siblings.iter().map(|s| format!("{ns}{s}")));
        }
        out
    }

    /// The workload's name (`checkout` of `deploy/checkout`).
    pub fn workload(&self) -> &str {
        self.scenario
            .workload
            .split_once('/')
            .map(|(_, n)| n)
            .unwrap_or(self.scenario.workload)
    }

    /// One line stating the success condition.
    pub fn goal_text(&self, ns: &str) -> String {
        let w = self.workload();
        match &self.goal {
            Goal::Ready { siblings: [] } => {
                format!("deploy/{w} in {ns} fully ready, no pod in ImagePullBackOff")
            }
            Goal::Ready { .. } => format!(
                "deploy/{w} fully ready in {}, no pod in ImagePullBackOff",
                self.namespaces(ns).join(", ")
            ),
            Goal::Escalate { cause } => format!(
                "diagnosed as {cause} and escalated, with nothing written to the cluster (no in-cluster fix exists)"
            ),
        }
    }
}

/// How `kubectl pullfix sandbox` runs.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub scenario: Option<String>,
    /// Where the scenario goes (default [`NAMESPACE`]).
    pub namespace: Option<String>,
    pub list: bool,
    pub shell: bool,
    pub train: bool,
    pub yes: bool,
    pub dry_run: bool,
    /// Keep kubeconfigs, audit log and backups here (default: a temporary
    /// directory removed at exit).
    pub dir: Option<PathBuf>,
    /// With `--shell`: also write the `export` lines here.
    pub env_file: Option<PathBuf>,
    pub time_scale: f64,
    pub color: bool,
}

/// Runs `kubectl pullfix sandbox`; returns the exit code.
pub async fn run(opts: SandboxOptions) -> anyhow::Result<u8> {
    use std::io::Write as _;
    if opts.list {
        let mut out = std::io::stdout().lock();
        for p in catalog() {
            writeln!(out, "{}\t{}", p.scenario.id, p.scenario.story)?;
        }
        return Ok(pullfix::EXIT_OK);
    }
    let started = Instant::now();
    let practice = match (&opts.scenario, opts.shell) {
        (Some(id), _) => Some(find(id)?),
        (None, true) => None,
        (None, false) => Some(find(DEFAULT_SCENARIO)?),
    };
    let style = Palette::new(opts.color);
    say!(
        "{} starting an embedded cluster: API server, registries, ECR API and 9 simulated nodes",
        style.bold.apply_to("pullfix sandbox:")
    )?;

    let (dir, _temp) = match &opts.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempdir()?;
            (t.0.clone(), Some(t))
        }
    };
    let cluster = Cluster::start(ClusterOptions {
        dir: dir.clone(),
        time_scale: opts.time_scale,
    })
    .await?;
    let client = cluster.client().await?;
    say!(
        "  cluster up in {:.1} s at {} (kubeconfig {})",
        started.elapsed().as_secs_f64(),
        cluster.url(),
        cluster.kubeconfig.display()
    )?;

    let result = drive(&opts, practice.as_ref(), &cluster, &client, started, &style).await;
    cluster.shutdown().await;
    if opts.dir.is_none() && practice.is_some() {
        say!(
            "(the sandbox and its directory are gone; --dir DIR keeps the report, backups and audit log)"
        )?;
    }
    result
}

async fn drive(
    opts: &SandboxOptions,
    practice: Option<&Practice>,
    cluster: &Cluster,
    client: &Client,
    started: Instant,
    style: &Palette,
) -> anyhow::Result<u8> {
    let ns = opts.namespace.as_deref().unwrap_or(NAMESPACE);
    let mut handover = None;
    if let Some(p) = practice {
        let objects = p.scenario.objects(&cluster.env, ns, &Placement::default());
        scenarios::apply(client, &objects, ns)
            .await
            .with_context(|| format!("load scenario {}", p.scenario.id))?;
        if p.handover {
            handover = Some(write_handover(&cluster.dir, &cluster.env)?);
        }
        say!(
            "\n{} {}\n  {}\n  {} {}",
            style.bold.apply_to("Scenario"),
            p.scenario.id,
            p.scenario.story,
            style.bold.apply_to("Goal:"),
            p.goal_text(ns)
        )?;
        if let Some(h) = &handover {
            say!(
                "  The registry team has put the new credential in {} (a docker config file).",
                h.display()
            )?;
        }
        wait_for_symptom(client, p, ns).await;
        // The sibling namespaces that fail on the same credential too: a
        // diagnosis run at once must see them failing, as on a real
        // cluster where the failure predates the on-call.
        for other in
            crate::train::Facts::for_scenario(p.scenario.id, ns, &cluster.env).other_namespaces
        {
            wait_for_symptom(client, p, &other).await;
        }
    }

    if opts.shell {
        return shell(opts, practice, cluster, client, style, ns).await;
    }
    let Some(p) = practice else {
        return Ok(pullfix::EXIT_OK);
    };

    if opts.train {
        train(opts, p, cluster, ns)?;
    }

    say!(
        "\n{} the guided fix: kubectl pullfix -n {ns}{}{}{}{}\n",
        style.bold.apply_to("Running"),
        if opts.yes { " --yes" } else { "" },
        if opts.dry_run { " --dry-run" } else { "" },
        if handover.is_some() {
            " --from-docker-config registry-team-docker-config.json"
        } else {
            ""
        },
        if opts.yes {
            (p.auto_args)(&cluster.env)
                .iter()
                .map(|a| format!(" {a}"))
                .collect::<String>()
        } else {
            String::new()
        }
    )?;
    let fix_started = Instant::now();
    let status = guided_fix(opts, p, cluster, ns, handover.as_deref()).await?;
    let check = if opts.dry_run {
        rehearsal_check(&cluster.audit_log)
    } else {
        check_goal(client, cluster, p, ns).await?
    };
    say!(
        "\n{} {} ({:.1} s in all, {:.1} s fixing; the guided fix exited {})",
        match (check.met, opts.dry_run) {
            (true, false) => style.good.apply_to("resolved:"),
            (true, true) => style.good.apply_to("rehearsed:"),
            (false, false) => style.bad.apply_to("not resolved:"),
            (false, true) => style.bad.apply_to("the rehearsal wrote:"),
        },
        check.summary,
        started.elapsed().as_secs_f64(),
        fix_started.elapsed().as_secs_f64(),
        status
            .code()
            .map_or("by signal".to_string(), |c| c.to_string()),
    )?;
    Ok(if check.met {
        pullfix::EXIT_OK
    } else {
        pullfix::EXIT_FAILURES
    })
}

/// A fresh private (0700) directory under the system's temporary one.
fn tempdir() -> anyhow::Result<TempDir> {
    use std::os::unix::fs::DirBuilderExt as _;
    let base = std::env::temp_dir();
    for _ in 0..16 {
        use rand::Rng;
        let n: u32 = rand::rng().random();
        let dir = base.join(format!("pullfix-sandbox-{n:08x}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(TempDir(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("create a directory in {}", base.display()));
            }
        }
    }
    anyhow::bail!("could not create a sandbox directory in {}", base.display())
}

/// Removes the sandbox's temporary directory at exit.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The registry team's hand-over: a docker config file (0600) with the
/// current credential for the sandbox's registry.
fn write_handover(dir: &Path, env: &LabEnv) -> anyhow::Result<PathBuf> {
    let path = dir.join("registry-team-docker-config.json");
    let cred = Credential::new(env.user.clone(), env.password.clone());
    write_private(&path, &dockerconfigjson(&env.registry, &cred))?;
    Ok(path)
}

/// Waits (up to 20 s) until the scenario's failure shows: a pod of the
/// workload waiting with a pull error.
async fn wait_for_symptom(client: &Client, p: &Practice, ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(pods) = pods(client, ns).await
            && pods.iter().any(|pod| pull_error(pod).is_some())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(
        "scenario {}: no pull error showed within 20 s",
        p.scenario.id
    );
}

async fn pods(client: &Client, ns: &str) -> anyhow::Result<Vec<Value>> {
    pullfix::collect::list_all(
        client,
        &format!("/api/v1/namespaces/{ns}/pods"),
        &format!("pods in {ns}"),
    )
    .await
}

/// The pull-error reason a pod is waiting with, if any (the classifier's
/// list of pull-failure reasons).
pub fn pull_error(pod: &Value) -> Option<String> {
    let status = &pod["status"];
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| status[*k].as_array())
        .flatten()
        .filter_map(|c| c["state"]["waiting"]["reason"].as_str())
        .find(|r| pullfix::diagnose::classify::is_pull_failure_reason(r))
        .map(str::to_string)
}

/// The result of checking a scenario's goal.
#[derive(Debug, Clone)]
pub struct GoalCheck {
    pub met: bool,
    pub summary: String,
}

/// Checks the goal against the cluster and the audit log.
pub async fn check_goal(
    client: &Client,
    cluster: &Cluster,
    p: &Practice,
    ns: &str,
) -> anyhow::Result<GoalCheck> {
    let writes = tool_writes(&cluster.audit_log);
    match &p.goal {
        Goal::Ready { .. } => {
            let mut parts = Vec::new();
            let mut met = true;
            for n in p.namespaces(ns) {
                let (ready, desired) = deployment_ready(client, &n, p.workload()).await?;
                let failing = pods(client, &n)
                    .await?
                    .iter()
                    .filter(|pod| pull_error(pod).is_some())
                    .count();
                met &= desired > 0 && ready == desired && failing == 0;
                parts.push(if failing == 0 {
                    format!("{}: {ready}/{desired} ready in {n}", p.workload())
                } else {
                    format!(
                        "{}: {ready}/{desired} ready in {n}, {failing} pod(s) failing to pull",
                        p.workload()
                    )
                });
            }
            let tail = if met {
                format!(
                    ", no pod in ImagePullBackOff: resolved with {writes} change(s) by kubectl-pullfix"
                )
            } else {
                String::new()
            };
            Ok(GoalCheck {
                met,
                summary: format!("{}{tail}", parts.join("; ")),
            })
        }
        Goal::Escalate { cause } => {
            let found = diagnosed_cause(client, ns).await;
            let met = found == Some(*cause) && writes == 0;
            Ok(GoalCheck {
                met,
                summary: format!(
                    "diagnosed as {} (expected {cause}), {writes} change(s) written by kubectl-pullfix",
                    found.unwrap_or("nothing")
                ),
            })
        }
    }
}

async fn deployment_ready(client: &Client, ns: &str, name: &str) -> anyhow::Result<(i64, i64)> {
    let what = format!("deployment {ns}/{name}");
    let d: Value = pullfix::collect::get_opt(
        client,
        &format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
        &what,
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("{what} is gone: the scenario's workload was deleted"))?;
    Ok((
        d["status"]["readyReplicas"].as_i64().unwrap_or(0),
        d["spec"]["replicas"].as_i64().unwrap_or(1),
    ))
}

/// The cause the tool's classifier gives from the cluster's evidence alone
/// (no registry probes: the sandbox process has no registry environment).
async fn diagnosed_cause(client: &Client, ns: &str) -> Option<&'static str> {
    let scope = pullfix::collect::Scope::Namespace(ns.to_string());
    let options = pullfix::diagnose::run::Options {
        probe: false,
        probe_timeout: Duration::from_secs(1),
        registry_hosts: None,
        registry_ca: Vec::new(),
    };
    let report = pullfix::diagnose::run::run(
        client,
        &scope,
        &pullfix::diagnose::run::Target::All,
        &options,
    )
    .await
    .ok()?;
    report.findings.first().map(|f| f.cause.id())
}

/// With `--dry-run` the goal is that nothing was written: the audit log
/// shows the tool's dry-run requests and no real write.
pub fn rehearsal_check(audit_log: &Path) -> GoalCheck {
    let writes = tool_writes(audit_log);
    let rehearsed = tool_requests(audit_log, true);
    GoalCheck {
        met: writes == 0,
        summary: format!(
            "rehearsal: {rehearsed} server-side dry-run request(s) and {writes} real write(s) by kubectl-pullfix in the API server's audit log"
        ),
    }
}

/// Writes (not dry-run) by the tool, from the audit log.
pub fn tool_writes(audit_log: &Path) -> usize {
    tool_requests(audit_log, false)
}

/// One audit-log entry, as a write by the tool: `Some(dry_run)` for a
/// create, update, patch or delete by `kubectl-pullfix` that the API server
/// accepted (access reviews left out), `None` for anything else.
pub fn tool_write(e: &Value) -> Option<bool> {
    let write = e["userAgent"]
        .as_str()
        .is_some_and(|u| u.starts_with("kubectl-pullfix/"))
        && matches!(
            e["verb"].as_str(),
            Some("create" | "update" | "patch" | "delete")
        )
        && e["objectRef"]["resource"] != "selfsubjectaccessreviews"
        && e["responseStatus"]["code"]
            .as_u64()
            .is_some_and(|c| (200..300).contains(&c));
    write.then(|| {
        e["requestURI"]
            .as_str()
            .unwrap_or_default()
            .contains("dryRun=All")
    })
}

/// Successful create/update/patch/delete requests by the tool: the dry-run
/// ones (`dry_run`) or the real ones.
fn tool_requests(audit_log: &Path, dry_run: bool) -> usize {
    let Ok(text) = std::fs::read_to_string(audit_log) else {
        return 0;
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| tool_write(e) == Some(dry_run))
        .count()
}

/// Runs the guided fix as a child process with the sandbox's environment
/// (what a user gets in a second terminal), sharing this terminal.
async fn guided_fix(
    opts: &SandboxOptions,
    p: &Practice,
    cluster: &Cluster,
    ns: &str,
    handover: Option<&Path>,
) -> anyhow::Result<std::process::ExitStatus> {
    let exe = std::env::current_exe().context("find the kubectl-pullfix executable")?;
    let mut cmd = tokio::process::Command::new(exe);
    // Probes get the nodes' registry timeout (3 s), so the never-answering
    // registry costs seconds, not tens of seconds.
    cmd.args([
        "-n",
        ns,
        "--timeout",
        "60s",
        "--probe-timeout",
        "3s",
        "--backup-dir",
    ])
    .arg(cluster.dir.join("backups"))
    .arg("--report")
    .arg(cluster.dir.join("incident.md"));
    if opts.yes {
        cmd.arg("--yes");
        cmd.stdin(std::process::Stdio::null());
    }
    if opts.dry_run {
        cmd.arg("--dry-run");
    }
    if !opts.color {
        cmd.arg("--no-color");
    }
    if let Some(h) = handover {
        cmd.arg("--from-docker-config").arg(h);
    }
    if opts.yes {
        cmd.args((p.auto_args)(&cluster.env));
    }
    cmd.envs(cluster.exports().iter().map(|(k, v)| (k, v)));
    let mut child = cmd
        .spawn()
        .context("run the guided fix (kubectl-pullfix)")?;
    // Ctrl-C reaches the child too (same process group); wait for it to
    // stop, so the sandbox can shut down and remove its directory.
    let status = tokio::select! {
        s = child.wait() => s,
        _ = tokio::signal::ctrl_c() => child.wait().await,
    }
    .context("wait for the guided fix (kubectl-pullfix)")?;
    Ok(status)
}

fn train(opts: &SandboxOptions, p: &Practice, cluster: &Cluster, ns: &str) -> anyhow::Result<()> {
    use crate::train;
    let facts = train::Facts::for_scenario(p.scenario.id, ns, &cluster.env);
    let Some(script) = train::script(p.scenario.id, &facts) else {
        say!(
            "\n(no training script for {}; scripts exist for: {})",
            p.scenario.id,
            train::scenarios().join(", ")
        )?;
        return Ok(());
    };
    let auto = opts.yes || !std::io::IsTerminal::is_terminal(&std::io::stdin());
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    let mut show = |c: &train::Choice| real_output(c, cluster);
    let outcome = train::play(&script, &mut input, &mut out, auto, &mut show)
        .context("play the training script")?;
    say!("{}", train::damage_report(&script, &outcome))?;
    Ok(())
}

/// The true output of a read-only command against the sandbox, for the
/// training's consequences. Commands that could print a secret's contents
/// keep their scripted text; anything that fails or prints nothing too.
fn real_output(c: &crate::train::Choice, cluster: &Cluster) -> Option<String> {
    let a = c.action.as_str();
    let risky = a.contains("secret") || a.contains("base64") || a.contains("jsonpath");
    if !c.is_read_only() || risky || !a.starts_with("kubectl ") {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let path = match std::env::var_os("PATH") {
        Some(p) => {
            let mut v = vec![dir.to_path_buf()];
            v.extend(std::env::split_paths(&p));
            std::env::join_paths(v).ok()?
        }
        None => dir.as_os_str().to_owned(),
    };
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("timeout 20 {a}"))
        .envs(cluster.exports().iter().map(|(k, v)| (k, v)))
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    // `kubectl pullfix scan|diagnose` exit 1 when they find failures.
    let ok =
        out.status.success() || (a.starts_with("kubectl pullfix") && out.status.code() == Some(1));
    (ok && !text.is_empty()).then_some(text)
}

async fn shell(
    opts: &SandboxOptions,
    practice: Option<&Practice>,
    cluster: &Cluster,
    client: &Client,
    style: &Palette,
    ns: &str,
) -> anyhow::Result<u8> {
    let env_file = cluster.dir.join("sandbox.env");
    // They hold the registries' test passwords and the API tokens: 0600.
    write_private(&env_file, &cluster.export_lines())?;
    if let Some(f) = &opts.env_file {
        write_private(f, &cluster.export_lines())?;
    }
    say!(
        "\n{} the sandbox is up until Ctrl-C. In another terminal:\n\n  source {}\n  kubectl get pods -n {ns}\n  kubectl pullfix -n {ns}\n",
        style.bold.apply_to("Shell:"),
        env_file.display()
    )?;
    if !on_path("kubectl") {
        say!(
            "  note: kubectl is not on PATH here; install it (apt-get install kubernetes-client, or see https://kubernetes.io/docs/tasks/tools/) to use the sandbox from a terminal\n"
        )?;
    }
    pullfix::shutdown_signal().await;
    let Some(p) = practice else {
        say!("sandbox stopped")?;
        return Ok(pullfix::EXIT_OK);
    };
    let check = check_goal(client, cluster, p, ns).await?;
    say!(
        "{} {}",
        if check.met {
            style.good.apply_to("resolved:")
        } else {
            style.bad.apply_to("not resolved:")
        },
        check.summary
    )?;
    Ok(if check.met {
        pullfix::EXIT_OK
    } else {
        pullfix::EXIT_FAILURES
    })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_s_scenarios_are_all_hosted() {
        for id in [
            "ecr-expired",
            "rotated-password-partial",
            "stale-secret-many-namespaces",
            "missing-prefix",
            "wrong-tag",
            "sa-secret-only",
            "secret-opaque",
            "rate-limited",
            "unreachable-refused",
        ] {
            find(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
        let err = find("tls-unknown-ca").err().unwrap().to_string();
        assert!(err.contains("TLS"), "{err}");
        let err = find("nope").err().unwrap().to_string();
        assert!(err.contains("--list"), "{err}");
    }

    #[test]
    fn every_hosted_scenario_states_a_goal() {
        let all = catalog();
        assert!(all.len() >= 20, "{}", all.len());
        for p in &all {
            let text = p.goal_text("shop");
            assert!(!text.is_empty());
            assert!(
                !p.scenario.workload.is_empty() && p.workload() != p.scenario.workload,
                "{}",
                p.scenario.id
            );
        }
        let partial = find("rotated-password-partial").unwrap();
        assert_eq!(partial.namespaces("shop"), ["shop", "shop-b", "shop-c"]);
        assert!(partial.goal_text("shop").contains("shop-c"));
    }

    #[test]
    fn docs_list_every_hosted_scenario() {
        let docs = include_str!("../../../docs/sandbox.md");
        for p in catalog() {
            assert!(
                docs.contains(&format!("| `{}` |", p.scenario.id)),
                "docs/sandbox.md does not list {}",
                p.scenario.id
            );
        }
    }

    #[test]
    fn pull_errors_are_read_from_init_and_app_containers() {
        let pod = serde_json::json!({"status": {"initContainerStatuses": [
            {"state": {"waiting": {"reason": "ImagePullBackOff"}}}],
            "containerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}]}});
        assert_eq!(pull_error(&pod).as_deref(), Some("ImagePullBackOff"));
        let ok = serde_json::json!({"status": {"containerStatuses": [{"state": {"running": {}}}]}});
        assert_eq!(pull_error(&ok), None);
    }

    #[test]
    fn tool_writes_count_only_real_successful_writes_by_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let line = |ua: &str, verb: &str, uri: &str, code: u16| {
            serde_json::json!({"userAgent": ua, "verb": verb, "requestURI": uri,
                "objectRef": {"resource": "secrets"}, "responseStatus": {"code": code}})
            .to_string()
        };
        let text = [
            line(
                "kubectl-pullfix/0.1.0",
                "patch",
                "/api/v1/namespaces/shop/secrets/regcred",
                200,
            ),
            line(
                "kubectl-pullfix/0.1.0",
                "patch",
                "/api/v1/namespaces/shop/secrets/regcred?dryRun=All",
                200,
            ),
            line(
                "kubectl-pullfix/0.1.0",
                "get",
                "/api/v1/namespaces/shop/secrets/regcred",
                200,
            ),
            line(
                "kubectl-pullfix/0.1.0",
                "patch",
                "/apis/apps/v1/namespaces/shop/deployments/x",
                409,
            ),
            line(
                "kubectl-pullfix-lab/0.1.0",
                "create",
                "/api/v1/namespaces/shop/secrets",
                201,
            ),
        ]
        .join("\n");
        std::fs::write(&log, text).unwrap();
        assert_eq!(tool_writes(&log), 1);
        assert_eq!(tool_requests(&log, true), 1);
        let check = rehearsal_check(&log);
        assert!(
            !check.met,
            "a real write fails the rehearsal: {}",
            check.summary
        );
        assert_eq!(tool_writes(&dir.path().join("missing")), 0);
    }
}
