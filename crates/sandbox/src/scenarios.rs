//! Declarative scenario fixtures. Each one builds the Kubernetes objects of
//! one failure from the seeds (wrong tag, missing prefix, rotated password,
//! expired ECR token, ...) inside its own namespace, plus the plain-kubectl
//! commands a responder would run to fix it, so lab tests can prove the
//! failure and the fix both behave as in a real cluster.
//!
//! Registry addresses and credentials come from the lab's environment
//! (`scripts/lab env`), read once into [`LabEnv`].

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::kubelet::PRELOAD_ANNOTATION;
use pullfix::registry::keyring::{Credential, dockerconfigjson};

/// The ECR registry host the lab maps onto its AWS-paired registry.
pub const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/// A host that does not resolve (mapped to `nxdomain`).
pub const NXDOMAIN_HOST: &str = "registry.nxdomain.example";
/// A host where nothing listens.
pub const REFUSED_HOST: &str = "registry.unreachable.example";
/// A host that accepts connections and never answers.
pub const TIMEOUT_HOST: &str = "registry.blackhole.example";
/// Taint and label of the two nodes reserved for the `IfNotPresent` scenario.
pub const MASKING_POOL: &str = "lab.pullfix.dev/pool";

/// The lab's registries and credentials, from `scripts/lab env`.
#[derive(Clone)]
pub struct LabEnv {
    pub registry: String,
    pub user: String,
    pub password: String,
    pub token_registry: String,
    pub token_user: String,
    pub token_password: String,
    pub anon_registry: String,
    pub untrusted_registry: String,
    pub ecr_password: String,
}

/// Never shows the passwords.
impl std::fmt::Debug for LabEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabEnv")
            .field("registry", &self.registry)
            .field("user", &self.user)
            .field("token_registry", &self.token_registry)
            .field("token_user", &self.token_user)
            .field("anon_registry", &self.anon_registry)
            .field("untrusted_registry", &self.untrusted_registry)
            .finish_non_exhaustive()
    }
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!("environment variable {name} is not set\nhelp: run `eval \"$(scripts/lab env)\"` after `scripts/lab up`")
    })
}

impl LabEnv {
    /// Reads the lab's environment variables.
    pub fn from_env() -> anyhow::Result<LabEnv> {
        Ok(LabEnv {
            registry: var("PULLFIX_LAB_REGISTRY")?,
            user: var("PULLFIX_LAB_REGISTRY_USER")?,
            password: var("PULLFIX_LAB_REGISTRY_PASSWORD")?,
            token_registry: var("PULLFIX_LAB_TOKEN_REGISTRY")?,
            token_user: var("PULLFIX_LAB_TOKEN_USER")?,
            token_password: var("PULLFIX_LAB_TOKEN_PASSWORD")?,
            anon_registry: var("PULLFIX_LAB_ANON_REGISTRY")?,
            untrusted_registry: var("PULLFIX_LAB_UNTRUSTED_REGISTRY")?,
            ecr_password: std::env::var("PULLFIX_LAB_ECR_PASSWORD")
                .unwrap_or_else(|_| "123456789012-auth-token".to_string()),
        })
    }

    fn good(&self) -> Credential {
        Credential::new(self.user.clone(), self.password.clone())
    }
}

/// The lab's real node (kubelet + containerd, `scripts/lab.d/realnode.sh`)
/// and the key of the taint that keeps other pods off it.
pub const REAL_NODE: &str = "lab-real";
pub const REAL_NODE_TAINT: &str = "lab.pullfix.dev/real";

/// Where a scenario's pods run.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Pin pods to this node (`kubernetes.io/hostname`).
    pub node: Option<String>,
}

/// One failure from the runbook, ready to set up.
pub struct Scenario {
    /// Stable identifier (`wrong-tag`).
    pub id: &'static str,
    /// One line: what happened.
    pub story: &'static str,
    /// The workload that fails (`deploy/checkout`).
    pub workload: &'static str,
    build: fn(&LabEnv, &str) -> Vec<Value>,
    fix: Option<fn(&LabEnv, &str) -> Vec<String>>,
}

impl Scenario {
    /// The objects this scenario creates in namespace `ns`.
    pub fn objects(&self, env: &LabEnv, ns: &str, placement: &Placement) -> Vec<Value> {
        let mut objects = (self.build)(env, ns);
        if let Some(node) = &placement.node {
            for o in &mut objects {
                if let Some(spec) = pod_spec_mut(o)
                    && spec.get("nodeSelector").is_none()
                {
                    spec["nodeSelector"] = json!({"kubernetes.io/hostname": node});
                    // The lab's real node takes only pods that tolerate it.
                    if node == REAL_NODE {
                        let t = json!({"key": REAL_NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"});
                        match spec["tolerations"].as_array_mut() {
                            Some(list) => list.push(t),
                            None => spec["tolerations"] = json!([t]),
                        }
                    }
                }
            }
        }
        objects
    }

    /// Shell commands (plain kubectl, as the seeds give them) that fix the
    /// scenario; `None` when the fix is outside the cluster (an outage).
    pub fn fix_commands(&self, env: &LabEnv, ns: &str) -> Option<Vec<String>> {
        self.fix.map(|f| f(env, ns))
    }
}

fn pod_spec_mut(o: &mut Value) -> Option<&mut Value> {
    match o["kind"].as_str()? {
        "Pod" => o.get_mut("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => o.pointer_mut("/spec/template/spec"),
        "CronJob" => o.pointer_mut("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

fn namespace(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
           "labels": {"lab.pullfix.dev/scenario": "true"}}})
}

fn pull_secret(name: &str, server: &str, cred: &Credential) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
           "type": "kubernetes.io/dockerconfigjson",
           "data": {".dockerconfigjson": STANDARD.encode(dockerconfigjson(server, cred))}})
}

fn deployment(name: &str, image: &str, replicas: u32, secrets: &[&str]) -> Value {
    let secrets: Vec<Value> = secrets.iter().map(|s| json!({"name": s})).collect();
    // `Always`, so one scenario's successful pull (cached on the node) does
    // not mask another's failure; the masking scenario opts out.
    let mut spec =
        json!({"containers": [{"name": name, "image": image, "imagePullPolicy": "Always"}]});
    if !secrets.is_empty() {
        spec["imagePullSecrets"] = json!(secrets);
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})
}

fn recreate_secret(env: &LabEnv, ns: &str, name: &str) -> String {
    format!(
        "kubectl create secret docker-registry {name} -n {ns} --docker-server={} --docker-username={} --docker-password={} --dry-run=client -o yaml | kubectl apply -f -",
        env.registry, env.user, env.password
    )
}

/// The seeds' fix for a broken regcred: recreate it, restart checkout.
fn recreate_regcred_and_restart(env: &LabEnv, ns: &str) -> Vec<String> {
    let mut c = vec![recreate_secret(env, ns, "regcred")];
    c.extend(restart(ns, "checkout"));
    c
}

fn restart(ns: &str, deploy: &str) -> Vec<String> {
    vec![
        format!("kubectl rollout restart deployment/{deploy} -n {ns}"),
        format!("kubectl rollout status deployment/{deploy} -n {ns} --timeout=90s"),
    ]
}

fn checkout(env: &LabEnv, tag: &str) -> String {
    format!("{}/team/checkout:{tag}", env.registry)
}

/// The password from before the rotation, distinct per scenario namespace
/// (so a fix that updates "the same stale secret elsewhere" stays within one
/// scenario).
/// A short tag of a namespace's name, for credentials that must differ
/// between namespaces.
fn ns_tag(ns: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(ns.as_bytes())[..4])
}

fn wrong(env: &LabEnv, ns: &str) -> Credential {
    let tag = ns_tag(ns);
    Credential::new(env.user.clone(), format!("old-password-{tag}"))
}

/// Every scenario, in the runbook's order of causes.
pub fn all() -> Vec<Scenario> {
    [
        image_reference(),
        missing_or_broken_secrets(),
        stale_credentials(),
        service_account_and_ecr(),
        unreachable(),
        registry_answers(),
        node_and_pod(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The image reference itself is wrong.
fn image_reference() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "wrong-tag",
            story: "checkout was deployed with tag v2.1.9, which was never pushed (v2.1.0 exists)",
            workload: "deploy/checkout",
            build: |env, _| {
                vec![
                    pull_secret("regcred", &env.registry, &env.good()),
                    deployment("checkout", &checkout(env, "v2.1.9"), 2, &["regcred"]),
                ]
            },
            fix: Some(|env, ns| {
                let mut c = vec![format!(
                    "kubectl set image deployment/checkout checkout={} -n {ns}",
                    checkout(env, "v2.1.0")
                )];
                c.push(format!(
                    "kubectl rollout status deployment/checkout -n {ns} --timeout=90s"
                ));
                c
            }),
        },
        Scenario {
            id: "missing-prefix",
            story: "the image has no registry prefix, so nodes pull team/checkout from Docker Hub instead of the private registry",
            workload: "deploy/checkout",
            build: |env, _| {
                vec![
                    pull_secret("regcred", &env.registry, &env.good()),
                    deployment("checkout", "team/checkout:v2.1.0", 2, &["regcred"]),
                ]
            },
            fix: Some(|env, ns| {
                vec![
                    format!(
                        "kubectl set image deployment/checkout checkout={} -n {ns}",
                        checkout(env, "v2.1.0")
                    ),
                    format!("kubectl rollout status deployment/checkout -n {ns} --timeout=90s"),
                ]
            }),
        },
    ]
}

/// No pull secret, or one the kubelet cannot use.
fn missing_or_broken_secrets() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "no-pull-secrets",
            story: "the private image is pulled with no imagePullSecrets at all",
            workload: "deploy/checkout",
            build: |env, _| vec![deployment("checkout", &checkout(env, "v2.1.0"), 1, &[])],
            fix: Some(|env, ns| {
                let mut c = vec![
                    recreate_secret(env, ns, "regcred"),
                    format!(
                        "kubectl patch deployment checkout -n {ns} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"imagePullSecrets\":[{{\"name\":\"regcred\"}}]}}}}}}}}'"
                    ),
                ];
                c.push(format!(
                    "kubectl rollout status deployment/checkout -n {ns} --timeout=90s"
                ));
                c
            }),
        },
        Scenario {
            id: "secret-missing",
            story: "the pod references pull secret regcred, which does not exist in its namespace",
            workload: "deploy/checkout",
            build: |env, _| {
                vec![deployment(
                    "checkout",
                    &checkout(env, "v2.1.0"),
                    1,
                    &["regcred"],
                )]
            },
            fix: Some(recreate_regcred_and_restart),
        },
        Scenario {
            id: "secret-opaque",
            story: "regcred holds the right .dockerconfigjson but has type Opaque, so the kubelet ignores it",
            workload: "deploy/checkout",
            build: |env, _| {
                let mut s = pull_secret("regcred", &env.registry, &env.good());
                s["type"] = json!("Opaque");
                vec![
                    s,
                    deployment("checkout", &checkout(env, "v2.1.0"), 1, &["regcred"]),
                ]
            },
            fix: Some(|env, ns| {
                let mut c = vec![
                    format!("kubectl delete secret regcred -n {ns}"),
                    recreate_secret(env, ns, "regcred"),
                ];
                c.extend(restart(ns, "checkout"));
                c
            }),
        },
        Scenario {
            id: "wrong-registry-key",
            story: "regcred's auths key names the registry host without its port, so it never matches the image",
            workload: "deploy/checkout",
            build: |env, _| {
                let host = env
                    .registry
                    .rsplit_once(':')
                    .map_or(env.registry.as_str(), |(h, _)| h);
                vec![
                    pull_secret("regcred", host, &env.good()),
                    deployment("checkout", &checkout(env, "v2.1.0"), 1, &["regcred"]),
                ]
            },
            fix: Some(recreate_regcred_and_restart),
        },
        Scenario {
            id: "secret-undecodable",
            story: "someone added a mirror to regcred by hand and pasted its password into `auth` unencoded: the kubelet cannot decode regcred and fails every pull, though its credential for the registry is right",
            workload: "deploy/checkout",
            build: |env, _| {
                let mut config: Value =
                    serde_json::from_str(&dockerconfigjson(&env.registry, &env.good()))
                        .unwrap_or_default();
                if let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) {
                    auths.insert("mirror.internal.example".into(), json!({"auth": "hunter2"}));
                }
                let mut s = pull_secret("regcred", &env.registry, &env.good());
                s["data"][".dockerconfigjson"] = json!(STANDARD.encode(config.to_string()));
                vec![
                    s,
                    deployment("checkout", &checkout(env, "v2.1.0"), 1, &["regcred"]),
                ]
            },
            fix: Some(recreate_regcred_and_restart),
        },
    ]
}

/// A credential the registry no longer takes.
fn stale_credentials() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "rotated-password",
            story: "the registry password was rotated; regcred still holds the old one",
            workload: "deploy/checkout",
            build: |env, ns| {
                vec![
                    pull_secret("regcred", &env.registry, &wrong(env, ns)),
                    deployment("checkout", &checkout(env, "v2.1.0"), 2, &["regcred"]),
                ]
            },
            fix: Some(recreate_regcred_and_restart),
        },
        Scenario {
            id: "stale-secret-many-namespaces",
            story: "the same stale regcred sits in this namespace and its two siblings (-b, -c); all three deployments fail",
            workload: "deploy/checkout",
            build: |env, ns| {
                let mut out = Vec::new();
                for (i, sibling) in [String::new(), format!("{ns}-b"), format!("{ns}-c")]
                    .into_iter()
                    .enumerate()
                {
                    let target = if i == 0 { ns.to_string() } else { sibling };
                    if i > 0 {
                        out.push(namespace(&target));
                    }
                    let mut s = pull_secret("regcred", &env.registry, &wrong(env, ns));
                    s["metadata"]["namespace"] = json!(target);
                    let mut d = deployment("checkout", &checkout(env, "v2.1.0"), 1, &["regcred"]);
                    d["metadata"]["namespace"] = json!(target);
                    out.extend([s, d]);
                }
                out
            },
            fix: Some(|env, ns| {
                let mut c = Vec::new();
                for target in [ns.to_string(), format!("{ns}-b"), format!("{ns}-c")] {
                    c.push(recreate_secret(env, &target, "regcred"));
                    c.extend(restart(&target, "checkout"));
                }
                c
            }),
        },
        Scenario {
            id: "rotated-password-partial",
            story: "the registry password was rotated and someone fixed regcred in the -b sibling only; this namespace and -c still hold the old one",
            workload: "deploy/checkout",
            build: |env, ns| {
                let mut out = Vec::new();
                for (i, target) in [ns.to_string(), format!("{ns}-b"), format!("{ns}-c")]
                    .into_iter()
                    .enumerate()
                {
                    if i > 0 {
                        out.push(namespace(&target));
                    }
                    let cred = if i == 1 { env.good() } else { wrong(env, ns) };
                    let mut s = pull_secret("regcred", &env.registry, &cred);
                    s["metadata"]["namespace"] = json!(target);
                    let mut d = deployment("checkout", &checkout(env, "v2.1.0"), 2, &["regcred"]);
                    d["metadata"]["namespace"] = json!(target);
                    out.extend([s, d]);
                }
                out
            },
            fix: Some(|env, ns| {
                let mut c = Vec::new();
                for target in [ns.to_string(), format!("{ns}-c")] {
                    c.push(recreate_secret(env, &target, "regcred"));
                    c.extend(restart(&target, "checkout"));
                }
                c
            }),
        },
    ]
}

/// The secret on the wrong ServiceAccount; an expired ECR token.
fn service_account_and_ecr() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "sa-secret-only",
            story: "regcred is attached to the default ServiceAccount, but checkout runs as ServiceAccount checkout, which has none",
            workload: "deploy/checkout",
            build: |env, _| {
                let mut d = deployment("checkout", &checkout(env, "v2.1.0"), 1, &[]);
                d["spec"]["template"]["spec"]["serviceAccountName"] = json!("checkout");
                vec![
                    pull_secret("regcred", &env.registry, &env.good()),
                    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"},
                           "imagePullSecrets": [{"name": "regcred"}]}),
                    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "checkout"}}),
                    d,
                ]
            },
            fix: Some(|_, ns| {
                let mut c = vec![format!(
                    "kubectl patch serviceaccount checkout -n {ns} -p '{{\"imagePullSecrets\":[{{\"name\":\"regcred\"}}]}}'"
                )];
                c.extend(restart(ns, "checkout"));
                c
            }),
        },
        Scenario {
            id: "ecr-expired",
            story: "the ECR token in regcred expired 14 h ago; the ecr-token-refresh CronJob's last two Jobs failed",
            workload: "deploy/checkout",
            build: |env, ns| {
                // A token in ECR's format (base64 JSON with `expiration`),
                // issued 14 h ago, so it expired 2 h ago; its payload is this
                // namespace's own, so a fix of another namespace's stale
                // token (one confirmation for every namespace holding the
                // same one) never reaches this scenario.
                let expired_at = chrono::Utc::now().timestamp() - 2 * 3600;
                let tag = ns_tag(ns);
                let stale = Credential::new("AWS", STANDARD.encode(format!(
                        r#"{{"payload":"lab-{tag}","datakey":"lab","version":"2","type":"DATA_KEY","expiration":{expired_at}}}"#
                    )));
                let _ = env;
                let image = format!("{ECR_HOST}/team/checkout:v2.1.0");
                let refresh_pod = json!({
                    "metadata": {"annotations": {
                        "lab.pullfix.dev/exit-code": "1",
                        "lab.pullfix.dev/termination-message": "error: Unable to assume role: the security token included in the request is expired"}},
                    "spec": {"restartPolicy": "Never", "serviceAccountName": "default",
                        "containers": [{"name": "refresh", "image": format!("{}/team/worker:1.4.2", env.anon_registry)}]}});
                let mut out = vec![
                    pull_secret("regcred", ECR_HOST, &stale),
                    deployment("checkout", &image, 5, &["regcred"]),
                    json!({"apiVersion": "batch/v1", "kind": "CronJob",
                        "metadata": {"name": "ecr-token-refresh"},
                        "spec": {"schedule": "0 */10 * * *", "suspend": true,
                            // Keep both failed Jobs (the default keeps one).
                            "failedJobsHistoryLimit": 5,
                            "jobTemplate": {"spec": {"backoffLimit": 0, "template": refresh_pod.clone()}}}}),
                ];
                for n in 1..=2 {
                    out.push(json!({"apiVersion": "batch/v1", "kind": "Job",
                        "metadata": {"name": format!("ecr-token-refresh-{n}"),
                                     "labels": {OWNER_CRONJOB_LABEL: "ecr-token-refresh"}},
                        "spec": {"backoffLimit": 0, "template": refresh_pod.clone()}}));
                }
                out
            },
            fix: Some(|env, ns| {
                let mut c = vec![format!(
                    "kubectl create secret docker-registry regcred -n {ns} --docker-server={ECR_HOST} --docker-username=AWS --docker-password={} --dry-run=client -o yaml | kubectl apply -f -",
                    env.ecr_password
                )];
                c.extend(restart(ns, "checkout"));
                c
            }),
        },
    ]
}

/// The registry cannot be reached or trusted.
fn unreachable() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "unreachable-dns",
            story: "the registry's host name does not resolve from the nodes",
            workload: "deploy/checkout",
            build: |_, _| {
                vec![deployment(
                    "checkout",
                    &format!("{NXDOMAIN_HOST}/team/checkout:v2.1.0"),
                    1,
                    &[],
                )]
            },
            fix: None,
        },
        Scenario {
            id: "unreachable-refused",
            story: "nothing answers on the registry's port: connection refused",
            workload: "deploy/checkout",
            build: |_, _| {
                vec![deployment(
                    "checkout",
                    &format!("{REFUSED_HOST}/team/checkout:v2.1.0"),
                    1,
                    &[],
                )]
            },
            fix: None,
        },
        Scenario {
            id: "unreachable-timeout",
            story: "the registry accepts connections and never answers: i/o timeout",
            workload: "deploy/checkout",
            build: |_, _| {
                vec![deployment(
                    "checkout",
                    &format!("{TIMEOUT_HOST}/team/checkout:v2.1.0"),
                    1,
                    &[],
                )]
            },
            fix: None,
        },
        Scenario {
            id: "tls-unknown-ca",
            story: "the registry's certificate is signed by a CA the nodes do not trust",
            workload: "deploy/checkout",
            build: |env, _| {
                vec![deployment(
                    "checkout",
                    &format!("{}/team/checkout:v2.1.0", env.untrusted_registry),
                    1,
                    &[],
                )]
            },
            fix: None,
        },
    ]
}

/// What the registry answers: rate limit, bad name, no repository, denied.
fn registry_answers() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "rate-limited",
            story: "nginx:1.25 comes anonymously from Docker Hub, which answers 429 toomanyrequests",
            workload: "deploy/web",
            build: |_, _| vec![deployment("web", "nginx:1.25", 2, &[])],
            fix: None,
        },
        Scenario {
            id: "invalid-name",
            story: "the image reference has uppercase letters in its repository, so it cannot be parsed",
            workload: "deploy/checkout",
            build: |env, _| {
                vec![
                    pull_secret("regcred", &env.registry, &env.good()),
                    deployment(
                        "checkout",
                        &format!("{}/Team/Checkout:v2.1.0", env.registry),
                        1,
                        &["regcred"],
                    ),
                ]
            },
            fix: Some(|env, ns| {
                vec![
                    format!(
                        "kubectl set image deployment/checkout checkout={} -n {ns}",
                        checkout(env, "v2.1.0")
                    ),
                    format!("kubectl rollout status deployment/checkout -n {ns} --timeout=90s"),
                ]
            }),
        },
        Scenario {
            id: "repo-not-found",
            story: "team/ghost:1.0 is pulled from Docker Hub, where no such repository exists",
            workload: "deploy/ghost",
            build: |_, _| vec![deployment("ghost", "team/ghost:1.0", 1, &[])],
            fix: None,
        },
        Scenario {
            id: "access-denied",
            story: "the registry refuses this identity access to forbidden/app (403)",
            workload: "deploy/app",
            build: |_, _| vec![deployment("app", "forbidden/app:1.0", 1, &[])],
            fix: None,
        },
    ]
}

/// The node and the pod spec: pull policy, platform, init containers.
fn node_and_pod() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "never-pull",
            story: "imagePullPolicy is Never and no node holds library/busybox:1.36 from the internal mirror",
            workload: "deploy/worker",
            build: |env, _| {
                let mut d = deployment(
                    "worker",
                    &format!("{}/library/busybox:1.36", env.anon_registry),
                    1,
                    &[],
                );
                d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Never");
                vec![d]
            },
            fix: None,
        },
        Scenario {
            id: "platform-mismatch",
            story: "team/multi:1.0 is built for linux/amd64 only and lands on an arm64 node",
            workload: "deploy/multi",
            build: |env, _| {
                let mut d = deployment(
                    "multi",
                    &format!("{}/team/multi:1.0", env.anon_registry),
                    1,
                    &[],
                );
                d["spec"]["template"]["spec"]["nodeSelector"] =
                    json!({"kubernetes.io/arch": "arm64"});
                vec![d]
            },
            fix: None,
        },
        Scenario {
            id: "init-container",
            story: "the migrate init container's image tag does not exist; the app container never starts",
            workload: "deploy/checkout",
            build: |env, _| {
                let mut d = deployment("checkout", &checkout(env, "v2.1.0"), 1, &["regcred"]);
                // `-v`: the lab images' entrypoint (pause) prints its version
                // and exits, as an init container must on the real node.
                d["spec"]["template"]["spec"]["initContainers"] = json!([
                    {"name": "migrate", "image": format!("{}/team/worker:1.4.3", env.registry), "args": ["-v"]}]);
                vec![pull_secret("regcred", &env.registry, &env.good()), d]
            },
            fix: Some(|env, ns| {
                vec![
                    format!(
                        "kubectl set image deployment/checkout migrate={}/team/worker:1.4.2 -n {ns}",
                        env.registry
                    ),
                    format!("kubectl rollout status deployment/checkout -n {ns} --timeout=90s"),
                ]
            }),
        },
        Scenario {
            id: "ifnotpresent-masking",
            story: "regcred holds a rotated password; the pod on the warm node runs from its cache, the one on a fresh node fails",
            workload: "deploy/checkout",
            build: |env, ns| {
                let mut d = deployment("checkout", &checkout(env, "v2.1.0"), 2, &["regcred"]);
                let spec = &mut d["spec"]["template"]["spec"];
                spec["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
                spec["nodeSelector"] = json!({MASKING_POOL: "masking"});
                spec["tolerations"] = json!([{"key": MASKING_POOL, "operator": "Equal", "value": "masking", "effect": "NoSchedule"}]);
                spec["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "checkout"}}}]);
                vec![
                    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "lab-warm",
                        "annotations": {PRELOAD_ANNOTATION: checkout(env, "v2.1.0")}}}),
                    pull_secret("regcred", &env.registry, &wrong(env, ns)),
                    d,
                ]
            },
            fix: Some(recreate_regcred_and_restart),
        },
    ]
}

/// Finds a scenario by id.
pub fn find(id: &str) -> anyhow::Result<Scenario> {
    let all = all();
    let ids: Vec<&str> = all.iter().map(|s| s.id).collect();
    let ids = ids.join(", ");
    all.into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| anyhow::anyhow!("unknown scenario `{id}`\nhelp: known scenarios: {ids}"))
}

fn resource(kind: &str, api_version: &str) -> anyhow::Result<(ApiResource, bool)> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "Node" => ("nodes", false),
        "Secret" => ("secrets", true),
        "ServiceAccount" => ("serviceaccounts", true),
        "Pod" => ("pods", true),
        "Deployment" => ("deployments", true),
        "Job" => ("jobs", true),
        "CronJob" => ("cronjobs", true),
        other => anyhow::bail!("scenario object kind `{other}` is not supported"),
    };
    Ok((
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        },
        namespaced,
    ))
}

/// Creates a scenario's namespace and objects. Existing objects are merged
/// into (the `default` ServiceAccount, a lab node's annotations).
pub async fn apply(client: &Client, objects: &[Value], ns: &str) -> anyhow::Result<()> {
    create_or_merge(client, &namespace(ns), ns).await?;
    wait_for_default_service_account(client, ns).await;
    // CronJobs created so far: name -> (apiVersion, uid), so their Jobs can
    // carry the ownerReference the CronJob controller would have set.
    let mut cronjobs: Vec<(String, String, String)> = Vec::new();
    for object in objects {
        let mut object = object.clone();
        if let Some(owner) = object["metadata"]["labels"][OWNER_CRONJOB_LABEL].as_str()
            && let Some((_, api_version, uid)) = cronjobs.iter().find(|(n, _, _)| n == owner)
        {
            object["metadata"]["ownerReferences"] = json!([{
                "apiVersion": api_version, "kind": "CronJob", "name": owner, "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }]);
        }
        let created = create_or_merge(client, &object, ns).await?;
        if object["kind"] == "Namespace"
            && let Some(name) = object["metadata"]["name"].as_str()
        {
            wait_for_default_service_account(client, name).await;
        }
        if object["kind"] == "CronJob"
            && let Some(created) = created
        {
            let name = created.metadata.name.clone().unwrap_or_default();
            let api_version = created
                .types
                .as_ref()
                .map(|t| t.api_version.clone())
                .unwrap_or_default();
            mark_last_schedule(client, ns, &name, &api_version).await?;
            cronjobs.push((name, api_version, created.metadata.uid.unwrap_or_default()));
        }
    }
    Ok(())
}

/// Waits (up to 10 s) for the controllers to give a new namespace its
/// `default` ServiceAccount: until then the API server refuses the pods
/// that run as it, and the controllers would record that refusal as a
/// `FailedCreate` event next to the scenario's own failure.
async fn wait_for_default_service_account(client: &Client, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match api.get_opt("default").await {
            Ok(Some(_)) => return,
            Ok(None) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Ok(None) => {
                tracing::debug!("scenario: no default ServiceAccount in {ns} after 10 s");
                return;
            }
            Err(e) => {
                tracing::debug!("scenario: look up the default ServiceAccount in {ns}: {e}");
                return;
            }
        }
    }
}

/// Label on a scenario Job naming the CronJob that owns it.
pub const OWNER_CRONJOB_LABEL: &str = "lab.pullfix.dev/owner-cronjob";

/// Records that the CronJob last ran six hours ago (and, where the API has
/// the field, last succeeded 26 hours ago), as in the incident replay.
async fn mark_last_schedule(
    client: &Client,
    ns: &str,
    name: &str,
    api_version: &str,
) -> anyhow::Result<()> {
    let (ar, _) = resource("CronJob", api_version)?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let now = chrono::Utc::now();
    let fmt = |h: i64| {
        (now - chrono::Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut status = json!({"lastScheduleTime": fmt(6)});
    if api_version == "batch/v1" {
        status["lastSuccessfulTime"] = json!(fmt(26));
    }
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .with_context(|| format!("set status of CronJob {ns}/{name}"))?;
    Ok(())
}

async fn create_or_merge(
    client: &Client,
    object: &Value,
    ns: &str,
) -> anyhow::Result<Option<DynamicObject>> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let mut api_version = object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let target_ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or(ns)
        .to_string();
    loop {
        let (ar, namespaced) = resource(kind, &api_version)?;
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(client.clone(), &target_ns, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        let mut body = object.clone();
        body["apiVersion"] = json!(api_version);
        let dynamic: DynamicObject =
            serde_json::from_value(body.clone()).with_context(|| format!("build {kind} {name}"))?;
        let result = if kind == "Node" {
            // Lab nodes belong to the kubelet: only merge annotations.
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                .await
        } else {
            api.create(&PostParams::default(), &dynamic).await
        };
        match result {
            Ok(created) => return Ok(Some(created)),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let merged = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .with_context(|| format!("update {kind} {target_ns}/{name}"))?;
                return Ok(Some(merged));
            }
            // batch/v1 CronJob arrived in 1.21; older servers have v1beta1.
            Err(kube::Error::Api(s))
                if s.code == 404 && kind == "CronJob" && api_version == "batch/v1" =>
            {
                api_version = "batch/v1beta1".into();
            }
            Err(e) => return Err(e).with_context(|| format!("create {kind} {target_ns}/{name}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> LabEnv {
        LabEnv {
            registry: "127.0.0.1:36500".into(),
            user: "pullfix".into(),
            password: "pw".into(),
            token_registry: "127.0.0.1:36501".into(),
            token_user: "tokenuser".into(),
            token_password: "tpw".into(),
            anon_registry: "127.0.0.1:36503".into(),
            untrusted_registry: "127.0.0.1:36507".into(),
            ecr_password: "123456789012-auth-token".into(),
        }
    }

    #[test]
    fn ids_are_unique_and_findable() {
        let all = all();
        let mut ids: Vec<_> = all.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert!(find("wrong-tag").is_ok());
        let Err(err) = find("nope") else {
            panic!("unknown id found");
        };
        let err = err.to_string();
        assert!(err.contains("known scenarios: wrong-tag"), "{err}");
    }

    #[test]
    fn placement_pins_every_pod_template() {
        let placement = Placement {
            node: Some("lab-k128-cd17".into()),
        };
        for s in all() {
            for o in s.objects(&env(), "ns1", &placement) {
                if o["kind"] == "Deployment"
                    && s.id != "platform-mismatch"
                    && s.id != "ifnotpresent-masking"
                {
                    assert_eq!(
                        o["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"],
                        "lab-k128-cd17",
                        "{}",
                        s.id
                    );
                }
            }
        }
    }

    #[test]
    fn stale_secret_spans_three_namespaces() {
        let s = find("stale-secret-many-namespaces").unwrap();
        let objects = s.objects(&env(), "ns1", &Placement::default());
        let secrets: Vec<_> = objects
            .iter()
            .filter(|o| o["kind"] == "Secret")
            .map(|o| o["metadata"]["namespace"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(secrets, ["ns1", "ns1-b", "ns1-c"]);
    }
}
