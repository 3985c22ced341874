//! Training mode (`kubectl pullfix sandbox SCENARIO --train`): a scenario
//! told as an incident replay. The alert and the pressure first; then, round
//! by round, the situation and four moves a responder might make. A wrong
//! move shows what it would really show and costs minutes; the right one
//! moves the incident on and reveals what the others would have shown. A
//! damage report closes it: time taken against the optimal path, the wrong
//! turns, the lesson.
//!
//! The guided fix (`kubectl pullfix`) is the reference path: the last
//! round's right move is what the tool does (or what its summary sends you
//! to do next), and the report points at it.
//!
//! Scripts are pure text built from [`Facts`], so the namespaces, hosts and
//! replicas match the sandbox; they never contain a credential (commands
//! that need one read it from a variable or a file).

use std::io::{BufRead, Write};

use crate::registry::RATE_LIMIT_MESSAGE;
use crate::scenarios::{ECR_HOST, LabEnv, REFUSED_HOST};

/// One scenario as an incident replay.
#[derive(Debug, Clone)]
pub struct Script {
    pub scenario: &'static str,
    /// What pages you.
    pub alert: String,
    /// What makes it hard to think.
    pub pressure: String,
    pub rounds: Vec<Round>,
    pub lesson: String,
}

/// One decision point.
#[derive(Debug, Clone)]
pub struct Round {
    pub situation: String,
    /// Four choices, keys `A`-`D`, exactly one `best`.
    pub choices: Vec<Choice>,
}

/// One move and what it leads to.
#[derive(Debug, Clone)]
pub struct Choice {
    pub key: char,
    /// What the responder does, usually a command.
    pub action: String,
    /// What it shows: output lines, then lines starting with `→ ` that say
    /// what it means.
    pub consequence: String,
    /// Minutes it costs.
    pub minutes: u32,
    pub best: bool,
}

/// Marks the explanatory lines of a consequence.
const NOTE: &str = "→ ";

impl Choice {
    /// The output part of the consequence (what the command prints).
    pub fn output(&self) -> String {
        self.consequence
            .lines()
            .filter(|l| !l.starts_with(NOTE))
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string()
    }

    /// The explanation part of the consequence.
    pub fn note(&self) -> String {
        self.consequence
            .lines()
            .filter_map(|l| l.strip_prefix(NOTE))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether the action is a command that only reads (safe to run for
    /// real against the sandbox to show its true output).
    pub fn is_read_only(&self) -> bool {
        let a = self.action.as_str();
        let reads = [
            "kubectl get ",
            "kubectl describe ",
            "kubectl logs ",
            "kubectl pullfix diagnose ",
            "kubectl pullfix scan",
            "curl ",
            "aws ecr describe-images ",
        ]
        .iter()
        .any(|p| a.starts_with(p));
        let writes = [
            " apply ",
            " create ",
            " delete ",
            " patch ",
            " set ",
            " edit ",
            " rollout ",
            "&&",
        ]
        .iter()
        .any(|w| a.contains(w));
        reads && !writes
    }
}

/// What the scripts need to know about the sandbox, so their texts match
/// it. No credential is ever part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub namespace: String,
    /// The Deployment's name (and its container's).
    pub workload: String,
    /// The failing image, as written in the pod spec.
    pub image: String,
    /// The registry host the team's images come from.
    pub registry: String,
    /// The registry user in the pull secret (a name, not a secret).
    pub registry_user: String,
    /// The repository in that registry (`team/checkout`).
    pub repository: String,
    /// The tag that should run.
    pub good_tag: String,
    /// The repository's tags.
    pub tags: Vec<String>,
    pub replicas: u32,
    /// The pull secret's name.
    pub secret: String,
    /// The ServiceAccount the pods run as.
    pub service_account: String,
    /// Other namespaces holding the same stale secret.
    pub other_namespaces: Vec<String>,
    /// A sibling namespace whose copy of the secret was already fixed by
    /// hand (it holds the working credential).
    pub fixed_sibling: Option<String>,
    /// A node the pods are scheduled on.
    pub node: String,
    /// The CronJob that refreshes the ECR token.
    pub cronjob: String,
    pub cronjob_schedule: String,
    /// Age of the ECR token in the pull secret (ECR tokens last 12 h).
    pub token_age_hours: u32,
    /// How long the refresh CronJob has been failing.
    pub refresh_failing_hours: u32,
    /// The address an unreachable registry's name resolves to.
    pub unreachable_ip: String,
}

impl Facts {
    /// The facts of a lab scenario (see `src/lab/scenarios.rs`) loaded into
    /// `namespace`, with the sandbox's registries.
    pub fn for_scenario(scenario: &str, namespace: &str, env: &LabEnv) -> Facts {
        let mut f = Facts {
            namespace: namespace.to_string(),
            workload: "checkout".into(),
            image: format!("{}/team/checkout:v2.1.0", env.registry),
            registry: env.registry.clone(),
            registry_user: env.user.clone(),
            repository: "team/checkout".into(),
            good_tag: "v2.1.0".into(),
            tags: ["latest", "v2.0.3", "v2.1.0", "v2.1.1"]
                .map(String::from)
                .to_vec(),
            replicas: 1,
            secret: "regcred".into(),
            service_account: "default".into(),
            other_namespaces: Vec::new(),
            fixed_sibling: None,
            node: "lab-k133-cd21".into(),
            cronjob: "ecr-token-refresh".into(),
            cronjob_schedule: "0 */10 * * *".into(),
            token_age_hours: 14,
            refresh_failing_hours: 6,
            unreachable_ip: "10.0.40.12".into(),
        };
        match scenario {
            "ecr-expired" => {
                f.registry = ECR_HOST.into();
                f.registry_user = "AWS".into();
                f.image = format!("{ECR_HOST}/team/checkout:v2.1.0");
                f.replicas = 5;
            }
            "stale-secret-many-namespaces" => {
                f.other_namespaces = vec![format!("{namespace}-b"), format!("{namespace}-c")];
            }
            "rotated-password-partial" => {
                f.other_namespaces = vec![format!("{namespace}-c")];
                f.fixed_sibling = Some(format!("{namespace}-b"));
                f.replicas = 2;
            }
            "rotated-password" => f.replicas = 2,
            "missing-prefix" => {
                f.image = "team/checkout:v2.1.0".into();
                f.replicas = 2;
            }
            "wrong-tag" => {
                f.image = format!("{}/team/checkout:v2.1.9", env.registry);
                f.replicas = 2;
            }
            "sa-secret-only" => f.service_account = "checkout".into(),
            "rate-limited" => {
                f.workload = "web".into();
                f.image = "nginx:1.25".into();
                f.repository = "library/nginx".into();
                f.good_tag = "1.25".into();
                f.replicas = 2;
            }
            "unreachable-refused" => {
                f.registry = REFUSED_HOST.into();
                f.image = format!("{REFUSED_HOST}/team/checkout:v2.1.0");
            }
            _ => {}
        }
        f
    }

    /// The image's registry host (`docker.io` when the reference has none).
    fn host(&self) -> String {
        match self.image.split_once('/') {
            Some((first, _))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                first.to_string()
            }
            _ => "docker.io".into(),
        }
    }

    /// The image as the runtime names it (`docker.io/library/nginx:1.25`).
    fn full_image(&self) -> String {
        if self.host() != "docker.io" {
            return self.image.clone();
        }
        if self.image.contains('/') {
            format!("docker.io/{}", self.image)
        } else {
            format!("docker.io/library/{}", self.image)
        }
    }

    /// `repository` and `tag` of the failing image, without the host.
    fn path_and_tag(&self) -> (String, String) {
        let full = self.full_image();
        let rest = full.split_once('/').map_or(full.as_str(), |(_, r)| r);
        match rest.rsplit_once(':') {
            Some((p, t)) => (p.to_string(), t.to_string()),
            None => (rest.to_string(), "latest".into()),
        }
    }

    /// The manifest URL the runtime asks for.
    fn manifest_url(&self) -> String {
        let host = match self.host().as_str() {
            "docker.io" => "registry-1.docker.io".to_string(),
            h => h.to_string(),
        };
        let (path, tag) = self.path_and_tag();
        format!("{}://{host}/v2/{path}/manifests/{tag}", scheme(&host))
    }

    fn good_image(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.good_tag)
    }

    fn deploy(&self) -> String {
        format!("deployment/{}", self.workload)
    }

    fn ns(&self) -> &str {
        &self.namespace
    }

    fn pods(&self) -> Vec<String> {
        const SUFFIX: [&str; 5] = ["x2k9q", "b7mtd", "p4wzn", "r8fjc", "l5vqh"];
        (0..self.replicas.clamp(1, 5) as usize)
            .map(|i| format!("{}-6f8d9c7b5d-{}", self.workload, SUFFIX[i]))
            .collect()
    }

    fn region(&self) -> String {
        self.registry
            .split('.')
            .nth(3)
            .unwrap_or("us-east-1")
            .to_string()
    }
}

/// The sandbox's registries speak plain HTTP on loopback.
fn scheme(host: &str) -> &'static str {
    if host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]") {
        "http"
    } else {
        "https"
    }
}

/// Scenarios that have a script, in the runbook's order.
pub fn scenarios() -> &'static [&'static str] {
    &[
        "ecr-expired",
        "stale-secret-many-namespaces",
        "rotated-password-partial",
        "rotated-password",
        "missing-prefix",
        "wrong-tag",
        "sa-secret-only",
        "no-pull-secrets",
        "secret-opaque",
        "rate-limited",
        "unreachable-refused",
    ]
}

/// The script of a scenario; `None` for scenarios without one.
pub fn script(scenario: &str, facts: &Facts) -> Option<Script> {
    let s = match scenario {
        "ecr-expired" => ecr_expired(facts),
        "stale-secret-many-namespaces" => stale_secret(facts),
        "rotated-password-partial" => rotated_password_partial(facts),
        "rotated-password" => rotated_password(facts),
        "missing-prefix" => missing_prefix(facts),
        "wrong-tag" => wrong_tag(facts),
        "sa-secret-only" => sa_secret_only(facts),
        "no-pull-secrets" => no_pull_secrets(facts),
        "secret-opaque" => secret_opaque(facts),
        "rate-limited" => rate_limited(facts),
        "unreachable-refused" => unreachable_refused(facts),
        _ => return None,
    };
    Some(s)
}

// ---------------------------------------------------------------------------
// Building blocks: realistic output.

/// A consequence: what the command prints, then what it means.
fn shows(output: impl AsRef<str>, note: &str) -> String {
    let output = output.as_ref().trim_end();
    if output.is_empty() {
        format!("{NOTE}{note}")
    } else {
        format!("{output}\n{NOTE}{note}")
    }
}

fn round(situation: String, best: char, choices: [(String, String, u32); 4]) -> Round {
    Round {
        situation,
        choices: choices
            .into_iter()
            .zip(['A', 'B', 'C', 'D'])
            .map(|((action, consequence, minutes), key)| Choice {
                key,
                action,
                consequence,
                minutes,
                best: key == best,
            })
            .collect(),
    }
}

fn pods_table(f: &Facts, status: &str, age: &str) -> String {
    let mut t =
        String::from("NAME                           READY   STATUS             RESTARTS   AGE");
    for p in f.pods() {
        t.push_str(&format!("\n{p:<30} 0/1     {status:<18} 0          {age}"));
    }
    t
}

/// `kubectl describe pod` events of a pod that keeps failing to pull.
fn pull_events(f: &Facts, error: &str) -> String {
    let pod = &f.pods()[0];
    let image = &f.image;
    format!(
        "Name:             {pod}
Namespace:        {ns}
Node:             {node}
Status:           Pending
Containers:
  {w}:
    Image:          {image}
    State:          Waiting
      Reason:       ImagePullBackOff
Events:
  Type     Reason     Age                  From               Message
  ----     ------     ----                 ----               -------
  Normal   Scheduled  6m                   default-scheduler  Successfully assigned {ns}/{pod} to {node}
  Normal   Pulling    3m9s (x5 over 6m)    kubelet            Pulling image \"{image}\"
  Warning  Failed     3m9s (x5 over 6m)    kubelet            Failed to pull image \"{image}\": {error}
  Warning  Failed     3m9s (x5 over 6m)    kubelet            Error: ErrImagePull
  Normal   BackOff    41s (x22 over 6m)    kubelet            Back-off pulling image \"{image}\"
  Warning  Failed     41s (x22 over 6m)    kubelet            Error: ImagePullBackOff",
        ns = f.ns(),
        node = f.node,
        w = f.workload,
    )
}

fn describe_action(f: &Facts) -> String {
    format!(
        "kubectl describe pod -n {} -l app={} | tail -n 20",
        f.ns(),
        f.workload
    )
}

/// containerd's wording for a failed resolve.
fn containerd_error(f: &Facts, tail: &str) -> String {
    let full = f.full_image();
    format!(
        "failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": {tail}"
    )
}

fn no_credentials_error(f: &Facts) -> String {
    containerd_error(
        f,
        "pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials",
    )
}

fn restart_choice(f: &Facts, error_word: &str, why: &str, minutes: u32) -> (String, String, u32) {
    (
        format!("kubectl rollout restart {} -n {}", f.deploy(), f.ns()),
        shows(
            format!(
                "deployment.apps/{w} restarted\n\n$ kubectl get pods -n {ns} -l app={w}\n{}",
                pods_table(f, error_word, "31s"),
                w = f.workload,
                ns = f.ns()
            ),
            why,
        ),
        minutes,
    )
}

fn node_disk_choice(f: &Facts, minutes: u32) -> (String, String, u32) {
    (
        format!(
            "kubectl debug node/{} -it --image=busybox:1.36 -- df -h /host/var/lib/containerd",
            f.node
        ),
        shows(
            format!(
                "Creating debugging pod node-debugger-{node}-q7w2x with container debugger on node {node}.
Filesystem                Size      Used Available Use% Mounted on
/dev/nvme0n1p1           80.0G     29.1G     50.9G  36% /host/var/lib/containerd",
                node = f.node
            ),
            "The node has room. A full disk shows as DiskPressure, evictions or `no space left on device` while unpacking, never as a refused pull. The events already said what the registry answered.",
        ),
        minutes,
    )
}

fn secret_age_table(rows: &[(&str, &str, &str)]) -> String {
    let mut t =
        String::from("NAMESPACE       NAME      TYPE                             DATA   AGE");
    for (ns, ty, age) in rows {
        t.push_str(&format!("\n{ns:<15} regcred   {ty:<32} 1      {age}"));
    }
    t
}

// ---------------------------------------------------------------------------
// The scripts.

fn ecr_expired(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let host = f.host();
    let region = f.region();
    let secret = &f.secret;
    let cj = &f.cronjob;
    let age = f.token_age_hours;
    let expired_ago = age.saturating_sub(12).max(1);
    let failing = f.refresh_failing_hours;
    let forbidden = containerd_error(
        f,
        &format!(
            "unexpected status from HEAD request to {}: 403 Forbidden",
            f.manifest_url()
        ),
    );
    let jobs = format!(
        "NAME                      TYPE                             DATA   AGE
secret/{secret}            kubernetes.io/dockerconfigjson   1      {age}h

NAME                              SCHEDULE       TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE
cronjob.batch/{cj}   {sched}   <none>     False     0        {failing}h              41d

NAME                            STATUS   COMPLETIONS   DURATION   AGE
job.batch/{cj}-1   Failed   0/1           14s        {failing}h
job.batch/{cj}-2   Failed   0/1           12s        {later}h",
        sched = f.cronjob_schedule,
        later = failing.saturating_sub(1).max(1),
    );
    let assume_role =
        "error: Unable to assume role: the security token included in the request is expired";
    Script {
        scenario: "ecr-expired",
        alert: format!(
            "P1 {ns}/deploy/{w}: 0/{r} replicas available 15 minutes after the deploy. Every new pod is in ImagePullBackOff and the deploy pipeline is blocked on the rollout.",
            r = f.replicas
        ),
        pressure: "The product launch goes live at 10:00. The release manager asks in the incident channel every five minutes whether to call it off.".into(),
        rounds: vec![
            round(
                format!(
                    "`kubectl get pods -n {ns}` shows all {r} {w} pods in ImagePullBackOff. The image lives in ECR ({host}); the pods pull with the secret {secret}. Nothing else in the cluster is failing.",
                    r = f.replicas
                ),
                'B',
                [
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "New pods, same failure: they pull with the same secret, holding the same credential. A restart helps only after the credential has changed.",
                        8,
                    ),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &forbidden),
                            "ECR refused the credential the node sent (403 on the manifest). The image was never fetched. On ECR, a 403 on a pull that worked yesterday points first at the token in the pull secret.",
                        ),
                        2,
                    ),
                    node_disk_choice(f, 6),
                    (
                        format!("kubectl rollout undo {} -n {ns}", f.deploy()),
                        shows(
                            format!("error: no rollout history found for deployment \"{w}\""),
                            "This is the first revision: there is nothing to roll back to. And any older revision pulls from the same ECR with the same secret.",
                        ),
                        4,
                    ),
                ],
            ),
            round(
                format!(
                    "The kubelet gets `403 Forbidden` from {host}. The pods reference {secret}, which a CronJob ({cj}) is supposed to refresh. You have AWS credentials on your laptop."
                ),
                'C',
                [
                    (
                        format!(
                            "aws ecr describe-images --repository-name {} --image-ids imageTag={} --region {region} --query 'imageDetails[].imageTags'",
                            f.repository, f.good_tag
                        ),
                        shows(
                            format!("[\n    [\n        \"{}\"\n    ]\n]", f.good_tag),
                            "The tag exists and your identity can see it. Good to know, but the pull never got as far as the image: the question is the token the node sends.",
                        ),
                        3,
                    ),
                    (
                        format!(
                            "aws ecr get-login-password --region {region} | docker login --username AWS --password-stdin {host}"
                        ),
                        shows(
                            "Login Succeeded",
                            "Your own AWS identity can log in. The nodes do not use it: they send the token stored in the pull secret.",
                        ),
                        4,
                    ),
                    (
                        format!("kubectl get secret,cronjob,job -n {ns}"),
                        shows(
                            jobs.clone(),
                            &format!(
                                "{secret} was last written {age} h ago; ECR tokens last 12 h, so it expired about {expired_ago} h ago. The CronJob that should have replaced it has been failing for {failing} h: both of its last Jobs failed."
                            ),
                        ),
                        2,
                    ),
                    (
                        format!("kubectl delete secret {secret} -n {ns}"),
                        shows(
                            format!(
                                "secret \"{secret}\" deleted\n\n$ kubectl get events -n {ns} --field-selector reason=FailedToRetrieveImagePullSecret\nLAST SEEN   TYPE      REASON                             OBJECT                  MESSAGE\n12s         Warning   FailedToRetrieveImagePullSecret    pod/{pod}   Unable to retrieve some image pull secrets ({secret}); attempting to pull the image may not succeed.",
                                pod = f.pods()[0]
                            ),
                            "Now the pods pull with no credential at all (`no basic auth credentials`), and the CronJob has nothing left to update if it ever runs. You made the error worse and lost the evidence of when the token was written.",
                        ),
                        10,
                    ),
                ],
            ),
            round(
                format!(
                    "{secret} holds an ECR token that expired about {expired_ago} h ago, and {cj} cannot refresh it. {r} pods are waiting on a working token.",
                    r = f.replicas
                ),
                'A',
                [
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns}"),
                        shows(
                            format!(
                                "cause: credentials-expired (high): the ECR token in {secret} expired {expired_ago}h ago (tokens last 12h)
step 1  update secret {ns}/{secret}: a fresh token from ECR (GetAuthorizationToken, your AWS identity)
        tested against {host}: {repo}:{tag} resolves; backup saved; applied
step 2  kubectl rollout restart {deploy} -n {ns}: applied
verify  {w}: {r}/{r} ready, no pod in ImagePullBackOff (58s)
follow-up: the new token expires in 12h; CronJob {ns}/{cj} failed its last 2 Jobs: fix it",
                                repo = f.repository,
                                tag = f.good_tag,
                                deploy = f.deploy(),
                                r = f.replicas
                            ),
                            "A token from your own identity, tested against the registry before it is written, then a restart so the pods pull now instead of at their next back-off. The deploy is unblocked; the summary names what is still broken.",
                        ),
                        4,
                    ),
                    (
                        format!("kubectl create job --from=cronjob/{cj} manual-refresh -n {ns}"),
                        shows(
                            format!(
                                "job.batch/manual-refresh created\n\n$ kubectl logs job/manual-refresh -n {ns}\n{assume_role}"
                            ),
                            "The refresh job fails exactly like its scheduled runs: its own AWS credentials are the broken part. Running it again cannot produce a token.",
                        ),
                        6,
                    ),
                    (
                        "Wait for the kubelet's next retry".into(),
                        shows(
                            "",
                            "The kubelet backs off up to 5 minutes between pulls and retries with whatever the secret holds at that moment, which is the same expired token. Nothing changes until the secret does, and the next scheduled refresh will fail too.",
                        ),
                        20,
                    ),
                    (
                        "Replace the token CronJob with the kubelet's ECR credential provider, now".into(),
                        shows(
                            "",
                            "The right destination, the wrong hour: it is a node configuration change (credential provider config on every kubelet, an IAM policy on the node role, a rolling replacement of the pool). The launch is blocked while you do it.",
                        ),
                        45,
                    ),
                ],
            ),
            round(
                format!(
                    "{w} is {r}/{r}. The token in {secret} is valid for 12 h, and nothing will replace it: both refresh Jobs failed. pullfix's summary sends you to the CronJob.",
                    r = f.replicas
                ),
                'D',
                [
                    (
                        format!("kubectl get cronjob {cj} -n {ns} -o wide"),
                        shows(
                            format!(
                                "NAME                SCHEDULE       TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE   CONTAINERS   IMAGES                 SELECTOR\n{cj}   {sched}   <none>     False     0        {failing}h              41d   refresh      team/worker:1.4.2      <none>",
                                sched = f.cronjob_schedule
                            ),
                            "It is scheduled and not suspended. That it runs was never the question: why it fails is.",
                        ),
                        3,
                    ),
                    (
                        format!(
                            "kubectl patch cronjob {cj} -n {ns} -p '{{\"spec\":{{\"schedule\":\"0 * * * *\"}}}}'"
                        ),
                        shows(
                            format!("cronjob.batch/{cj} patched"),
                            "Now it fails every hour instead of every ten: more failed Jobs, the same error, and a token that still expires in 12 h.",
                        ),
                        8,
                    ),
                    (
                        format!("kubectl delete cronjob {cj} -n {ns}"),
                        shows(
                            format!("cronjob.batch \"{cj}\" deleted"),
                            "Nothing refreshes the token any more. In 12 hours this page comes back, at night, with nobody holding the context you have now.",
                        ),
                        30,
                    ),
                    (
                        format!("kubectl logs job/{cj}-2 -n {ns}"),
                        shows(
                            assume_role,
                            &format!(
                                "The job's own AWS session has expired, so it cannot ask ECR for a token. Renew the credentials it runs with (or repair its role's trust), check with `kubectl create job --from=cronjob/{cj} refresh-check -n {ns}`, then plan the move to the kubelet's ECR credential provider so no stored token is needed."
                            ),
                        ),
                        10,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "An ECR token stored in a pull secret lives 12 hours. When ECR answers 403 to a pull that worked yesterday, look at the token's age before anything else. Get a fresh token from your own identity, test it, write it, restart (kubectl pullfix fix deploy/{w} -n {ns} does all four), then repair whatever should have refreshed it. Restarting, rolling back or waiting only sends the same stale token again."
        ),
    }
}

fn stale_secret(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let host = f.host();
    let secret = &f.secret;
    let others = f.other_namespaces.join(", ");
    let all_ns: Vec<&str> = std::iter::once(ns)
        .chain(f.other_namespaces.iter().map(String::as_str))
        .collect();
    let unauthorized = containerd_error(
        f,
        &format!(
            "unexpected status from HEAD request to {}: 401 Unauthorized",
            f.manifest_url()
        ),
    );
    let rows: Vec<(&str, &str, &str)> = all_ns
        .iter()
        .map(|n| (*n, "kubernetes.io/dockerconfigjson", "92d"))
        .collect();
    let deploys = {
        let mut t = String::from("NAMESPACE       NAME       READY   UP-TO-DATE   AVAILABLE   AGE");
        for n in &all_ns {
            t.push_str(&format!(
                "\n{n:<15} {w:<10} 0/1     1            0           21m"
            ));
        }
        t
    };
    Script {
        scenario: "stale-secret-many-namespaces",
        alert: format!(
            "P2 {ns}/deploy/{w}: 0/1 ready for 20 minutes, ErrImagePull on every new pod."
        ),
        pressure: "The registry team finished the quarterly password rotation an hour ago and announced that every cluster was updated. Two other teams are asking in the channel whether their deploys are next.".into(),
        rounds: vec![
            round(
                format!(
                    "The pod in {ns} cannot pull {image}. It references the pull secret {secret}. The registry is up: other clusters pull from it.",
                    image = f.image
                ),
                'C',
                [
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "The new pod pulls with the same secret and gets the same refusal. Restarts help only once the credential has changed.",
                        6,
                    ),
                    node_disk_choice(f, 6),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &unauthorized),
                            "401 on the manifest. containerd says `no basic auth credentials` when it has none, so here a credential was sent and refused. With a rotation an hour ago, the secret still holds the old password.",
                        ),
                        2,
                    ),
                    (
                        "Ask in #registry whether the registry is down".into(),
                        shows(
                            "",
                            "Ten minutes later: the registry is fine, the rotation finished at 09:00, and everybody else has the new password. You are no closer to where the old one lives.",
                        ),
                        10,
                    ),
                ],
            ),
            round(
                format!(
                    "The registry refuses the credential in {ns}/{secret}; the password changed an hour ago. {w} in {ns} is what paged, but who else pulls with that credential?"
                ),
                'A',
                [
                    (
                        "kubectl get secrets -A --field-selector type=kubernetes.io/dockerconfigjson".into(),
                        shows(
                            format!(
                                "{}\n\n$ kubectl get deployments -A -l app={w}\n{deploys}",
                                secret_age_table(&rows)
                            ),
                            &format!(
                                "The same 92-day-old {secret} sits in {ns} and in {others}, and their deployments are failing too: they simply have not paged yet. Fixing one namespace would leave the others broken."
                            ),
                        ),
                        3,
                    ),
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --docker-server={host} --docker-username={user} --docker-password=\"$NEW_PASSWORD\" --dry-run=client -o yaml | kubectl apply -f - && kubectl rollout restart {deploy} -n {ns}",
                            user = f.registry_user,
                            deploy = f.deploy()
                        ),
                        shows(
                            format!(
                                "secret/{secret} configured\ndeployment.apps/{w} restarted"
                            ),
                            &format!(
                                "{ns} recovers in a minute. Twenty minutes later {others} page with the same alert, and you start again with less time."
                            ),
                        ),
                        20,
                    ),
                    (
                        format!("kubectl delete secret {secret} -n {ns}"),
                        shows(
                            format!(
                                "secret \"{secret}\" deleted\n\n$ kubectl get events -n {ns} --field-selector reason=FailedToRetrieveImagePullSecret\nLAST SEEN   TYPE      REASON                             OBJECT                  MESSAGE\n9s          Warning   FailedToRetrieveImagePullSecret    pod/{pod}   Unable to retrieve some image pull secrets ({secret}); attempting to pull the image may not succeed.",
                                pod = f.pods()[0]
                            ),
                            "The 401 becomes `no basic auth credentials`: a worse error, and nothing fixed.",
                        ),
                        8,
                    ),
                    (
                        "Ask the registry team to roll the rotation back".into(),
                        shows(
                            "",
                            "Twenty-five minutes of discussion ending in no: the old password is out of policy the moment it has been rotated. The secrets still need updating.",
                        ),
                        25,
                    ),
                ],
            ),
            round(
                format!(
                    "{secret} is stale in {all}. The registry team has put the new credential in registry-team-docker-config.json (a docker config file).",
                    all = all_ns.join(", ")
                ),
                'B',
                [
                    (
                        format!(
                            "kubectl get secret {secret} -n {ns} -o yaml | kubectl apply -n {first} -f -",
                            first = f.other_namespaces.first().map_or(ns, String::as_str)
                        ),
                        shows(
                            format!(
                                "error: the namespace from the provided object \"{ns}\" does not match the namespace \"{first}\". You must pass '--namespace={ns}' to perform this operation.",
                                first = f.other_namespaces.first().map_or(ns, String::as_str)
                            ),
                            "A copied Secret carries its namespace, uid and resourceVersion. Copying by hand under pressure also copies whatever is wrong in the source: here, the old password.",
                        ),
                        5,
                    ),
                    (
                        format!(
                            "kubectl pullfix fix deploy/{w} -n {ns} --from-docker-config registry-team-docker-config.json"
                        ),
                        shows(
                            format!(
                                "cause: credentials-rejected (high): {host} answers 401 to {secret}'s credential
step 1  update secret {ns}/{secret} from registry-team-docker-config.json
        tested against {host}: {repo}:{tag} resolves; backup saved; applied
step 2  the same stale credential is in {others}: update them too? yes; backups saved; applied
step 3  rollout restart deployment/{w} in {all}: applied
verify  {w}: 1/1 ready in {all}, no pod in ImagePullBackOff",
                                repo = f.repository,
                                tag = f.good_tag,
                                all = all_ns.join(", ")
                            ),
                            "The new credential is tested before it is written, every namespace holding the old one is offered in one confirmation, and the restarts make the pods pull now.",
                        ),
                        5,
                    ),
                    (
                        "Update the three secrets by hand and wait for the pods to recover".into(),
                        shows(
                            "",
                            "They do recover: the kubelet reads the secret again at each retry. But a pod in back-off retries only every 5 minutes, so you wait up to that long per pod with nothing to watch. A restart would have pulled at once.",
                        ),
                        7,
                    ),
                    (
                        "kubectl rollout restart deployment -A".into(),
                        shows(
                            "deployment.apps/checkout restarted\ndeployment.apps/coredns restarted\ndeployment.apps/payments restarted\n...",
                            "Every deployment in the cluster rolls, healthy ones included, and the three that fail still hold the old password.",
                        ),
                        12,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "A rotated password breaks every copy of a pull secret at once, but each namespace only notices when it pulls. Before fixing the one that paged, find every copy (secrets of type kubernetes.io/dockerconfigjson across namespaces), test the new credential against the registry, update them all, and restart so pods pull now rather than at their next back-off. kubectl pullfix fix deploy/{w} -n {ns} does that in one pass."
        ),
    }
}

/// containerd's wording for a credential the registry refused.
fn rejected_error(f: &Facts) -> String {
    containerd_error(
        f,
        &format!(
            "unexpected status from HEAD request to {}: 401 Unauthorized",
            f.manifest_url()
        ),
    )
}

/// The digest the sandbox's registry reports for the good image.
const GOOD_DIGEST: &str = "sha256:b748f64932b4417ffe6c5afbcca4861e71017406ae5e95aa63fda2a9b0e0eee2";

/// kubectl's warning when `apply` meets an object it did not create.
fn last_applied_warning(kind: &str, name: &str) -> String {
    format!(
        "Warning: resource {kind}/{name} is missing the kubectl.kubernetes.io/last-applied-configuration annotation which is required by kubectl apply. kubectl apply should only be used on resources created declaratively by either kubectl create --save-config or kubectl apply. The missing annotation will be patched automatically."
    )
}

fn rotated_password_partial(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let host = f.host();
    let secret = &f.secret;
    let user = &f.registry_user;
    let r = f.replicas;
    let fixed = f.fixed_sibling.clone().unwrap_or_else(|| format!("{ns}-b"));
    let stale = f
        .other_namespaces
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{ns}-c"));
    let rejected = rejected_error(f);
    let older = f
        .tags
        .iter()
        .filter(|t| t.starts_with('v') && **t < f.good_tag)
        .max()
        .cloned()
        .unwrap_or_else(|| "v2.0.3".into());
    let deploys = {
        let width = [ns, fixed.as_str(), stale.as_str(), "NAMESPACE"]
            .iter()
            .map(|n| n.len())
            .max()
            .unwrap_or(9);
        let mut t = format!(
            "{:<width$}   NAME       READY   UP-TO-DATE   AVAILABLE   AGE",
            "NAMESPACE"
        );
        for (n, ready) in [(ns, 0), (fixed.as_str(), r), (stale.as_str(), 0)] {
            t.push_str(&format!(
                "\n{n:<width$}   {w:<8}   {ready}/{r}     {r}            {ready}           34m"
            ));
        }
        t
    };
    let diagnosis = format!(
        "deploy/{w} (namespace {ns}) P1 {r} pod(s) failing
  cause: credentials-rejected — the registry rejects the pull secret's credentials (High confidence)
  image: {image}  container: {w}
  evidence:
    kubelet  HTTP 401 on the manifest: {rejected}
    registry probed from this machine (not the node)
    registry with `{user}`: HEAD {url}: HTTP 401
    registry anonymous: 401: the registry requires credentials
same credential, other namespaces (likely failing too):
  {stale}/{secret} ({host})
note: 1 other pull secret(s) for the same registry hold a different credential (-o json lists them)",
        image = f.image,
        url = f.manifest_url()
    );
    let conflict = format!(
        "{warning}
Error from server (Conflict): error when applying patch:
{{\"data\":{{\".dockerconfigjson\":\"eyJhdXRocyI6…\"}},\"metadata\":{{\"annotations\":{{\"kubectl.kubernetes.io/last-applied-configuration\":\"…\"}},\"resourceVersion\":\"40\",\"uid\":\"7ff19588-5ae9-4ce0-a4f6-110769c3ecc0\"}}}}
to:
Resource: \"/v1, Resource=secrets\", GroupVersionKind: \"/v1, Kind=Secret\"
Name: \"{secret}\", Namespace: \"{ns}\"
for: \"STDIN\": error when patching \"STDIN\": Operation cannot be fulfilled on secrets \"{secret}\": the object has been modified; please apply your changes to the latest version and try again",
        warning = last_applied_warning("secrets", secret)
    );
    Script {
        scenario: "rotated-password-partial",
        alert: format!(
            "P1 {ns}/deploy/{w}: 0/{r} ready. The pods were moved by the cluster autoscaler at 06:40 and have been in ImagePullBackOff since."
        ),
        pressure: format!(
            "The registry password was rotated yesterday at 18:00. At 23:10 a colleague wrote in the team channel \"fixed regcred in {fixed}, checkout is back\" and went off shift; they are asleep now. The checkout in {ns} is the one customers reach."
        ),
        rounds: vec![
            round(
                format!(
                    "Both {w} pods in {ns} are in ImagePullBackOff on {image}. They pull with the secret {secret}. Nothing in the deployment changed this week.",
                    image = f.image
                ),
                'C',
                [
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "The new pods pull at once, with the secret as it is: the same credential, the same refusal. A restart only helps after the secret has changed.",
                        6,
                    ),
                    (
                        format!(
                            "kubectl set image {deploy} {w}={reg}/{repo}:{older} -n {ns}",
                            deploy = f.deploy(),
                            reg = f.registry,
                            repo = f.repository
                        ),
                        shows(
                            format!(
                                "deployment.apps/{w} image updated\n\n$ kubectl get pods -n {ns} -l app={w}\n{}",
                                pods_table(f, "ErrImagePull", "40s")
                            ),
                            &format!(
                                "The registry checks the credential before it looks at a tag: {older} gets the same 401, and the deployment now points at an older release for when it does pull."
                            ),
                        ),
                        8,
                    ),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &rejected),
                            &format!(
                                "401 Unauthorized on the manifest: a credential was sent and refused. (With none at all, containerd says `no basic auth credentials`.) After yesterday's rotation, {secret} in {ns} most likely still holds the old password."
                            ),
                        ),
                        2,
                    ),
                    node_disk_choice(f, 6),
                ],
            ),
            round(
                format!(
                    "The registry refuses the credential in {ns}/{secret}. The password changed yesterday, and someone already fixed {fixed} by hand last night. Where is a working credential, and who else still has the old one?"
                ),
                'D',
                [
                    (
                        "Ask the registry team in #registry-support for the new password".into(),
                        shows(
                            "",
                            &format!(
                                "Twenty minutes later: the new password has been in their vault since 18:00, and your colleague fetched it for {fixed} last night. It was in the cluster all along, and now the thread asks where you will paste it."
                            ),
                        ),
                        20,
                    ),
                    (
                        format!("kubectl get deployments -A -l app={w}"),
                        shows(
                            deploys,
                            &format!(
                                "{stale} is failing too; it just has not paged. {fixed} is {r}/{r}, but a running pod only shows that its image was pulled once, not which credential the registry accepts today. You have not looked at the secrets yet."
                            ),
                        ),
                        3,
                    ),
                    (
                        format!(
                            "kubectl get secret {secret} -n {fixed} -o jsonpath='{{.data.\\.dockerconfigjson}}' | base64 -d"
                        ),
                        shows(
                            format!(
                                "{{\"auths\":{{\"{host}\":{{\"username\":\"{user}\",\"password\":\"<the new password, in clear text>\"}}}}}}"
                            ),
                            "The new password is now in your scrollback and on the incident bridge's screen share. And reading it proves nothing: a password that looks different is not one the registry has accepted.",
                        ),
                        6,
                    ),
                    (
                        format!("kubectl pullfix diagnose deploy/{w} -n {ns}"),
                        shows(
                            diagnosis,
                            &format!(
                                "The registry itself refuses {ns}'s credential, not just the node. {stale}/{secret} holds exactly the same one, so {stale} is down too. The only secret for this registry with a different credential is {fixed}/{secret}, the copy rewritten last night."
                            ),
                        ),
                        3,
                    ),
                ],
            ),
            round(
                format!(
                    "{ns}/{secret} and {stale}/{secret} hold the old password; {fixed}/{secret} holds a different credential, rewritten by hand last night. Checkout is down in {ns} and {stale}."
                ),
                'B',
                [
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --docker-server={host} --docker-username={user} --docker-password=\"$NEW_PASSWORD\" --dry-run=client -o yaml | kubectl apply -f - && kubectl rollout restart {deploy} -n {ns}",
                            deploy = f.deploy()
                        ),
                        shows(
                            format!("secret/{secret} configured\ndeployment.apps/{w} restarted"),
                            &format!(
                                "{ns} recovers and the alert clears. {stale}, with the same old password, stays down until it pages forty minutes later, after you have closed the incident. And $NEW_PASSWORD was copied out of {fixed} by hand and never tested."
                            ),
                        ),
                        20,
                    ),
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns}"),
                        shows(
                            format!(
                                "cause: credentials-rejected (high): {host} answers 401 to {ns}/{secret}'s credential
step 1  update secret {ns}/{secret}: credential from secret {fixed}/{secret} (tests valid)
        tested against {host}: {repo}:{tag} resolves; backup saved; applied
step 2  the same stale credential is in {stale}/{secret}: update it too? yes; backup saved; applied
step 3  rollout restart deployment/{w} in {stale} and {ns}: applied
verify  {w}: {r}/{r} ready in {ns} and {stale}, no pod in ImagePullBackOff ({fixed} untouched)",
                                repo = f.repository,
                                tag = f.good_tag
                            ),
                            "The sibling's credential is used only after it tests valid against the registry, it goes into every namespace that still holds the old one behind one confirmation, each change is backed up, and the restarts come after the writes.",
                        ),
                        4,
                    ),
                    (
                        format!(
                            "kubectl get secret {secret} -n {fixed} -o yaml | sed 's/namespace: {fixed}/namespace: {ns}/' | kubectl apply -f -"
                        ),
                        shows(
                            conflict,
                            &format!(
                                "The YAML still carries {fixed}'s uid and resourceVersion. That resourceVersion is not the current one of {ns}/{secret}, so the API server rejects the write as a conflict. The error echoes the whole patch, base64 credential included, into your terminal and into the incident doc if you paste it. Had it worked, {stale} would still be stale."
                            ),
                        ),
                        8,
                    ),
                    (
                        format!(
                            "kubectl rollout restart {deploy} -n {ns} && kubectl rollout restart {deploy} -n {stale}",
                            deploy = f.deploy()
                        ),
                        shows(
                            format!(
                                "deployment.apps/{w} restarted\ndeployment.apps/{w} restarted\n\n$ kubectl get pods -n {stale} -l app={w}\n{}",
                                pods_table(f, "ErrImagePull", "22s")
                            ),
                            "Fresh pods in both namespaces pull right away with the secrets as they are, and get the same 401. Once you do fix the secrets, these pods are already in back-off and need a second restart.",
                        ),
                        6,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "After a rotation, the new password is often already in the cluster: someone fixed one namespace and moved on. A running pod proves only an old pull, so test the candidate credential against the registry, write it to every namespace that still holds the old one, and restart only after the write. Copying a Secret with `kubectl get -o yaml` drags its uid, resourceVersion and namespace along, and its errors print the data. kubectl pullfix fix deploy/{w} -n {ns} finds the sibling secret that tests valid, copies its credential, offers the other stale copies and restarts."
        ),
    }
}

fn rotated_password(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let host = f.host();
    let secret = &f.secret;
    let r = f.replicas;
    let rejected = rejected_error(f);
    let handover = "registry-team-docker-config.json";
    let tls = if scheme(&host) == "http" {
        " --tls-verify=false"
    } else {
        ""
    };
    Script {
        scenario: "rotated-password",
        alert: format!(
            "P1 {ns}/deploy/{w}: 0/{r} ready since last night's node pool upgrade; every {w} pod is in ImagePullBackOff."
        ),
        pressure: format!(
            "The {w} service takes the payments, and the morning traffic peak starts in 20 minutes. Yesterday the registry team rotated the pull password under the quarterly policy and posted the new credential as {handover}; their announcement did not mention clusters."
        ),
        rounds: vec![
            round(
                format!(
                    "The upgrade drained the old nodes, so the {w} pods were recreated on new ones and had to pull {image}. The image has not changed, and it ran all week.",
                    image = f.image
                ),
                'B',
                [
                    (
                        format!("kubectl rollout undo {} -n {ns}", f.deploy()),
                        shows(
                            format!(
                                "deployment.apps/{w} rolled back\n\n$ kubectl get pods -n {ns} -l app={w}\n{}",
                                pods_table(f, "ErrImagePull", "35s")
                            ),
                            &format!(
                                "The previous revision comes from the same registry through the same {secret}: the same failure, and last week's configuration change is reverted for nothing."
                            ),
                        ),
                        7,
                    ),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &rejected),
                            &format!(
                                "401 Unauthorized: the node sent the credential from {secret} and the registry refused it. The pods on the old nodes had pulled before the rotation and never asked again; the drain made them ask."
                            ),
                        ),
                        2,
                    ),
                    (
                        "Roll the node pool back to the previous version".into(),
                        shows(
                            "",
                            &format!(
                                "An hour of node churn to get back nodes that pull with the same {secret}. The upgrade did not break pulling; it forced a pull, and the pull shows what was already broken."
                            ),
                        ),
                        40,
                    ),
                    node_disk_choice(f, 6),
                ],
            ),
            round(
                format!(
                    "{host} refuses the credential in {secret}. The registry team's hand-over, {handover}, holds the current credential for {host}."
                ),
                'D',
                [
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --from-file=.dockerconfigjson=$HOME/.docker/config.json --dry-run=client -o yaml | kubectl apply -f -"
                        ),
                        shows(
                            format!("{}\nsecret/{secret} configured", last_applied_warning("secrets", secret)),
                            &format!(
                                "Your laptop keeps its login in the OS keychain: config.json holds `\"credsStore\": \"desktop\"` and an empty entry for {host}. The secret now carries no password at all, and the 401 becomes `no basic auth credentials`. Without a credential helper it would have worked, with production pulling as you."
                            ),
                        ),
                        9,
                    ),
                    (
                        format!("kubectl edit secret {secret} -n {ns}"),
                        shows(
                            format!(
                                "# secrets \"{secret}\" was not valid:\n# * data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'q' looking for beginning of value\nA copy of your changes has been stored to \"/tmp/kubectl-edit-2241933317.yaml\"\nerror: Edit cancelled, no valid changes were saved."
                            ),
                            "The data is base64 of a whole docker config document, not a password field. The pasted value did not decode to JSON, the API server checks that for this secret type, and kubectl left your edit, credential included, in /tmp.",
                        ),
                        8,
                    ),
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "New pods pull immediately, with the old password still in the secret: the same 401, and the back-off starts over.",
                        5,
                    ),
                    (
                        format!(
                            "skopeo inspect --authfile {handover}{tls} --format '{{{{.Digest}}}}' docker://{image}",
                            image = f.image
                        ),
                        shows(
                            GOOD_DIGEST,
                            &format!(
                                "The hand-over credential resolves {repo}:{tag} on {host}: it is the current one. Tested from your machine before anything in the cluster changed, and nothing but a digest was printed.",
                                repo = f.repository,
                                tag = f.good_tag
                            ),
                        ),
                        2,
                    ),
                ],
            ),
            round(
                format!(
                    "The hand-over credential works against {host}. {secret} in {ns} still holds the old password, and {r} pods are in back-off."
                ),
                'C',
                [
                    (
                        format!(
                            r#"kubectl patch secret {secret} -n {ns} --type=merge -p '{{"stringData":{{"password":"'"$NEW_PASSWORD"'"}}}}'"#
                        ),
                        shows(
                            format!("secret/{secret} patched"),
                            "The secret gains a `password` key that nothing reads. The kubelet uses a dockerconfigjson secret only through its .dockerconfigjson key, which still holds the old password. Same 401, and the new password now sits unused beside it.",
                        ),
                        6,
                    ),
                    (
                        format!(
                            "kubectl delete secret {secret} -n {ns} && kubectl create secret generic {secret} -n {ns} --from-file=.dockerconfigjson={handover}"
                        ),
                        shows(
                            format!("secret \"{secret}\" deleted\nsecret/{secret} created"),
                            "`create secret generic` makes a secret of type Opaque, and the kubelet takes pull credentials only from kubernetes.io/dockerconfigjson ones: the 401 turns into `no basic auth credentials`. The missing flag was --type=kubernetes.io/dockerconfigjson, and the delete kept no copy of what was there.",
                        ),
                        10,
                    ),
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns} --from-docker-config {handover}"),
                        shows(
                            format!(
                                "cause: credentials-rejected (high): {host} answers 401 to {secret}'s credential
step 1  update secret {ns}/{secret} from {handover}
        tested against {host}: {repo}:{tag} resolves; backup saved; applied
step 2  kubectl rollout restart {deploy} -n {ns}: applied
verify  {w}: {r}/{r} ready, no pod in ImagePullBackOff",
                                repo = f.repository,
                                tag = f.good_tag,
                                deploy = f.deploy()
                            ),
                            "The hand-over is tested against the registry before it is written, the old secret is backed up, and the restart makes the pods pull now instead of at their next back-off.",
                        ),
                        4,
                    ),
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --from-file=.dockerconfigjson={handover} --dry-run=client -o yaml | kubectl apply -f -, then wait"
                        ),
                        shows(
                            format!(
                                "{}\nsecret/{secret} configured\n\n$ kubectl get pods -n {ns} -l app={w}\n{}",
                                last_applied_warning("secrets", secret),
                                pods_table(f, "ImagePullBackOff", "41m")
                            ),
                            "Right content, right type. The pods do recover, since the kubelet reads the secret again on each retry, but a pod in back-off retries up to 5 minutes apart, with checkout down in the traffic peak. A restart would have pulled at once; and nothing was backed up.",
                        ),
                        7,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "A rotated password stays invisible until a pod has to pull again: a node upgrade, a reschedule or a scale-up. 401 means a credential was sent and refused. Test the new credential against the registry before writing it, write it as a kubernetes.io/dockerconfigjson secret (its .dockerconfigjson key is all the kubelet reads), then restart so the pods pull now. kubectl pullfix fix deploy/{w} -n {ns} --from-docker-config FILE does the test, the write, the backup and the restart."
        ),
    }
}

fn missing_prefix(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let reg = &f.registry;
    let secret = &f.secret;
    let full = f.full_image();
    let denied = containerd_error(
        f,
        "pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed",
    );
    Script {
        scenario: "missing-prefix",
        alert: format!(
            "P1 {ns}/deploy/{w}: 0/{r} ready after the Helm upgrade that moved image settings into a shared values file.",
            r = f.replicas
        ),
        pressure: "The change was reviewed and \"only touched values\". Its author is offline and the release window closes in 30 minutes.".into(),
        rounds: vec![
            round(
                format!(
                    "The {w} pods are in ErrImagePull. The team's images live in {reg}, and {secret} holds a working credential for it: other deployments in {ns} pull with it right now."
                ),
                'A',
                [
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &denied),
                            &format!("Read the reference the runtime used: {full}. The pull went to Docker Hub, not to {reg}."),
                        ),
                        2,
                    ),
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --docker-server={reg} --docker-username={user} --docker-password=\"$REGISTRY_PASSWORD\" --dry-run=client -o yaml | kubectl apply -f -",
                            user = f.registry_user
                        ),
                        shows(
                            format!("secret/{secret} configured"),
                            &format!("Same error. {secret} is for {reg}; the kubelet sends a credential only to the host it names, and this pull goes to docker.io."),
                        ),
                        10,
                    ),
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "New pods with the same image reference fail the same way.",
                        5,
                    ),
                    node_disk_choice(f, 6),
                ],
            ),
            round(
                format!(
                    "The runtime pulled {full}, and Docker Hub answers as it does for a repository that is not there. The release notes say {good}.",
                    good = f.good_image()
                ),
                'D',
                [
                    (
                        "kubectl create secret docker-registry dockerhub --docker-server=https://index.docker.io/v1/ --docker-username=\"$HUB_USER\" --docker-password=\"$HUB_TOKEN\"".to_string()
                            + &format!(" -n {ns}"),
                        shows(
                            "secret/dockerhub created",
                            "Still `insufficient_scope`: Docker Hub has no such repository for anyone, with or without an account. (And the pods do not even reference the new secret.)",
                        ),
                        12,
                    ),
                    (
                        format!(
                            "kubectl patch {deploy} -n {ns} --type=json -p '[{{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/imagePullPolicy\",\"value\":\"IfNotPresent\"}}]'",
                            deploy = f.deploy()
                        ),
                        shows(
                            format!("deployment.apps/{w} patched"),
                            &format!("No node has {full}: images are cached under their full name, and the copy of {} the nodes hold is a different name.", f.good_image()),
                        ),
                        6,
                    ),
                    (
                        format!("docker pull {}", f.image),
                        shows(
                            format!(
                                "Error response from daemon: pull access denied for {}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
                                f.image.split(':').next().unwrap_or_default()
                            ),
                            "Your laptop reproduces it, which confirms Docker Hub does not have it, but not where the reference went wrong.",
                        ),
                        4,
                    ),
                    (
                        format!(
                            "kubectl get {deploy} -n {ns} -o jsonpath='{{.spec.template.spec.containers[*].image}}'",
                            deploy = f.deploy()
                        ),
                        shows(
                            f.image.clone(),
                            "No registry host in the reference, so docker.io is implied. The values refactor dropped the prefix.",
                        ),
                        2,
                    ),
                ],
            ),
            round(
                format!(
                    "The image reference lost its registry host in the refactor. {good} is the build the release was approved for.",
                    good = f.good_image()
                ),
                'C',
                [
                    (
                        format!(
                            "kubectl set image {deploy} {w}={reg}/{repo}:latest -n {ns}",
                            deploy = f.deploy(),
                            repo = f.repository
                        ),
                        shows(
                            format!("deployment.apps/{w} image updated"),
                            "It rolls out, running whatever `latest` points at today rather than the approved build. The next incident starts here.",
                        ),
                        10,
                    ),
                    (
                        format!("docker push docker.io/{}", f.image),
                        shows(
                            "",
                            "That publishes a private image on Docker Hub, under an organization that may not even be yours. This is now a security incident.",
                        ),
                        40,
                    ),
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns}"),
                        shows(
                            format!(
                                "cause: wrong-registry (high): {image} has no registry host (docker.io implied); {secret} is for {reg}
step 1  set image {w}={good}
        {good} exists (checked with {secret}); applied
verify  {w}: {r}/{r} ready, no pod in ImagePullBackOff
follow-up: the image comes from your Helm values: fix it there, or the next upgrade reverts it",
                                image = f.image,
                                good = f.good_image(),
                                r = f.replicas
                            ),
                            "The full reference is set only after the registry confirms it exists, and the summary points at the source of the mistake.",
                        ),
                        4,
                    ),
                    (
                        "Configure a docker.io mirror on the nodes that points at the private registry".into(),
                        shows(
                            "",
                            "A node configuration change on every runtime in the pool, which also redirects every legitimate Docker Hub pull. Not an incident-time change.",
                        ),
                        35,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "An image without a registry host is a Docker Hub image: team/checkout means docker.io/team/checkout (and a bare name means docker.io/library/name). Pull secrets are matched by host, so a good secret for {reg} is never sent. Read the reference in the event, set the full one after checking that it exists (kubectl pullfix fix deploy/{w} -n {ns}), and fix it where it is generated."
        ),
    }
}

fn wrong_tag(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let reg = &f.registry;
    let secret = &f.secret;
    let (path, bad) = f.path_and_tag();
    let not_found = format!(
        "rpc error: code = NotFound desc = {}",
        containerd_error(f, &format!("{}: not found", f.full_image()))
    );
    let tags = serde_json::to_string(&f.tags).unwrap_or_default();
    let newer: Vec<&String> = f
        .tags
        .iter()
        .filter(|t| **t > f.good_tag && t.starts_with('v'))
        .collect();
    let candidate = newer
        .first()
        .map_or("v2.1.1".to_string(), |t| t.to_string());
    Script {
        scenario: "wrong-tag",
        alert: format!(
            "P1 {ns}/deploy/{w}: 0/{r} ready after the release; the rollout reports no progress.",
            r = f.replicas
        ),
        pressure: "The release manager wants the service green, or a decision to roll back, within 15 minutes.".into(),
        rounds: vec![
            round(
                format!("The new {w} pods are in ErrImagePull. The pipeline deployed {}.", f.image),
                'C',
                [
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "Same image, same failure, on fresh pods.",
                        5,
                    ),
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --docker-server={reg} --docker-username={user} --docker-password=\"$REGISTRY_PASSWORD\" --dry-run=client -o yaml | kubectl apply -f -",
                            user = f.registry_user
                        ),
                        shows(
                            format!("secret/{secret} configured"),
                            "Nothing changes: the credential was never the problem. You rewrote a working secret under pressure.",
                        ),
                        8,
                    ),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &not_found),
                            "NotFound: the registry accepted the credential and has no such tag.",
                        ),
                        2,
                    ),
                    node_disk_choice(f, 6),
                ],
            ),
            round(
                format!("The registry says {path}:{bad} does not exist."),
                'A',
                [
                    (
                        format!(
                            "curl -s -u \"$REGISTRY_USER:$REGISTRY_PASSWORD\" {}://{reg}/v2/{path}/tags/list",
                            scheme(reg)
                        ),
                        shows(
                            format!("{{\"name\":\"{path}\",\"tags\":{tags}}}"),
                            &format!(
                                "No {bad}. The release ticket says {good}; {candidate} is a release candidate still in QA. The pipeline's tag variable was mistyped.",
                                good = f.good_tag
                            ),
                        ),
                        3,
                    ),
                    (
                        "Wait: CI may still be pushing the image".into(),
                        shows(
                            "",
                            &format!("The kubelet retries with a back-off that grows to 5 minutes, and no {bad} ever appears: no pipeline built it."),
                        ),
                        15,
                    ),
                    (
                        format!("kubectl rollout undo {} -n {ns}", f.deploy()),
                        shows(
                            format!("error: no rollout history found for deployment \"{w}\""),
                            "This is the deployment's first revision: there is nothing to roll back to.",
                        ),
                        3,
                    ),
                    (
                        format!("kubectl delete secret {secret} -n {ns}"),
                        shows(
                            format!("secret \"{secret}\" deleted"),
                            "Now the pull fails on credentials too, on top of the missing tag.",
                        ),
                        8,
                    ),
                ],
            ),
            round(
                format!(
                    "{path} has {list}; the release is {good}.",
                    list = f.tags.join(", "),
                    good = f.good_tag
                ),
                'B',
                [
                    (
                        format!("crane tag {reg}/{path}:{good} {bad}", good = f.good_tag),
                        shows(
                            "",
                            &format!(
                                "The pods start, and the registry now holds a {bad} that is really {good}. When the real {bad} is built, the tag moves under running pods.",
                                good = f.good_tag
                            ),
                        ),
                        12,
                    ),
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns} --image {}", f.good_image()),
                        shows(
                            format!(
                                "cause: image-not-found (high): {reg}/{path}:{bad} does not exist; close tags: {list}
step 1  set image {w}={good}
        {good} exists (checked with {secret}); applied
verify  {w}: {r}/{r} ready, no pod in ImagePullBackOff
follow-up: fix the tag where the pipeline sets it",
                                list = f.tags.join(", "),
                                good = f.good_image(),
                                r = f.replicas
                            ),
                            "The image is changed only to a reference the registry confirms, and the summary points at the pipeline.",
                        ),
                        4,
                    ),
                    (
                        format!("kubectl set image {} {w}={reg}/{path}:{candidate} -n {ns}", f.deploy()),
                        shows(
                            format!("deployment.apps/{w} image updated"),
                            &format!("The closest tag by name, but {candidate} has not passed QA. It runs in production now."),
                        ),
                        15,
                    ),
                    (
                        format!("kubectl set image {} {w}={reg}/{path}:latest -n {ns}", f.deploy()),
                        shows(
                            format!("deployment.apps/{w} image updated"),
                            "Rolls out whatever `latest` is today: a moving tag, not the release.",
                        ),
                        10,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "`NotFound` / `manifest unknown` means the registry answered and accepted the credential: secrets, restarts and nodes are all irrelevant. List the repository's tags, choose the intended one, and set it only after it is confirmed to exist (kubectl pullfix fix deploy/{w} -n {ns}). Then fix the tag where the pipeline sets it."
        ),
    }
}

fn sa_secret_only(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let sa = &f.service_account;
    let secret = &f.secret;
    let pod = f.pods()[0].clone();
    Script {
        scenario: "sa-secret-only",
        alert: format!(
            "P2 {ns}/deploy/{w}: 0/1 ready after the hardening change that gave {w} its own ServiceAccount."
        ),
        pressure: "The hardening closes a compliance finding due this week. Reverting it needs the security team's sign-off, and they are asleep in another timezone.".into(),
        rounds: vec![
            round(
                format!(
                    "The {w} pod is in ImagePullBackOff. Before the change it pulled fine with {secret}."
                ),
                'D',
                [
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "The new pod is built from the same template, with the same ServiceAccount, and fails the same way.",
                        5,
                    ),
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --docker-server={reg} --docker-username={user} --docker-password=\"$REGISTRY_PASSWORD\" --dry-run=client -o yaml | kubectl apply -f -",
                            reg = f.registry,
                            user = f.registry_user
                        ),
                        shows(
                            format!("secret/{secret} configured"),
                            "Same error: the secret's content was never the problem.",
                        ),
                        8,
                    ),
                    node_disk_choice(f, 6),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &no_credentials_error(f)),
                            "`no basic auth credentials`: no credential was sent at all. Not a wrong one, none.",
                        ),
                        2,
                    ),
                ],
            ),
            round(
                format!("The runtime had no credential for the registry, yet {secret} exists and worked yesterday."),
                'B',
                [
                    (
                        format!("kubectl get secret {secret} -n {ns}"),
                        shows(
                            format!("NAME      TYPE                             DATA   AGE\n{secret}   kubernetes.io/dockerconfigjson   1      200d"),
                            "The secret is fine. The question is whether the pod uses it.",
                        ),
                        3,
                    ),
                    (
                        format!(
                            "kubectl get pod {pod} -n {ns} -o custom-columns=SA:.spec.serviceAccountName,PULL:.spec.imagePullSecrets[*].name; kubectl get serviceaccounts -n {ns} -o custom-columns=NAME:.metadata.name,PULL:.imagePullSecrets[*].name"
                        ),
                        shows(
                            format!(
                                "SA         PULL\n{sa:<10} <none>\nNAME       PULL\ndefault    {secret}\n{sa:<10} <none>"
                            ),
                            &format!("{secret} is attached to the default ServiceAccount only. The pod now runs as {sa}, which has no imagePullSecrets, so the pod has none."),
                        ),
                        3,
                    ),
                    (
                        format!(
                            "kubectl patch {deploy} -n {ns} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"serviceAccountName\":\"default\"}}}}}}}}'",
                            deploy = f.deploy()
                        ),
                        shows(
                            format!("deployment.apps/{w} patched"),
                            "The pods start, and the hardening is undone. The compliance finding reopens, and security reverts your revert in the morning.",
                        ),
                        15,
                    ),
                    (
                        format!("kubectl delete secret {secret} -n {ns} && kubectl create secret docker-registry {secret} -n {ns} --docker-server={} --docker-username={} --docker-password=\"$REGISTRY_PASSWORD\"", f.registry, f.registry_user),
                        shows(
                            format!("secret \"{secret}\" deleted\nsecret/{secret} created"),
                            "An identical secret, still on nothing the pod uses.",
                        ),
                        8,
                    ),
                ],
            ),
            round(
                format!("{secret} is on the default ServiceAccount; {w} runs as ServiceAccount {sa}, which has no imagePullSecrets."),
                'C',
                [
                    (
                        format!(
                            "kubectl patch serviceaccount {sa} -n {ns} -p '{{\"imagePullSecrets\":[{{\"name\":\"{secret}\"}}]}}'"
                        ),
                        shows(
                            format!(
                                "serviceaccount/{sa} patched\n\n$ kubectl get pods -n {ns} -l app={w}\n{}",
                                pods_table(f, "ImagePullBackOff", "14m")
                            ),
                            "Right change, but the pod never sees it: a ServiceAccount's imagePullSecrets are copied into a pod when the pod is created. The running pod keeps its empty list and backs off forever.",
                        ),
                        10,
                    ),
                    (
                        format!("kubectl delete pod -n {ns} -l app={w}"),
                        shows(
                            format!("pod \"{pod}\" deleted"),
                            &format!("The replacement is created from the same template, as {sa}, which still has no pull secret."),
                        ),
                        5,
                    ),
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns}"),
                        shows(
                            format!(
                                "cause: credentials-missing (high): the pods run as ServiceAccount {sa}, which has no imagePullSecrets; {secret} is on default
step 1  attach {secret} to ServiceAccount {sa} (or --attach-to=workload): applied
step 2  kubectl rollout restart deployment/{w} -n {ns} (new pods get the secret at creation): applied
verify  {w}: 1/1 ready, no pod in ImagePullBackOff"
                            ),
                            "Attach, then restart: pods get a ServiceAccount's pull secrets only when they are created.",
                        ),
                        4,
                    ),
                    (
                        "Put the registry credential in every node's runtime configuration".into(),
                        shows(
                            "",
                            "A node change across the pool that hands the credential to every pod in the cluster. Not what the hardening was for.",
                        ),
                        30,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "A pod's imagePullSecrets are its own, filled in from its ServiceAccount when the pod is created. A new ServiceAccount starts with none, and changing a ServiceAccount touches only pods created afterwards. Attach the secret where the pod gets it, then restart (kubectl pullfix fix deploy/{w} -n {ns})."
        ),
    }
}

fn no_pull_secrets(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let host = f.host();
    let secret = &f.secret;
    let sa = &f.service_account;
    let pod = f.pods()[0].clone();
    let handover = "registry-team-docker-config.json";
    Script {
        scenario: "no-pull-secrets",
        alert: format!(
            "P2 {ns}/deploy/{w}: 0/1 ready. It is the first deploy of {w} into {ns}, its new namespace."
        ),
        pressure: format!(
            "Moving {w} out of the shared namespace is the last item of a migration that closes today. The manifests ran there unchanged for a year, and the team lead wants to know why a copy would behave differently. Yesterday the registry team issued a pull credential for {ns}: {handover}."
        ),
        rounds: vec![
            round(
                format!(
                    "The {w} pod is in ImagePullBackOff. The manifests were copied as they were from the shared namespace, where {image} still pulls.",
                    image = f.image
                ),
                'A',
                [
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &no_credentials_error(f)),
                            &format!(
                                "`no basic auth credentials`: the node asked {host} without any credential, and the registry requires one. Not a wrong credential; none."
                            ),
                        ),
                        2,
                    ),
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "The new pod comes from the same template and sends the same nothing.",
                        5,
                    ),
                    (
                        format!("docker pull {}", f.image),
                        shows(
                            format!(
                                "{tag}: Pulling from {repo}\nDigest: {GOOD_DIGEST}\nStatus: Image is up to date for {image}\n{image}",
                                tag = f.good_tag,
                                repo = f.repository,
                                image = f.image
                            ),
                            "Your laptop pulls it with your own `docker login` from months ago. The image exists; what matters is what the node sends, and your laptop's login is not on the node.",
                        ),
                        4,
                    ),
                    node_disk_choice(f, 6),
                ],
            ),
            round(
                format!(
                    "No credential reached {host}. In the shared namespace the same manifests pulled fine, and they never listed imagePullSecrets."
                ),
                'C',
                [
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --from-file=.dockerconfigjson={handover}"
                        ),
                        shows(
                            format!("secret/{secret} created"),
                            "A secret no pod names is never sent. The kubelet uses only the pod's own imagePullSecrets, and that list is empty: the same `no basic auth credentials`.",
                        ),
                        6,
                    ),
                    (
                        format!(
                            "kubectl patch {deploy} -n {ns} --type=json -p '[{{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/imagePullPolicy\",\"value\":\"IfNotPresent\"}}]'",
                            deploy = f.deploy()
                        ),
                        shows(
                            format!(
                                "deployment.apps/{w} patched\n\n$ kubectl get pods -n {ns} -l app={w}\n{}",
                                pods_table(f, "ErrImagePull", "28s")
                            ),
                            "The new pod lands on a node that never pulled the image, so it still has to ask the registry, with nothing. On a node that has it cached, IfNotPresent would start it with no credential check at all (the kubelet re-verifies only with the KubeletEnsureSecretPulledImages feature on): a hole, not a fix.",
                        ),
                        8,
                    ),
                    (
                        format!(
                            "kubectl get pods -n {ns} -l app={w} -o custom-columns=POD:.metadata.name,SA:.spec.serviceAccountName,PULL:.spec.imagePullSecrets[*].name; kubectl get serviceaccounts -n {ns} -o custom-columns=NAME:.metadata.name,PULL:.imagePullSecrets[*].name"
                        ),
                        shows(
                            format!(
                                "POD                          SA        PULL\n{pod:<28} {sa:<9} <none>\nNAME      PULL\n{sa:<9} <none>"
                            ),
                            &format!(
                                "The pod has no imagePullSecrets, and {ns}'s {sa} ServiceAccount, which it runs as, has none to give. In the shared namespace the pull secret hung on that namespace's {sa} ServiceAccount, so the manifests never had to name it. Neither the Secret nor the ServiceAccount's list came along with the copy."
                            ),
                        ),
                        3,
                    ),
                    (
                        format!("Move {w} back to the shared namespace until this is understood"),
                        shows(
                            "",
                            "It would pull again there, and the migration that closes today reopens. What is missing is two objects in the new namespace, not the namespace itself.",
                        ),
                        20,
                    ),
                ],
            ),
            round(
                format!(
                    "{ns} has no pull secret for {host}, the pod template names none, and the {sa} ServiceAccount carries none. The credential is in {handover}."
                ),
                'D',
                [
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --from-file=.dockerconfigjson={handover} && kubectl patch serviceaccount {sa} -n {ns} -p '{{\"imagePullSecrets\":[{{\"name\":\"{secret}\"}}]}}'"
                        ),
                        shows(
                            format!(
                                "secret/{secret} created\nserviceaccount/{sa} patched\n\n$ kubectl get pods -n {ns} -l app={w}\n{}",
                                pods_table(f, "ImagePullBackOff", "19m")
                            ),
                            &format!(
                                "Both objects are right, and the running pod never sees them: a ServiceAccount's pull secrets are copied into a pod only when the pod is created. It keeps its empty list until something replaces it, and from now on every pod in {ns} running as {sa} carries the credential too."
                            ),
                        ),
                        10,
                    ),
                    (
                        format!(
                            "kubectl patch {deploy} -n {ns} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"imagePullSecrets\":[{{\"name\":\"{secret}\"}}]}}}}}}}}'",
                            deploy = f.deploy()
                        ),
                        shows(
                            format!(
                                "deployment.apps/{w} patched\n\n$ kubectl get events -n {ns} --field-selector reason=FailedToRetrieveImagePullSecret\nLAST SEEN   TYPE      REASON                             OBJECT                  MESSAGE\n14s         Warning   FailedToRetrieveImagePullSecret    pod/{w}-5c9b7d4f6-t2hxk   Unable to retrieve some image pull secrets ({secret}); attempting to pull the image may not succeed."
                            ),
                            &format!(
                                "The template change rolls out a new pod that names {secret}, which does not exist yet. The kubelet warns, pulls with nothing, and gets the same answer. The secret has to exist (and work) before the reference does any good."
                            ),
                        ),
                        6,
                    ),
                    (
                        format!("Ask the registry team to make {} readable without a login", f.repository),
                        shows(
                            "",
                            &format!(
                                "Twenty minutes later, no: it would publish a private image to anyone who can reach {host}, to save two objects in one namespace."
                            ),
                        ),
                        20,
                    ),
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns} --from-docker-config {handover}"),
                        shows(
                            format!(
                                "cause: credentials-missing (high): the pods send no credential to {host}: no imagePullSecrets in the pod template, none on ServiceAccount {sa}
step 1  create secret {ns}/{secret} (kubernetes.io/dockerconfigjson) from {handover}
        tested against {host}: {repo}:{tag} resolves; applied
step 2  attach {secret} to the pod template of deploy/{w} (only this workload): applied
        the template change rolls out a new pod, created with the secret
verify  {w}: 1/1 ready, no pod in ImagePullBackOff",
                                repo = f.repository,
                                tag = f.good_tag
                            ),
                            "The credential is tested before it is written, the secret gets the type the kubelet reads, and attaching it to the pod template is itself the rollout: the replacement pod is created with the secret in its spec, so no separate restart is needed.",
                        ),
                        4,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "`no basic auth credentials` means the node had nothing to send. A pod's pull credentials are its own imagePullSecrets, taken from its template and, when the pod is created, from its ServiceAccount; copying manifests into a new namespace brings neither the Secret nor the ServiceAccount's list. Create the secret from a tested credential, attach it where the pod reads it, and let new pods pick it up (kubectl pullfix fix deploy/{w} -n {ns} --from-docker-config FILE does all three)."
        ),
    }
}

fn secret_opaque(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let reg = &f.registry;
    let secret = &f.secret;
    let immutable = format!(
        "The Secret \"{secret}\" is invalid: type: Invalid value: \"kubernetes.io/dockerconfigjson\": field is immutable"
    );
    Script {
        scenario: "secret-opaque",
        alert: format!(
            "P2 {ns}/deploy/{w}: 0/1 ready since {secret} was moved to the new secrets pipeline."
        ),
        pressure: "Twelve more namespaces are due to move to the pipeline tonight. The platform lead wants to know within the hour whether to stop the migration.".into(),
        rounds: vec![
            round(
                format!("The {w} pod is in ImagePullBackOff. Its spec lists imagePullSecrets: {secret}, and the secret exists."),
                'B',
                [
                    (
                        "Re-run the secrets pipeline's sync for the namespace".into(),
                        shows(
                            format!("secret/{secret} unchanged"),
                            "The pipeline writes the same object it wrote before. Whatever is wrong with it is still wrong.",
                        ),
                        8,
                    ),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &no_credentials_error(f)),
                            &format!("`no basic auth credentials`, although the pod names {secret}: the kubelet did not use the secret."),
                        ),
                        2,
                    ),
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "The new pod references the same secret and fails the same way.",
                        5,
                    ),
                    node_disk_choice(f, 6),
                ],
            ),
            round(
                format!("The pod references {secret}, yet the runtime had no credential."),
                'A',
                [
                    (
                        format!("kubectl get secret {secret} -n {ns}"),
                        shows(
                            format!("NAME      TYPE     DATA   AGE\n{secret}   Opaque   1      35m"),
                            "Type Opaque. The kubelet takes pull credentials only from secrets of type kubernetes.io/dockerconfigjson (or the older dockercfg) and skips the rest without an event.",
                        ),
                        2,
                    ),
                    (
                        format!(
                            "kubectl get secret {secret} -n {ns} -o jsonpath='{{.data.\\.dockerconfigjson}}' | base64 -d | jq '.auths | map_values(.username)'"
                        ),
                        shows(
                            format!("{{\n  \"{reg}\": \"{}\"\n}}", f.registry_user),
                            "The content is right: the registry host and the user match. So the content is not why it is ignored.",
                        ),
                        3,
                    ),
                    (
                        format!(
                            "curl -s -o /dev/null -w '%{{http_code}}\\n' -u \"$REGISTRY_USER:$REGISTRY_PASSWORD\" {}://{reg}/v2/",
                            scheme(reg)
                        ),
                        shows(
                            "200",
                            "The credential works from your machine. The registry was never asked with it from the node.",
                        ),
                        4,
                    ),
                    (
                        format!("kubectl delete pod -n {ns} -l app={w}"),
                        shows(
                            format!("pod \"{}\" deleted", f.pods()[0]),
                            "The replacement ignores the same secret.",
                        ),
                        5,
                    ),
                ],
            ),
            round(
                format!("{secret} has the right content and the wrong type (Opaque)."),
                'D',
                [
                    (
                        format!(
                            "kubectl create secret docker-registry {secret} -n {ns} --docker-server={reg} --docker-username={} --docker-password=\"$REGISTRY_PASSWORD\" --dry-run=client -o yaml | kubectl apply -f -",
                            f.registry_user
                        ),
                        shows(
                            format!("Error from server (Invalid): error when applying patch: {immutable}"),
                            "A Secret's type cannot change in place: apply patches the existing object and is refused.",
                        ),
                        4,
                    ),
                    (
                        format!("kubectl patch secret {secret} -n {ns} -p '{{\"type\":\"kubernetes.io/dockerconfigjson\"}}'"),
                        shows(
                            immutable.clone(),
                            "Same rule: the type is fixed at creation.",
                        ),
                        3,
                    ),
                    (
                        format!("kubectl delete secret {secret} -n {ns}, then wait for the pipeline to recreate it"),
                        shows(
                            format!("secret \"{secret}\" deleted"),
                            "Fifteen minutes later the pipeline recreates it, as Opaque again. Meanwhile the pod had no secret at all.",
                        ),
                        15,
                    ),
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns}"),
                        shows(
                            format!(
                                "cause: credentials-missing (high): {secret} has type Opaque; the kubelet ignores it
step 1  recreate secret {ns}/{secret} as kubernetes.io/dockerconfigjson (a type cannot change in place)
        tested against {reg}: {repo}:{tag} resolves; backup saved; deleted and created
step 2  kubectl rollout restart deployment/{w} -n {ns}: applied
verify  {w}: 1/1 ready, no pod in ImagePullBackOff
follow-up: the secrets pipeline must write type kubernetes.io/dockerconfigjson, or its next sync reverts this",
                                repo = f.repository,
                                tag = f.good_tag
                            ),
                            "Backed up, recreated with the right type and the same content, restarted, and the pipeline named as the real fix before tonight's migration.",
                        ),
                        4,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "The kubelet reads pull credentials only from secrets of type kubernetes.io/dockerconfigjson or dockercfg; an Opaque secret with the same bytes is skipped silently. A Secret's type is immutable: back it up, delete it, create it with the right type, restart (kubectl pullfix fix deploy/{w} -n {ns}), and fix the generator that made it."
        ),
    }
}

fn rate_limited(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let full = f.full_image();
    let (path, tag) = f.path_and_tag();
    let too_many = format!(
        "failed to pull and unpack image \"{full}\": failed to copy: httpReadSeeker: failed open: unexpected status code {}: 429 Too Many Requests - Server message: toomanyrequests: {RATE_LIMIT_MESSAGE}",
        f.manifest_url()
    );
    let token_url = format!(
        "https://auth.docker.io/token?service=registry.docker.io&scope=repository:{path}:pull"
    );
    Script {
        scenario: "rate-limited",
        alert: format!(
            "P2 {ns}/deploy/{w}: 0/{r} ready, ErrImagePull on every pod.",
            r = f.replicas
        ),
        pressure: "Other teams report pull errors on public images too, and someone in the incident channel has already declared that Docker Hub is down.".into(),
        rounds: vec![
            round(
                format!("The {w} pods run {}, a public image from Docker Hub.", f.image),
                'D',
                [
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "Each new pod pulls again, from the same address, against the same exhausted allowance.",
                        8,
                    ),
                    (
                        format!("kubectl get {} -n {ns} -o jsonpath='{{.spec.template.spec.imagePullSecrets}}'", f.deploy()),
                        shows(
                            "",
                            "Empty: the pods pull anonymously. That will matter, but it does not say why pulls fail now.",
                        ),
                        3,
                    ),
                    node_disk_choice(f, 6),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &too_many),
                            "429 toomanyrequests: Docker Hub is up and throttling this cluster's anonymous pulls.",
                        ),
                        2,
                    ),
                ],
            ),
            round(
                "Docker Hub answers 429 to the nodes' anonymous pulls.".to_string(),
                'A',
                [
                    (
                        format!(
                            "curl -sI -H \"Authorization: Bearer $(curl -s '{token_url}' | jq -r .token)\" https://registry-1.docker.io/v2/{path}/manifests/{tag}"
                        ),
                        shows(
                            "HTTP/1.1 429 Too Many Requests\ncontent-type: application/json\nratelimit-limit: 100;w=21600\nratelimit-remaining: 0;w=21600\ndocker-ratelimit-source: 203.0.113.7",
                            "Nothing left of the anonymous allowance for this source address, in a 6-hour window (w=21600). All nodes leave through the same NAT address, so they share it.",
                        ),
                        3,
                    ),
                    (
                        "Wait for the kubelet's next retry".into(),
                        shows(
                            "",
                            "The kubelet retries every 5 minutes at most, and each retry is one more 429 until the window frees, which can take hours.",
                        ),
                        20,
                    ),
                    (
                        format!("kubectl rollout undo {} -n {ns}", f.deploy()),
                        shows(
                            format!("deployment.apps/{w} rolled back"),
                            "The previous tag comes from Docker Hub as well, with imagePullPolicy Always: the same 429.",
                        ),
                        6,
                    ),
                    (
                        format!("kubectl drain {} --ignore-daemonsets --delete-emptydir-data", f.node),
                        shows(
                            format!("node/{} cordoned\nevicting pod {ns}/{}\n...", f.node, f.pods()[0]),
                            "The pods land on nodes behind the same NAT address: same 429, and you evicted healthy workloads on the way.",
                        ),
                        12,
                    ),
                ],
            ),
            round(
                "Anonymous pulls from the cluster's address are spent for the rest of the window. Nothing inside the cluster lifts a registry's limit.".to_string(),
                'C',
                [
                    (
                        format!("kubectl create secret docker-registry dockerhub -n {ns} --docker-server=https://index.docker.io/v1/ --docker-username=\"$MY_HUB_USER\" --docker-password=\"$MY_HUB_TOKEN\""),
                        shows(
                            "secret/dockerhub created",
                            "With your personal account attached, it would pull, and production would depend on a token that leaves when you do. Use the team's account, through the path the runbook gives.",
                        ),
                        10,
                    ),
                    (
                        format!("kubectl set image {} {w}=nginx:latest -n {ns}", f.deploy()),
                        shows(
                            format!("deployment.apps/{w} image updated"),
                            "Same registry, same limit, and now an unpinned tag.",
                        ),
                        6,
                    ),
                    (
                        format!("kubectl pullfix fix deploy/{w} -n {ns}"),
                        shows(
                            format!(
                                "cause: rate-limited (high): registry-1.docker.io answers 429 toomanyrequests; rate limit: 0 remaining of 100 (window 6h)
no change in the cluster can fix this; nothing was written
next: authenticate pulls from Docker Hub with a pull secret for index.docker.io (the team's account; a higher, per-account limit), then restart
next: longer term, mirror public images into {reg}
escalate: platform on-call, with the message in the report",
                                reg = f.registry
                            ),
                            "The cause confirmed from the registry's own headers, no blind writes, and the way out: authenticated pulls now, a mirror later, and who to tell.",
                        ),
                        4,
                    ),
                    (
                        "Replace the nodes to get fresh IP addresses".into(),
                        shows(
                            "",
                            "New nodes leave through the same NAT gateway: same source address, same spent allowance, after half an hour of node churn.",
                        ),
                        25,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "429 toomanyrequests is the registry throttling you, not a broken image or secret. Every restart, rollback or drain spends more pulls from the same address. Confirm it from the registry's ratelimit headers, stop churning pods, and move to authenticated pulls or a mirror (kubectl pullfix fix deploy/{w} -n {ns} confirms it and hands you the next step)."
        ),
    }
}

fn unreachable_refused(f: &Facts) -> Script {
    let ns = f.ns();
    let w = &f.workload;
    let host = f.host();
    let ip = &f.unreachable_ip;
    let (path, tag) = f.path_and_tag();
    let refused = containerd_error(
        f,
        &format!(
            "failed to do request: Head \"{}\": dial tcp {ip}:443: connect: connection refused",
            f.manifest_url()
        ),
    );
    Script {
        scenario: "unreachable-refused",
        alert: format!("P1 {ns}/deploy/{w}: 0/1 ready, ErrImagePull."),
        pressure: format!(
            "{host} is the registry everyone pulls from. The channel is filling up, and a manager suggests recreating the pull secrets everywhere, just in case."
        ),
        rounds: vec![
            round(
                format!("The {w} pod cannot pull {}.", f.image),
                'C',
                [
                    (
                        format!(
                            "kubectl create secret docker-registry regcred -n {ns} --docker-server={host} --docker-username=\"$REGISTRY_USER\" --docker-password=\"$REGISTRY_PASSWORD\""
                        ),
                        shows(
                            "secret/regcred created",
                            "The pods do not even reference it, and it would not matter if they did: the pull fails before any credential is sent.",
                        ),
                        8,
                    ),
                    restart_choice(
                        f,
                        "ErrImagePull",
                        "New pod, same failure, and the back-off starts over.",
                        5,
                    ),
                    (
                        describe_action(f),
                        shows(
                            pull_events(f, &refused),
                            &format!("`connection refused`: the name resolved ({ip}), and nothing listens on port 443 there. No registry answered at all."),
                        ),
                        2,
                    ),
                    node_disk_choice(f, 6),
                ],
            ),
            round(
                format!("From the node, {host} ({ip}) refuses connections on 443."),
                'B',
                [
                    (
                        "Wait for the kubelet's next retry".into(),
                        shows(
                            "",
                            "The kubelet keeps retrying every 5 minutes, and meanwhile nobody who can fix the registry knows it is down.",
                        ),
                        20,
                    ),
                    (
                        format!(
                            "kubectl run pullfix-nettest --rm -it --restart=Never --image=busybox:1.36 -n {ns} -- wget -S -O- https://{host}/v2/"
                        ),
                        shows(
                            format!(
                                "Connecting to {host} ({ip}:443)\nwget: can't connect to remote host ({ip}): Connection refused\npod \"pullfix-nettest\" deleted\npod {ns}/pullfix-nettest terminated (Error)"
                            ),
                            "Refused from inside the cluster as well. Cluster DNS works; the registry's endpoint does not. This is not something a secret or a restart can change.",
                        ),
                        3,
                    ),
                    (
                        format!("kubectl set image {} {w}={path}:{tag} -n {ns}", f.deploy()),
                        shows(
                            format!("deployment.apps/{w} image updated"),
                            &format!("The pods now pull docker.io/{path}:{tag}, which does not exist: a second failure on top of the first."),
                        ),
                        10,
                    ),
                    (
                        "kubectl logs -n kube-system -l k8s-app=kube-dns --tail=20".into(),
                        shows(
                            "[INFO] plugin/reload: Running configuration SHA512 = 1b226df79860...\nCoreDNS-1.11.1",
                            &format!("No errors, and the event already showed an address ({ip}): name resolution was never the problem."),
                        ),
                        5,
                    ),
                ],
            ),
            round(
                format!("{host}:443 refuses connections from the nodes and from a pod. The registry is not yours to fix."),
                'A',
                [
                    (
                        format!("kubectl pullfix -n {ns}"),
                        shows(
                            format!(
                                "scan: 1 workload failing in {ns}: deploy/{w} 0/1 (P1)
cause: registry-unreachable (refused, high): dial tcp {ip}:443: connect: connection refused
no change in the cluster can fix this; nothing was written
escalate: page Platform/Infra on-call:
  \"Registry {host} refuses connections on 443 from the cluster; deploy/{w} in {ns} cannot pull. Cluster DNS resolves it; nothing in the cluster changed.\""
                            ),
                            "Diagnosed from the evidence, nothing touched, and the right people paged with a message they can act on.",
                        ),
                        4,
                    ),
                    (
                        "Recreate the pull secrets in every namespace".into(),
                        shows(
                            "",
                            "Dozens of writes to credentials during an incident, each a chance to break something that works, and not one of them reaches a registry that refuses connections.",
                        ),
                        15,
                    ),
                    (
                        "Restart every failing deployment every few minutes".into(),
                        shows(
                            "",
                            "Each restart resets the back-off and sends another burst of connection attempts at a registry that is down. Nothing recovers until it is back.",
                        ),
                        10,
                    ),
                    (
                        format!("Add a hostAliases entry sending {host} to an address from an old wiki page"),
                        shows(
                            "",
                            "Pods would pull from a host nobody can vouch for: a certificate mismatch at best, stale or foreign images at worst.",
                        ),
                        25,
                    ),
                ],
            ),
        ],
        lesson: format!(
            "`connection refused`, `no such host` and `i/o timeout` happen before any credential or tag is involved, so secrets, restarts and rollbacks change nothing. Confirm from inside the cluster, leave the cluster alone, and escalate to whoever owns the registry or the network, with the evidence (kubectl pullfix -n {ns} writes that message for you)."
        ),
    }
}

// ---------------------------------------------------------------------------
// Playing.

/// How a play went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Minutes spent, wrong turns included.
    pub minutes: u32,
    /// Minutes of the best path through the rounds played.
    pub optimal_minutes: u32,
    /// `Round N: K) action (+M min)`, in order.
    pub wrong_turns: Vec<String>,
    /// Rounds completed (the best choice found).
    pub rounds_played: usize,
    /// All rounds played (false when the input ended early).
    pub finished: bool,
}

/// Minutes of the best path through a whole script.
pub fn optimal_minutes(script: &Script) -> u32 {
    script
        .rounds
        .iter()
        .flat_map(|r| r.choices.iter().filter(|c| c.best))
        .map(|c| c.minutes)
        .sum()
}

const WIDTH: usize = 78;

/// Word-wraps `text` to [`WIDTH`], each line starting with `first` (then
/// `rest`).
fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out
}

/// A consequence for the terminal: output indented as is, notes wrapped.
fn render_consequence(output: &str, note: &str) -> String {
    let mut s = String::new();
    for line in output.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    if !note.is_empty() {
        s.push_str(&wrap(note, "  → ", "    "));
        s.push('\n');
    }
    s
}

/// Plays a script: reads one letter per round from `input` (re-asks on
/// anything else; EOF = stop with what was played), writes to `out`;
/// `auto` plays the best path without reading (for --yes / no TTY). `show`
/// lets the sandbox replace a consequence's output with the real output of
/// the command against the sandbox (return None to keep the scripted
/// text); it is called only for the choice made, and the caller decides
/// what is safe to run ([`Choice::is_read_only`]).
pub fn play(
    script: &Script,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    auto: bool,
    show: &mut dyn FnMut(&Choice) -> Option<String>,
) -> std::io::Result<Outcome> {
    let mut outcome = Outcome {
        minutes: 0,
        optimal_minutes: 0,
        wrong_turns: Vec::new(),
        rounds_played: 0,
        finished: false,
    };
    writeln!(out, "\n== Incident replay: {} ==\n", script.scenario)?;
    writeln!(out, "{}", wrap(&script.alert, "ALERT     ", "          "))?;
    writeln!(
        out,
        "{}",
        wrap(&script.pressure, "PRESSURE  ", "          ")
    )?;
    let total = script.rounds.len();
    for (i, round) in script.rounds.iter().enumerate() {
        let n = i + 1;
        writeln!(out, "\n-- Round {n} of {total} --\n")?;
        writeln!(out, "{}\n", wrap(&round.situation, "", ""))?;
        for c in &round.choices {
            writeln!(
                out,
                "{}",
                wrap(&c.action, &format!("  {}) ", c.key), "     ")
            )?;
        }
        let mut tried: Vec<char> = Vec::new();
        let best = loop {
            let choice = if auto {
                match round.choices.iter().find(|c| c.best) {
                    Some(c) => {
                        writeln!(out, "\nYour move [A-D]: {} (auto)", c.key)?;
                        c
                    }
                    None => break None,
                }
            } else {
                write!(out, "\nYour move [A-D]: ")?;
                out.flush()?;
                let mut line = String::new();
                if input.read_line(&mut line)? == 0 {
                    writeln!(out, "\n(input ended: stopping at round {n})")?;
                    return Ok(outcome);
                }
                let answer = line.trim().to_ascii_uppercase();
                let mut chars = answer.chars();
                let picked = match (chars.next(), chars.next()) {
                    (Some(k), None) => round.choices.iter().find(|c| c.key == k),
                    _ => None,
                };
                let Some(c) = picked else {
                    write!(out, "Answer with one letter, A to D.")?;
                    continue;
                };
                if tried.contains(&c.key) {
                    write!(out, "You tried {} already; pick another.", c.key)?;
                    continue;
                }
                c
            };
            tried.push(choice.key);
            writeln!(
                out,
                "\n{}",
                wrap(&choice.action, &format!("  {}) ", choice.key), "     ")
            )?;
            let output = show(choice).unwrap_or_else(|| choice.output());
            write!(out, "{}", render_consequence(&output, &choice.note()))?;
            outcome.minutes += choice.minutes;
            if choice.best {
                writeln!(
                    out,
                    "\n  Right call: +{} min (clock: {} min).",
                    choice.minutes, outcome.minutes
                )?;
                break Some(choice);
            }
            outcome.wrong_turns.push(format!(
                "Round {n}: {}) {} (+{} min)",
                choice.key, choice.action, choice.minutes
            ));
            writeln!(
                out,
                "\n  Wrong turn: +{} min (clock: {} min). The incident is still on; choose again.",
                choice.minutes, outcome.minutes
            )?;
        };
        if let Some(best) = best {
            outcome.optimal_minutes += best.minutes;
        }
        let others: Vec<&Choice> = round
            .choices
            .iter()
            .filter(|c| !tried.contains(&c.key))
            .collect();
        if !others.is_empty() {
            writeln!(out, "\n  What the other moves would have shown:")?;
            for c in others {
                writeln!(
                    out,
                    "\n{}",
                    wrap(
                        &format!("{} (+{} min)", c.action, c.minutes),
                        &format!("  {}) ", c.key),
                        "     "
                    )
                )?;
                write!(out, "{}", render_consequence(&c.output(), &c.note()))?;
            }
        }
        outcome.rounds_played = n;
    }
    outcome.finished = true;
    Ok(outcome)
}

/// The closing report: time against the optimal path, the wrong turns, the
/// reference path (the guided fix), the lesson.
pub fn damage_report(script: &Script, outcome: &Outcome) -> String {
    let mut s = format!("== Damage report: {} ==\n\n", script.scenario);
    let optimal = optimal_minutes(script);
    let worst: u32 = script
        .rounds
        .iter()
        .flat_map(|r| &r.choices)
        .map(|c| c.minutes)
        .sum();
    if outcome.finished {
        let extra = outcome.minutes.saturating_sub(optimal);
        s.push_str(&format!(
            "Time to resolution:   {} min (optimal path: {optimal} min, {})\n",
            outcome.minutes,
            if extra == 0 {
                "you matched it".to_string()
            } else {
                format!("+{extra} min")
            }
        ));
    } else {
        s.push_str(&format!(
            "Stopped in round {} of {}: {} min spent (the optimal path through the rounds completed: {} min; the whole incident: {optimal} min)\n",
            outcome.rounds_played + 1,
            script.rounds.len(),
            outcome.minutes,
            outcome.optimal_minutes
        ));
    }
    s.push_str(&format!(
        "Worst case:           {worst} min (every wrong move taken)\nWrong turns:          {}\n",
        outcome.wrong_turns.len()
    ));
    for t in &outcome.wrong_turns {
        s.push_str(&wrap(t, "  - ", "    "));
        s.push('\n');
    }
    s.push_str("\nThe optimal path:\n");
    for (i, r) in script.rounds.iter().enumerate() {
        if let Some(c) = r.choices.iter().find(|c| c.best) {
            s.push_str(&wrap(
                &format!("{} ({} min)", c.action, c.minutes),
                &format!("  {}. ", i + 1),
                "     ",
            ));
            s.push('\n');
        }
    }
    if let Some(tool) = reference_command(script) {
        s.push_str(&format!("\nThe guided fix is the reference path: {tool}\n"));
    }
    s.push('\n');
    s.push_str(&wrap(&script.lesson, "Lesson: ", "        "));
    s.push('\n');
    s
}

/// The `kubectl pullfix` command on the optimal path (the last one, when
/// several).
fn reference_command(script: &Script) -> Option<&str> {
    script
        .rounds
        .iter()
        .rev()
        .flat_map(|r| r.choices.iter().filter(|c| c.best))
        .find(|c| c.action.starts_with("kubectl pullfix"))
        .map(|c| c.action.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> LabEnv {
        LabEnv {
            registry: "127.0.0.1:36500".into(),
            user: "pullfix".into(),
            password: "s3cr3t-Passw0rd-lab".into(),
            token_registry: "127.0.0.1:36501".into(),
            token_user: "tokenuser".into(),
            token_password: "tokenPassw0rd-lab".into(),
            anon_registry: "127.0.0.1:36503".into(),
            untrusted_registry: "127.0.0.1:36507".into(),
            ecr_password: "123456789012-auth-token".into(),
        }
    }

    fn all_scripts() -> Vec<Script> {
        scenarios()
            .iter()
            .map(|id| {
                let facts = Facts::for_scenario(id, "shop", &env());
                script(id, &facts).unwrap_or_else(|| panic!("no script for {id}"))
            })
            .collect()
    }

    fn texts(s: &Script) -> Vec<String> {
        let mut t = vec![s.alert.clone(), s.pressure.clone(), s.lesson.clone()];
        for r in &s.rounds {
            t.push(r.situation.clone());
            for c in &r.choices {
                t.push(c.action.clone());
                t.push(c.consequence.clone());
            }
        }
        t
    }

    #[test]
    fn every_script_has_four_choices_a_to_d_with_exactly_one_best() {
        for s in all_scripts() {
            assert!((3..=4).contains(&s.rounds.len()), "{}", s.scenario);
            for (i, r) in s.rounds.iter().enumerate() {
                let keys: Vec<char> = r.choices.iter().map(|c| c.key).collect();
                assert_eq!(keys, ['A', 'B', 'C', 'D'], "{} round {}", s.scenario, i + 1);
                assert_eq!(
                    r.choices.iter().filter(|c| c.best).count(),
                    1,
                    "{} round {}",
                    s.scenario,
                    i + 1
                );
                for c in &r.choices {
                    assert!(c.minutes > 0, "{} {}", s.scenario, c.action);
                    assert!(!c.note().is_empty(), "{} {}: no note", s.scenario, c.action);
                }
            }
        }
    }

    #[test]
    fn optimal_total_is_the_sum_of_the_best_choices() {
        for s in all_scripts() {
            let sum: u32 = s
                .rounds
                .iter()
                .map(|r| r.choices.iter().find(|c| c.best).unwrap().minutes)
                .sum();
            assert_eq!(optimal_minutes(&s), sum);
            let mut input: &[u8] = b"";
            let outcome = play(&s, &mut input, &mut Vec::new(), true, &mut |_| None).unwrap();
            assert_eq!(outcome.minutes, sum, "{}", s.scenario);
            assert_eq!(outcome.optimal_minutes, sum);
            assert!(outcome.finished);
        }
    }

    #[test]
    fn last_round_follows_the_tool_and_the_report_points_at_it() {
        for s in all_scripts() {
            let reference = reference_command(&s)
                .unwrap_or_else(|| panic!("{}: no pullfix command on the path", s.scenario));
            assert!(reference.contains("-n shop"), "{reference}");
            let report = damage_report(
                &s,
                &Outcome {
                    minutes: 1,
                    optimal_minutes: 1,
                    wrong_turns: vec![],
                    rounds_played: s.rounds.len(),
                    finished: true,
                },
            );
            assert!(report.contains(reference), "{report}");
            if s.scenario != "ecr-expired" {
                let last = s.rounds.last().unwrap();
                let best = last.choices.iter().find(|c| c.best).unwrap();
                assert!(best.action.starts_with("kubectl pullfix"), "{}", s.scenario);
            }
        }
        // The incident replay ends with the token refreshed, then the
        // automation repaired.
        let ecr = &all_scripts()[0];
        let best: Vec<&str> = ecr
            .rounds
            .iter()
            .map(|r| r.choices.iter().find(|c| c.best).unwrap().action.as_str())
            .collect();
        assert!(best[2].starts_with("kubectl pullfix fix"), "{best:?}");
        assert!(best[3].contains("logs job/ecr-token-refresh"), "{best:?}");
    }

    #[test]
    fn play_counts_wrong_turns_then_the_right_one() {
        let facts = Facts::for_scenario("wrong-tag", "shop", &env());
        let s = script("wrong-tag", &facts).unwrap();
        // Round 1: A (wrong), then junk, then A again (already tried), then
        // C (right); round 2: A (right); round 3: D (wrong), B (right).
        let mut input: &[u8] = b"a\nxyz\n\nA\nc\nA\nd\n b \n";
        let mut out = Vec::new();
        let mut shown = Vec::new();
        let outcome = play(&s, &mut input, &mut out, false, &mut |c| {
            shown.push(c.key);
            (c.key == 'C').then(|| "REAL OUTPUT".to_string())
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let m = |r: usize, k: char| {
            s.rounds[r]
                .choices
                .iter()
                .find(|c| c.key == k)
                .unwrap()
                .minutes
        };
        assert_eq!(
            outcome.minutes,
            m(0, 'A') + m(0, 'C') + m(1, 'A') + m(2, 'D') + m(2, 'B')
        );
        assert_eq!(outcome.optimal_minutes, optimal_minutes(&s));
        assert_eq!(outcome.wrong_turns.len(), 2);
        assert!(outcome.wrong_turns[0].starts_with("Round 1: A) kubectl rollout restart"));
        assert!(outcome.wrong_turns[1].starts_with("Round 3: D) "));
        assert!(outcome.finished);
        assert_eq!(outcome.rounds_played, 3);
        assert_eq!(shown, ['A', 'C', 'A', 'D', 'B']);
        assert!(text.contains("Answer with one letter"), "{text}");
        assert!(text.contains("You tried A already"), "{text}");
        assert!(text.contains("REAL OUTPUT"), "{text}");
        assert!(text.contains("What the other moves would have shown"));
        let report = damage_report(&s, &outcome);
        assert!(report.contains(&format!("+{} min", outcome.minutes - optimal_minutes(&s))));
        assert!(report.contains("Round 1: A)"), "{report}");
        assert!(report.contains("Lesson: "), "{report}");
    }

    #[test]
    fn eof_stops_with_what_was_played() {
        let facts = Facts::for_scenario("ecr-expired", "shop", &env());
        let s = script("ecr-expired", &facts).unwrap();
        let mut input: &[u8] = b"A\nB\n";
        let mut out = Vec::new();
        let outcome = play(&s, &mut input, &mut out, false, &mut |_| None).unwrap();
        assert!(!outcome.finished);
        assert_eq!(outcome.rounds_played, 1);
        let a = s.rounds[0].choices[0].minutes;
        let b = s.rounds[0].choices[1].minutes;
        assert_eq!(outcome.minutes, a + b);
        assert_eq!(outcome.optimal_minutes, b);
        assert_eq!(outcome.wrong_turns.len(), 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("input ended"), "{text}");
        let report = damage_report(&s, &outcome);
        assert!(report.contains("Stopped in round 2 of 4"), "{report}");

        let mut empty: &[u8] = b"";
        let outcome = play(&s, &mut empty, &mut Vec::new(), false, &mut |_| None).unwrap();
        assert_eq!((outcome.minutes, outcome.rounds_played), (0, 0));
    }

    /// Input that panics when read.
    struct NoInput;
    impl std::io::Read for NoInput {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("auto mode read input")
        }
    }
    impl BufRead for NoInput {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            panic!("auto mode read input")
        }
        fn consume(&mut self, _: usize) {}
    }

    #[test]
    fn auto_plays_the_best_path_without_reading() {
        for s in all_scripts() {
            let mut out = Vec::new();
            let outcome = play(&s, &mut NoInput, &mut out, true, &mut |_| None).unwrap();
            assert!(outcome.wrong_turns.is_empty());
            assert_eq!(outcome.minutes, optimal_minutes(&s));
            assert_eq!(outcome.rounds_played, s.rounds.len());
            let report = damage_report(&s, &outcome);
            assert!(report.contains("you matched it"), "{report}");
        }
    }

    fn looks_like_password(text: &str) -> Option<String> {
        let lower = text.to_ascii_lowercase();
        // `password=VALUE` / `password: VALUE` with a literal value.
        for (i, _) in lower.match_indices("password") {
            let rest = &text[i + "password".len()..];
            if let Some(v) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(": ")) {
                let v = v.trim_start_matches(['"', '\'']);
                if !(v.starts_with('$') || v.starts_with('<') || v.is_empty()) {
                    return Some(rest.chars().take(30).collect());
                }
            }
        }
        // A long token-like run: letters and digits, mixed case.
        let mut run = String::new();
        for ch in text.chars().chain(std::iter::once(' ')) {
            if ch.is_ascii_alphanumeric() || ch == '+' || ch == '=' {
                run.push(ch);
                continue;
            }
            if run.len() >= 20
                && run.chars().any(|c| c.is_ascii_digit())
                && run.chars().any(|c| c.is_ascii_uppercase())
                && run.chars().any(|c| c.is_ascii_lowercase())
            {
                return Some(run);
            }
            run.clear();
        }
        None
    }

    #[test]
    fn no_script_contains_a_password_looking_string() {
        let env = env();
        for s in all_scripts() {
            for t in texts(&s) {
                assert_eq!(looks_like_password(&t), None, "{}: {t}", s.scenario);
                for secret in [&env.password, &env.token_password, &env.ecr_password] {
                    assert!(!t.contains(secret.as_str()), "{}: {t}", s.scenario);
                }
                assert!(!t.contains("\"auth\""), "{}: {t}", s.scenario);
            }
        }
        // The checker itself catches what it should.
        assert!(looks_like_password("--docker-password=hunter2").is_some());
        assert!(looks_like_password("token eyJwYXlsb2FkIjoiQUFBQUJCQkJDQ0NDIn0").is_some());
        assert!(looks_like_password("--docker-password=\"$NEW_PASSWORD\"").is_none());
    }

    #[test]
    fn scripts_match_the_lab_scenarios_and_their_facts() {
        for id in scenarios() {
            assert!(crate::scenarios::find(id).is_ok(), "{id}");
        }
        assert!(script("tls-unknown-ca", &Facts::for_scenario("x", "shop", &env())).is_none());

        let ecr = Facts::for_scenario("ecr-expired", "shop", &env());
        assert_eq!(ecr.host(), ECR_HOST);
        assert_eq!(ecr.region(), "us-east-1");
        assert_eq!(ecr.replicas, 5);
        let s = script("ecr-expired", &ecr).unwrap();
        assert!(s.alert.contains("0/5"), "{}", s.alert);
        assert!(texts(&s).iter().any(|t| t.contains("12 h")));

        let stale = Facts::for_scenario("stale-secret-many-namespaces", "shop", &env());
        assert_eq!(stale.other_namespaces, ["shop-b", "shop-c"]);
        let s = script("stale-secret-many-namespaces", &stale).unwrap();
        assert!(texts(&s).iter().any(|t| t.contains("shop-c")));

        let partial = Facts::for_scenario("rotated-password-partial", "shop", &env());
        assert_eq!(partial.other_namespaces, ["shop-c"]);
        assert_eq!(partial.fixed_sibling.as_deref(), Some("shop-b"));
        assert_eq!(partial.replicas, 2);
        let s = script("rotated-password-partial", &partial).unwrap();
        assert!(s.alert.contains("0/2"), "{}", s.alert);
        assert!(texts(&s).iter().any(|t| t.contains("shop-b/regcred")));
        assert!(texts(&s).iter().any(|t| t.contains("shop-c/regcred")));

        let rotated = Facts::for_scenario("rotated-password", "shop", &env());
        assert_eq!(rotated.replicas, 2);
        assert!(rotated.other_namespaces.is_empty());
        let s = script("rotated-password", &rotated).unwrap();
        assert!(texts(&s).iter().any(|t| t.contains("--tls-verify=false")));

        let missing = Facts::for_scenario("no-pull-secrets", "shop", &env());
        assert_eq!(missing.replicas, 1);
        let s = script("no-pull-secrets", &missing).unwrap();
        assert!(
            texts(&s)
                .iter()
                .any(|t| t.contains("no basic auth credentials"))
        );

        let prefix = Facts::for_scenario("missing-prefix", "shop", &env());
        assert_eq!(prefix.full_image(), "docker.io/team/checkout:v2.1.0");
        assert_eq!(prefix.good_image(), "127.0.0.1:36500/team/checkout:v2.1.0");

        let rate = Facts::for_scenario("rate-limited", "shop", &env());
        assert_eq!(rate.full_image(), "docker.io/library/nginx:1.25");
        assert_eq!(
            rate.manifest_url(),
            "https://registry-1.docker.io/v2/library/nginx/manifests/1.25"
        );

        let tag = Facts::for_scenario("wrong-tag", "shop", &env());
        assert_eq!(
            tag.manifest_url(),
            "http://127.0.0.1:36500/v2/team/checkout/manifests/v2.1.9"
        );
        let s = script("wrong-tag", &tag).unwrap();
        assert!(texts(&s).iter().any(|t| t.contains("\"v2.1.0\"")));

        let refused = Facts::for_scenario("unreachable-refused", "shop", &env());
        let s = script("unreachable-refused", &refused).unwrap();
        // The right path never touches a secret.
        for r in &s.rounds {
            let best = r.choices.iter().find(|c| c.best).unwrap();
            assert!(!best.action.contains("secret"), "{}", best.action);
        }
    }

    #[test]
    fn rotated_password_partial_ends_with_the_tool_and_never_copies_yaml() {
        let facts = Facts::for_scenario("rotated-password-partial", "shop", &env());
        let s = script("rotated-password-partial", &facts).unwrap();
        let best: Vec<&Choice> = s
            .rounds
            .iter()
            .map(|r| r.choices.iter().find(|c| c.best).unwrap())
            .collect();
        let last = best.last().unwrap();
        assert!(
            last.action.contains("kubectl pullfix fix"),
            "{}",
            last.action
        );
        assert!(last.action.contains("-n shop"), "{}", last.action);
        // The tool copies from the sibling that tests valid and updates the
        // other stale copy in the same pass.
        assert!(last.consequence.contains("shop-b/regcred"));
        assert!(last.consequence.contains("shop-c/regcred"));
        let copies_yaml = |a: &str| {
            a.split('|')
                .any(|part| part.contains("kubectl get secret") && part.contains("-o yaml"))
        };
        for c in &best {
            assert!(!copies_yaml(&c.action), "{}", c.action);
        }
        // The trap is there, as a wrong move.
        assert!(
            s.rounds
                .iter()
                .flat_map(|r| &r.choices)
                .any(|c| !c.best && copies_yaml(&c.action))
        );
        assert!(
            !s.rounds[0]
                .choices
                .iter()
                .find(|c| c.best)
                .unwrap()
                .action
                .contains("restart")
        );
    }

    #[test]
    fn choices_split_output_and_note_and_know_what_only_reads() {
        let facts = Facts::for_scenario("secret-opaque", "shop", &env());
        let s = script("secret-opaque", &facts).unwrap();
        let get = &s.rounds[1].choices[0];
        assert!(get.output().contains("Opaque"));
        assert!(get.note().contains("kubernetes.io/dockerconfigjson"));
        assert!(get.is_read_only());
        let apply = &s.rounds[2].choices[0];
        assert!(!apply.is_read_only(), "{}", apply.action);
        let restart = &s.rounds[0].choices[2];
        assert!(!restart.is_read_only(), "{}", restart.action);
    }

    #[test]
    fn wrap_keeps_lines_short() {
        let w = wrap(&"word ".repeat(60), "  → ", "    ");
        assert!(w.lines().all(|l| l.chars().count() <= WIDTH), "{w}");
        assert!(w.starts_with("  → word"));
        assert!(w.lines().skip(1).all(|l| l.starts_with("    word")));
    }
}
