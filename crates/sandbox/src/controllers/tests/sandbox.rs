//! The controllers with the embedded API server, the simulated kubelet
//! and a registry.

use super::*;
use crate::apiserver;
use crate::kubelet::{self, KubeletOptions, NodeSpec};
use crate::registry::{EmbeddedRegistry, RegistryBehavior, RunningRegistry};
use kube::api::ListParams;

struct Cluster {
    client: Client,
    registry: RunningRegistry,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _server: apiserver::ApiServer,
}

impl Cluster {
    async fn start() -> Cluster {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let server = apiserver::start(
            "127.0.0.1:0".parse().unwrap(),
            apiserver::Options {
                users: vec![apiserver::User {
                    name: "admin".into(),
                    token: "admin-token".into(),
                    groups: vec!["system:masters".into()],
                    deny: vec![],
                }],
                audit_log: None,
            },
        )
        .await
        .unwrap();
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&server.kubeconfig("admin", None)).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = Client::try_from(config).unwrap();
        let registry = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
        registry.add_image("team/app", "v1", &[("linux", "amd64")]);
        registry.add_image("team/app", "v2", &[("linux", "amd64")]);
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let kubelet_options = KubeletOptions {
            nodes: vec![
                NodeSpec::parse("lab-a:amd64:1.33:containerd2.1").unwrap(),
                NodeSpec::parse("lab-b:amd64:1.33:containerd2.1").unwrap(),
            ],
            time_scale: 0.05,
            taints: vec![],
            registry: registry.client_config(),
        };
        let (c, mut krx) = (client.clone(), rx.clone());
        tasks.push(tokio::spawn(async move {
            let stopped = async move {
                let _ = krx.wait_for(|s| *s).await;
            };
            if let Err(e) = kubelet::run(c, kubelet_options, stopped).await {
                panic!("kubelet: {e:#}");
            }
        }));
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            run(c, Options { time_scale: 0.05 }, rx).await.unwrap();
        }));
        Cluster {
            client,
            registry,
            stop,
            tasks,
            _server: server,
        }
    }

    async fn get(&self, kind: Kind, ns: &str, n: &str) -> Option<Value> {
        let req = Request::new(kind.collection_path(ns))
            .get(n, &Default::default())
            .unwrap();
        self.client.request::<Value>(req).await.ok()
    }

    async fn list(&self, kind: Kind, ns: &str, selector: &str) -> Vec<Value> {
        let req = Request::new(kind.collection_path(ns))
            .list(&ListParams::default().labels(selector))
            .unwrap();
        let list: Value = self.client.request(req).await.unwrap();
        list["items"].as_array().cloned().unwrap_or_default()
    }

    async fn create(&self, kind: Kind, ns: &str, body: Value) -> Value {
        let req = Request::new(kind.collection_path(ns))
            .create(&PostParams::default(), serde_json::to_vec(&body).unwrap())
            .unwrap();
        self.client.request(req).await.unwrap()
    }

    async fn patch(&self, kind: Kind, ns: &str, n: &str, patch: Patch<Value>) {
        let req = Request::new(kind.collection_path(ns))
            .patch(n, &PatchParams::default(), &patch)
            .unwrap();
        self.client.request::<Value>(req).await.unwrap();
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.registry.shutdown().await;
    }
}

/// Polls `check` every 100 ms for up to 60 s.
async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn app_deployment(n: &str, replicas: i64, image: &str) -> Value {
    let mut d = deployment(n, replicas, image);
    for k in ["uid", "generation", "creationTimestamp"] {
        d["metadata"].as_object_mut().unwrap().remove(k);
    }
    d
}

/// `kubectl rollout status` says it rolled out.
fn rolled_out(d: &Value) -> bool {
    let s = &d["status"];
    let want = int(&d["spec"]["replicas"]).unwrap_or(1);
    int(&d["metadata"]["generation"]) <= int(&s["observedGeneration"])
        && int(&s["updatedReplicas"]).unwrap_or(0) == want
        && int(&s["replicas"]).unwrap_or(0) == want
        && int(&s["availableReplicas"]).unwrap_or(0) == want
        && condition(&s["conditions"], "Progressing")
            .is_some_and(|c| c["reason"] == NEW_RS_AVAILABLE)
}

async fn wait_rolled_out(c: &Cluster, n: &str) -> Value {
    wait_for(&format!("deployment {n} rolled out"), async || {
        c.get(Kind::Deployment, "shop", n).await.filter(rolled_out)
    })
    .await
}

async fn waiting_reasons(c: &Cluster, selector: &str) -> Vec<String> {
    c.list(Kind::Pod, "shop", selector)
        .await
        .iter()
        .filter(|p| !deleting(p))
        .map(|p| {
            str_at(
                &p["status"]["containerStatuses"][0],
                &["state", "waiting", "reason"],
            )
            .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_deployments_roll_out_and_are_collected() {
    let c = Cluster::start().await;
    c.create(
        Kind::Namespace,
        "",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    )
    .await;
    wait_for("the default ServiceAccount", async || {
        c.get(Kind::ServiceAccount, "shop", "default").await
    })
    .await;

    // An existing image: 2/2 ready.
    let good = c.registry.image("team/app:v1");
    c.create(Kind::Deployment, "shop", app_deployment("web", 2, &good))
        .await;
    let d = wait_rolled_out(&c, "web").await;
    assert_eq!(
        condition(&d["status"]["conditions"], "Available").unwrap()["status"],
        "True"
    );
    assert_eq!(annotation(&d, REVISION_ANNOTATION), Some("1"));
    let pods = c.list(Kind::Pod, "shop", "app=web").await;
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(pod_ready));

    // A missing tag: ImagePullBackOff.
    c.create(
        Kind::Deployment,
        "shop",
        app_deployment("broken", 2, &c.registry.image("team/app:missing")),
    )
    .await;
    wait_for("pods in ImagePullBackOff", async || {
        let reasons = waiting_reasons(&c, "app=broken").await;
        (reasons.len() == 2 && reasons.iter().all(|r| r == "ImagePullBackOff")).then_some(())
    })
    .await;
    let d = c.get(Kind::Deployment, "shop", "broken").await.unwrap();
    assert_eq!(
        condition(&d["status"]["conditions"], "Available").unwrap()["status"],
        "False"
    );

    // The fix, as `kubectl set image` sends it: a strategic merge patch.
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": good}]}}}});
    c.patch(Kind::Deployment, "shop", "broken", Patch::Strategic(patch))
        .await;
    let d = wait_rolled_out(&c, "broken").await;
    assert_eq!(annotation(&d, REVISION_ANNOTATION), Some("2"));
    let sets = c.list(Kind::ReplicaSet, "shop", "app=broken").await;
    assert_eq!(sets.len(), 2);
    let old = sets
        .iter()
        .find(|r| annotation(r, REVISION_ANNOTATION) == Some("1"))
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    wait_for("old pods gone", async || {
        let pods = c.list(Kind::Pod, "shop", "app=broken").await;
        (pods.len() == 2 && pods.iter().all(pod_ready)).then_some(())
    })
    .await;
    let events = c.list(Kind::Event, "shop", "").await;
    let scaled: Vec<&str> = events
        .iter()
        .filter(|e| e["reason"] == "ScalingReplicaSet" && e["involvedObject"]["name"] == "broken")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        scaled
            .iter()
            .any(|m| m.starts_with("Scaled up replica set broken-")),
        "{scaled:?}"
    );
    assert!(events.iter().any(
        |e| e["reason"] == "SuccessfulCreate" && e["source"]["component"] == RS_CONTROLLER
    ));
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "Scheduled" && e["reportingComponent"] == SCHEDULER)
    );

    // `kubectl rollout restart`: a template annotation, a new ReplicaSet.
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2025-03-01T12:00:00Z"}}}}});
    c.patch(Kind::Deployment, "shop", "web", Patch::Strategic(restart))
        .await;
    wait_for("web restarted", async || {
        let d = c.get(Kind::Deployment, "shop", "web").await?;
        (annotation(&d, REVISION_ANNOTATION) == Some("2") && rolled_out(&d)).then_some(())
    })
    .await;

    // Unschedulable: the scheduler's condition and message.
    let mut p = pod("pinned", json!({"nodeSelector": {"disk": "ssd"}}));
    p["spec"]["containers"][0]["image"] = json!(good);
    for k in ["uid", "creationTimestamp"] {
        p["metadata"].as_object_mut().unwrap().remove(k);
    }
    c.create(Kind::Pod, "shop", p).await;
    let cond = wait_for("PodScheduled=False", async || {
        let p = c.get(Kind::Pod, "shop", "pinned").await?;
        condition(&p["status"]["conditions"], "PodScheduled").cloned()
    })
    .await;
    assert_eq!(cond["reason"], "Unschedulable");
    assert_eq!(
        cond["message"],
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    );

    // Deleting a Deployment collects its ReplicaSets and pods.
    let req = Request::new(Kind::Deployment.collection_path("shop"))
        .delete("broken", &DeleteParams::default())
        .unwrap();
    c.client.request::<Value>(req).await.unwrap();
    wait_for("broken collected", async || {
        let sets = c.list(Kind::ReplicaSet, "shop", "app=broken").await;
        let pods = c.list(Kind::Pod, "shop", "app=broken").await;
        (sets.is_empty() && pods.is_empty()).then_some(())
    })
    .await;
    assert_eq!(c.list(Kind::Pod, "shop", "app=web").await.len(), 2);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_failing_job_reaches_failed() {
    let c = Cluster::start().await;
    let mut j = job("refresh", 1);
    j["metadata"] = json!({"name": "refresh", "namespace": "default"});
    j["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!(c.registry.image("team/app:v1"));
    c.create(Kind::Job, "default", j).await;
    let status = wait_for("the job failed", async || {
        let j = c.get(Kind::Job, "default", "refresh").await?;
        condition_true(&j["status"]["conditions"], "Failed").then(|| j["status"].clone())
    })
    .await;
    let failed = condition(&status["conditions"], "Failed").unwrap();
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(status["failed"], 2);
    assert!(status["startTime"].is_string());
    let pods = c.list(Kind::Pod, "default", "job-name=refresh").await;
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| pod_phase(p) == "Failed"));
    // Deleting the Job collects its pods.
    let req = Request::new(Kind::Job.collection_path("default"))
        .delete("refresh", &DeleteParams::default())
        .unwrap();
    c.client.request::<Value>(req).await.unwrap();
    wait_for("job pods collected", async || {
        c.list(Kind::Pod, "default", "job-name=refresh")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    c.stop().await;
}

/// `kubectl create namespace fresh; kubectl create deployment ...`: no
/// serviceAccountName anywhere, and no waiting for the namespace's
/// `default` ServiceAccount. The pods run as `default` and are pulled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_deployment_without_service_account_runs_as_default() {
    let c = Cluster::start().await;
    c.create(
        Kind::Namespace,
        "",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}),
    )
    .await;
    let mut d = app_deployment("web", 2, &c.registry.image("team/app:v1"));
    d["metadata"]["namespace"] = json!("fresh");
    c.create(Kind::Deployment, "fresh", d).await;
    let d = wait_for("deployment web rolled out in fresh", async || {
        c.get(Kind::Deployment, "fresh", "web")
            .await
            .filter(rolled_out)
    })
    .await;
    // The template keeps no name: `default` is admission's, per pod.
    assert!(d["spec"]["template"]["spec"]["serviceAccountName"].is_null());
    let pods = c.list(Kind::Pod, "fresh", "app=web").await;
    assert_eq!(pods.len(), 2);
    for p in &pods {
        assert_eq!(p["spec"]["serviceAccountName"], "default", "{p}");
        assert_eq!(p["spec"]["serviceAccount"], "default", "{p}");
        assert!(pod_ready(p), "{p}");
    }
    c.stop().await;
}
