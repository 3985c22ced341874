//! The canary pull: a credential this machine cannot test (it does not
//! trust or cannot reach the registry the nodes use) is tested where it
//! matters, by the kubelet of a node where the workload failed.
//!
//! A short-lived pod, pinned to that node, pulls the workload's image with
//! `imagePullPolicy: Always` and the candidate credential in a temporary
//! pull secret. The pod owns the secret (so the garbage collector removes
//! both together if pullfix is stopped), runs as nobody with every
//! capability dropped and a command that does not exist, so no code from
//! the image runs: only the pull is measured. Its status and events are
//! read with the same classifier as any failing pod; both objects are
//! deleted afterwards.
//!
//! The objects and the reading of the result are pure functions; the
//! executor's `canary` method sends the requests.

use serde_json::{Value, json};

use chrono::Utc;

use crate::api::{self, ApiError, ObjectRef, Writable, Write};
use crate::diagnose::Cause;
use crate::diagnose::classify::{EventText, classify_container};
use crate::diagnose::finding::Finding;
use crate::registry::keyring::{Credential, dockerconfigjson};
use crate::remediate::Outcome;
use crate::remediate::apply::Executor;
use crate::remediate::prompt::Answer;

/// How long the canary may take to pull, at most.
pub(crate) const CANARY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// The label every canary object carries (`kubectl get pods,secrets -l
/// pullfix.dev/canary -A` finds leftovers).
pub(crate) const LABEL: &str = "pullfix.dev/canary";

/// A command no image has: the container fails to start if the pull works,
/// and nothing from the image runs.
const NO_COMMAND: &str = "/pullfix-canary/no-such-command";

/// What the canary pulls with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// A candidate credential for `server`, in a temporary pull secret.
    Candidate {
        server: &'a str,
        cred: &'a Credential,
    },
    /// The failing pod's own pull secrets (to test an image, not a
    /// credential).
    PodSecrets(&'a [String]),
}

/// The canary's objects: a pod, and with a candidate credential its
/// temporary pull secret of the same name.
#[derive(Debug, Clone)]
pub(crate) struct Canary {
    pub namespace: String,
    /// The pod's (and the secret's) name.
    pub name: String,
    pub node: String,
    pub image: String,
    pub secret: Option<Value>,
    pub pod: Value,
    /// The kubectl commands that do the same (no password).
    pub kubectl: Vec<String>,
}

impl Canary {
    /// The objects for a canary named `pullfix-canary-SUFFIX` in
    /// `namespace`, pulling `image` on `node` with `auth`.
    pub(crate) fn new(
        namespace: &str,
        suffix: &str,
        node: &str,
        image: &str,
        auth: Auth<'_>,
    ) -> Canary {
        use crate::sanitize::shell_word as w;
        use base64::Engine as _;
        let name = format!("pullfix-canary-{suffix}");
        let labels = json!({
            LABEL: "true",
            "app.kubernetes.io/managed-by": "kubectl-pullfix",
        });
        let (secret, pull_secrets) = match auth {
            Auth::Candidate { server, cred } => (
                Some(json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                    "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD
                        .encode(dockerconfigjson(server, cred))},
                })),
                vec![json!({"name": name})],
            ),
            Auth::PodSecrets(names) => (None, names.iter().map(|n| json!({"name": n})).collect()),
        };
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "activeDeadlineSeconds": CANARY_TIMEOUT.as_secs() + 30,
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                "imagePullSecrets": pull_secrets,
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "tolerations": [{"operator": "Exists"}],
                "containers": [{
                    "name": "canary",
                    "image": image,
                    "imagePullPolicy": "Always",
                    "command": [NO_COMMAND],
                    "resources": {"requests": {"cpu": "1m", "memory": "1Mi"},
                                  "limits": {"cpu": "10m", "memory": "16Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }],
            },
        });
        let overrides = json!({"spec": {
            "nodeName": node,
            "imagePullSecrets": pull_secrets,
            "automountServiceAccountToken": false,
        }})
        .to_string();
        let mut kubectl = Vec::new();
        if let Auth::Candidate { server, cred } = auth {
            kubectl.push(format!(
                "kubectl create secret docker-registry {} -n {} --docker-server={} --docker-username={} --docker-password=<password>",
                w(&name),
                w(namespace),
                w(server),
                w(&cred.username)
            ));
        }
        kubectl.push(format!(
            "kubectl run {} -n {} --image={} --image-pull-policy=Always --restart=Never --overrides={} --command -- {NO_COMMAND}",
            w(&name),
            w(namespace),
            w(image),
            w(&overrides)
        ));
        kubectl.push(format!(
            "kubectl delete {} {} -n {}",
            if secret.is_some() {
                "pod,secret"
            } else {
                "pod"
            },
            w(&name),
            w(namespace)
        ));
        Canary {
            namespace: namespace.to_string(),
            name,
            node: node.to_string(),
            image: image.to_string(),
            secret,
            pod,
            kubectl,
        }
    }

    /// The merge patch that makes the pod own the secret (`uid`: the pod's).
    pub(crate) fn owner_patch(&self, uid: &str) -> Value {
        json!({"metadata": {"ownerReferences": [{
            "apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": uid,
        }]}})
    }

    /// `pod and secret NS/NAME`, or `pod NS/NAME`.
    fn objects(&self) -> String {
        format!(
            "{} {}/{}",
            if self.secret.is_some() {
                "pod and secret"
            } else {
                "pod"
            },
            self.namespace,
            self.name
        )
    }
}

/// What the canary's pull gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pulled {
    /// The node pulled the image with the credential.
    Yes,
    /// The pull failed: the cause the classifier reads, and the node's text.
    No { cause: Cause, text: String },
}

/// The waiting reasons that mean the pull itself failed.
const PULL_FAILURES: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// Reads the canary pod (and its events, newest first): `None` while the
/// pull is still going on. Pure.
pub(crate) fn read(pod: &Value, events: &[EventText<'_>]) -> Option<Pulled> {
    if events
        .iter()
        .any(|e| e.reason == "Pulled" && !e.message.contains("already present"))
    {
        return Some(Pulled::Yes);
    }
    let status = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|s| s.first());
    let state = status.and_then(|s| s.get("state"));
    if let Some(waiting) = state.and_then(|s| s.get("waiting")) {
        let reason = waiting
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let message = waiting
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if PULL_FAILURES.contains(&reason) {
            let c = classify_container(reason, message, events);
            // Only the back-off left and no pull event yet: wait for one.
            if c.backoff_only {
                return None;
            }
            return Some(Pulled::No {
                cause: c.cause,
                text: c.error,
            });
        }
        // Past the pull: the container cannot be created or started (its
        // command does not exist, it may not run as nobody).
        return (!reason.is_empty() && reason != "ContainerCreating").then_some(Pulled::Yes);
    }
    // Running or terminated: the image was there to run.
    state
        .filter(|s| s.get("running").is_some() || s.get("terminated").is_some())
        .map(|_| Pulled::Yes)
}

/// What testing a credential on the cluster gave.
pub(crate) enum OnCluster {
    /// The node pulled the image with it (`node`).
    Pulled { node: String },
    /// `--dry-run`: the canary was rehearsed, not created.
    Rehearsed,
    /// The node could not pull with it: the step's outcome.
    Refused(Outcome),
    /// No canary ran (no node, no permission, declined, no answer): why.
    NotRun(String),
}

impl Executor<'_> {
    /// Tests on a node where the workload `f` failed whether `image` pulls
    /// with `auth`, with a canary pod (its own confirmation, server-side
    /// dry-run, kubectl equivalent, and cleanup).
    pub(crate) async fn canary(&mut self, image: &str, auth: Auth<'_>, f: &Finding) -> OnCluster {
        let failing = ObjectRef::new(Writable::Pod, &f.namespace, &f.pod);
        let node = match failing.get_opt(self.client).await {
            Ok(Some(p)) => p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            _ => None,
        };
        let Some(node) = node else {
            return OnCluster::NotRun(format!(
                "pod {} has no node to test on (not scheduled, or gone)",
                f.pod
            ));
        };
        let suffix = format!("{:05x}", Utc::now().timestamp_subsec_nanos() & 0xfffff);
        let c = Canary::new(&f.namespace, &suffix, &node, image, auth);
        let (with, kept) = match auth {
            Auth::Candidate { .. } => (
                "with it",
                "a temporary pull secret the pod owns, nothing from the image runs); both are deleted after",
            ),
            Auth::PodSecrets(_) => (
                "with the failing pod's pull secrets",
                "nothing from the image runs); it is deleted after",
            ),
        };
        self.say(format!(
            "  test it on the cluster instead: canary pod {}/{} on node {} pulls {} {with} (imagePullPolicy Always, {kept}, within {}",
            crate::sanitize::line(&c.namespace),
            c.name,
            crate::sanitize::line(&node),
            crate::sanitize::line(&c.image),
            crate::duration::format(CANARY_TIMEOUT)
        ));
        for k in &c.kubectl {
            self.say(format!(
                "  kubectl equivalent: {}",
                crate::sanitize::line(k)
            ));
        }
        let secret = ObjectRef::new(Writable::Secret, &c.namespace, &c.name);
        let pod = ObjectRef::new(Writable::Pod, &c.namespace, &c.name);
        let mut creates = Vec::new();
        if let Some(body) = &c.secret {
            creates.push((&secret, Write::Create(body.clone())));
        }
        creates.push((&pod, Write::Create(c.pod.clone())));
        for (target, write) in &creates {
            match api::write(self.client, target, write, true).await {
                Ok(_) => self.say(format!(
                    "  server-side dry-run (create {} {}/{}): ok",
                    target.resource.plural(),
                    c.namespace,
                    c.name
                )),
                Err(e) if e.is_forbidden() => {
                    return OnCluster::NotRun(format!(
                        "no permission for the canary: create {} in namespace {} ({})",
                        target.resource.plural(),
                        c.namespace,
                        e.message
                    ));
                }
                Err(e) => {
                    return OnCluster::NotRun(format!(
                        "the server-side dry-run of the canary's {} failed: {}",
                        target.resource.plural(),
                        e.message
                    ));
                }
            }
        }
        if self.dry_run {
            self.say("  --dry-run: the canary is not created; the rehearsal goes on as if its pull worked");
            return OnCluster::Rehearsed;
        }
        let question = format!("  Create the canary ({}, deleted after)?", c.objects());
        match self.prompter.confirm(&question, true) {
            Ok(Answer::Yes) => {}
            Ok(Answer::No) => return OnCluster::NotRun("you declined the canary".into()),
            Ok(Answer::Pending) => {
                return OnCluster::NotRun("no terminal and no --yes to create the canary".into());
            }
            Err(e) => return OnCluster::NotRun(format!("{e:#}")),
        }
        let result = self.run_canary(&c, &secret, &pod).await;
        self.delete_canary(&c, &secret, &pod).await;
        let credential = matches!(auth, Auth::Candidate { .. });
        match result {
            Ok(Pulled::Yes) => {
                self.say(format!(
                    "  ✔ tested on the cluster: node {} pulled {} {with}",
                    crate::sanitize::line(&node),
                    crate::sanitize::line(&c.image)
                ));
                OnCluster::Pulled { node }
            }
            Ok(Pulled::No { cause, text }) => {
                self.say(format!(
                    "  ✘ the canary on node {node} could not pull: {text}"
                ));
                let reason = match (credential, cause.is_credential()) {
                    (true, true) => format!(
                        "the registry refused the credential on node {node} ({}: {text}); the secret was not changed — give the current password or token and run again",
                        cause.id()
                    ),
                    (true, false) => format!(
                        "the canary on node {node} could not pull ({}: {text}), so the credential is still untested; the secret was not changed",
                        cause.id()
                    ),
                    (false, _) => format!(
                        "{image} does not pull on node {node} either ({}: {text}), so it is not set",
                        cause.id()
                    ),
                };
                OnCluster::Refused(Outcome::Skipped { reason })
            }
            Err(why) => OnCluster::NotRun(why),
        }
    }

    /// Creates the canary and waits for its pull to end.
    async fn run_canary(
        &mut self,
        c: &Canary,
        secret: &ObjectRef,
        pod: &ObjectRef,
    ) -> Result<Pulled, String> {
        let failed = |what: &str, e: ApiError| {
            format!("could not create the canary's {what}: {}", e.message)
        };
        if let Some(body) = &c.secret {
            api::write(self.client, secret, &Write::Create(body.clone()), false)
                .await
                .map_err(|e| failed("secret", e))?;
        }
        // On any error here the caller deletes what was created.
        let created = api::write(self.client, pod, &Write::Create(c.pod.clone()), false)
            .await
            .map_err(|e| failed("pod", e))?;
        self.say(format!("  canary created: {}", c.objects()));
        if let Some(uid) = created
            .as_ref()
            .and_then(|p| p.pointer("/metadata/uid"))
            .and_then(Value::as_str)
            .filter(|_| c.secret.is_some())
        {
            // So that both go together even if pullfix is stopped here.
            let _ = api::write(
                self.client,
                secret,
                &Write::MergePatch(c.owner_patch(uid)),
                false,
            )
            .await;
        }
        let deadline = tokio::time::Instant::now() + CANARY_TIMEOUT;
        let wait = async {
            loop {
                let status = pod
                    .get_opt(self.client)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let events = crate::collect::pod_events(self.client, &c.namespace, &c.name)
                    .await
                    .unwrap_or_default();
                let texts: Vec<EventText<'_>> =
                    events.iter().map(crate::collect::EventLite::text).collect();
                if let Some(r) = read(&status, &texts) {
                    return Some(r);
                }
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        };
        let what = format!(
            "canary pulling {} on node {} ({})",
            c.image,
            c.node,
            crate::terminal::at_most(CANARY_TIMEOUT)
        );
        match crate::terminal::until_interrupted(crate::terminal::spin(what, wait)).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(format!(
                "the canary's pull did not end within {}",
                crate::duration::format(CANARY_TIMEOUT)
            )),
            Err(_) => Err("interrupted (Ctrl-C)".into()),
        }
    }

    /// Deletes the canary's pod and secret, and says so (or how to).
    async fn delete_canary(&mut self, c: &Canary, secret: &ObjectRef, pod: &ObjectRef) {
        let delete = Write::Delete {
            uid: None,
            resource_version: None,
        };
        let mut left = Vec::new();
        let targets = [("pod", pod), ("secret", secret)];
        let targets = if c.secret.is_some() {
            &targets[..]
        } else {
            &targets[..1]
        };
        for &(what, target) in targets {
            match api::write(self.client, target, &delete, false).await {
                Ok(_) => {}
                Err(e) if e.code == Some(404) => {}
                Err(e) => left.push(format!("{what}: {}", e.message)),
            }
        }
        if left.is_empty() {
            self.say(format!("  canary deleted: {}", c.objects()));
        } else {
            self.say(format!(
                "  ✘ the canary could not all be deleted ({}); delete it with: {}",
                left.join("; "),
                c.kubectl.last().map(String::as_str).unwrap_or_default()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(state: Value) -> Value {
        json!({"status": {"containerStatuses": [{"name": "canary", "state": state}]}})
    }

    #[test]
    fn the_objects_run_nothing_and_belong_together() {
        let cred = Credential::new("u", "secret-pass");
        let c = Canary::new(
            "shop",
            "ab12c",
            "node-1",
            "reg.example.com/team/app:v1",
            Auth::Candidate {
                server: "reg.example.com",
                cred: &cred,
            },
        );
        assert_eq!(c.name, "pullfix-canary-ab12c");
        let spec = &c.pod["spec"];
        assert_eq!(spec["nodeName"], "node-1");
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(spec["containers"][0]["command"][0], NO_COMMAND);
        assert_eq!(spec["imagePullSecrets"][0]["name"], c.name);
        assert_eq!(spec["automountServiceAccountToken"], false);
        let secret = c.secret.as_ref().unwrap();
        assert_eq!(secret["metadata"]["labels"][LABEL], "true");
        assert_eq!(
            c.owner_patch("u-1")["metadata"]["ownerReferences"][0]["uid"],
            "u-1"
        );
        let cmds = c.kubectl.join("\n");
        assert!(!cmds.contains("secret-pass"), "{cmds}");
        assert!(cmds.contains("--docker-password=<password>"), "{cmds}");
        // Testing an image: the pod's own pull secrets, no secret of its own.
        let names = ["regcred".to_string()];
        let c = Canary::new(
            "shop",
            "x",
            "node-1",
            "reg.example.com/team/app:v2",
            Auth::PodSecrets(&names),
        );
        assert!(c.secret.is_none());
        assert_eq!(c.pod["spec"]["imagePullSecrets"][0]["name"], "regcred");
        assert!(
            c.kubectl
                .last()
                .unwrap()
                .starts_with("kubectl delete pod pullfix-canary-x")
        );
    }

    #[test]
    fn the_result_is_read_as_any_failing_pod() {
        let pulled = EventText {
            reason: "Pulled",
            message: "Successfully pulled image \"x\" in 1s",
            count: 1,
        };
        assert_eq!(read(&json!({}), &[pulled]), Some(Pulled::Yes));
        let creating = pod(json!({"waiting": {"reason": "ContainerCreating"}}));
        assert_eq!(read(&creating, &[]), None);
        let cannot_start = pod(json!({"waiting": {"reason": "CreateContainerError"}}));
        assert_eq!(read(&cannot_start, &[]), Some(Pulled::Yes));
        let ran = pod(json!({"terminated": {"exitCode": 128}}));
        assert_eq!(read(&ran, &[]), Some(Pulled::Yes));
        let denied = pod(json!({"waiting": {"reason": "ErrImagePull", "message":
            "failed to pull and unpack image \"reg.example.com/team/app:v1\": failed to resolve reference \"reg.example.com/team/app:v1\": unexpected status from HEAD request to https://reg.example.com/v2/team/app/manifests/v1: 401 Unauthorized"}}));
        match read(&denied, &[]) {
            Some(Pulled::No { cause, text }) => {
                assert_eq!(cause, Cause::CredentialsRejected);
                assert!(text.contains("401 Unauthorized"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        // Only the back-off so far: wait for the pull's own event.
        let backoff = pod(json!({"waiting": {"reason": "ImagePullBackOff",
            "message": "Back-off pulling image \"x\""}}));
        assert_eq!(read(&backoff, &[]), None);
    }
}
