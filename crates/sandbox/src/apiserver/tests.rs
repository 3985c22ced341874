//! End-to-end tests: the server driven by kube-rs, by raw HTTP and by the
//! real kubectl.

use super::*;

use base64::Engine as _;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};

const ADMIN: &str = "admin-token";
const ONCALL: &str = "oncall-token";

struct Fixture {
    server: ApiServer,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start(
            "127.0.0.1:0".parse().expect("addr"),
            Options {
                users: vec![
                    User {
                        name: "admin".into(),
                        token: ADMIN.into(),
                        groups: vec!["system:masters".into()],
                        deny: vec![],
                    },
                    User {
                        name: "oncall".into(),
                        token: ONCALL.into(),
                        groups: vec!["oncall".into()],
                        deny: vec![
                            Deny::new(&["get", "list", "watch"], "", "secrets"),
                            Deny::new(&["patch"], "apps", "deployments/scale"),
                            Deny::new(&["*"], "", "nodes"),
                        ],
                    },
                ],
                audit_log: Some(dir.path().join("audit.log")),
            },
        )
        .await
        .expect("start the apiserver");
        Fixture { server, dir }
    }

    async fn client(&self, user: &str) -> kube::Client {
        let kc = Kubeconfig::from_yaml(&self.server.kubeconfig(user, Some("default")))
            .expect("parse our kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kube config");
        kube::Client::try_from(cfg).expect("client")
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Raw request: (status, body as JSON or string).
    async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        ct: &str,
        body: &str,
    ) -> (u16, Value) {
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = client
            .request(method, format!("{}{path}", self.server.url()))
            .header("content-type", ct)
            .body(body.to_string());
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.expect("send");
        let code = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn secret(name: &str, data: Value) -> Secret {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}))
        .expect("secret")
}

fn pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }))
    .expect("pod")
}

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }))
    .expect("deployment")
}

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn crud_and_error_shapes_through_kube_rs() {
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let created = secrets
        .create(&PostParams::default(), &secret("s1", json!({"k": "v"})))
        .await
        .expect("create");
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        created.data.as_ref().map(|d| d["k"].0.clone()),
        Some(b"v".to_vec())
    );
    assert!(created.string_data.is_none());
    let got = secrets.get("s1").await.expect("get");
    assert_eq!(got.metadata.uid, created.metadata.uid);

    let dup = api_err(
        secrets
            .create(&PostParams::default(), &secret("s1", json!({})))
            .await
            .expect_err("dup"),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, r#"secrets "s1" already exists"#);

    let missing = api_err(secrets.get("nope").await.expect_err("404"));
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, r#"secrets "nope" not found"#);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let missing = api_err(deps.get("web").await.expect_err("404"));
    assert_eq!(missing.message, r#"deployments.apps "web" not found"#);

    let bad = api_err(
        secrets
            .create(&PostParams::default(), &secret("Bad_Name", json!({})))
            .await
            .expect_err("422"),
    );
    assert_eq!((bad.code, bad.reason.as_str()), (422, "Invalid"));
    assert!(bad.message.starts_with(r#"Secret "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain"#), "{}", bad.message);

    let elsewhere: Api<Secret> = Api::namespaced(client.clone(), "ghost");
    let e = api_err(
        elsewhere
            .create(&PostParams::default(), &secret("s", json!({})))
            .await
            .expect_err("no ns"),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, r#"namespaces "ghost" not found"#)
    );

    // Optimistic concurrency on a Deployment.
    let d = deps
        .create(&PostParams::default(), &deployment("web", "nginx:1"))
        .await
        .expect("create d");
    let mut stale = d.clone();
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .expect("patch");
    stale.metadata.labels = Some([("y".to_string(), "2".to_string())].into());
    let e = api_err(
        deps.replace("web", &PostParams::default(), &stale)
            .await
            .expect_err("409"),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        r#"Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again"#
    );
    let stale_rv = d.metadata.resource_version.clone().unwrap_or_default();
    let e = api_err(
        deps.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": stale_rv, "labels": {"z": "3"}}})),
        )
        .await
        .expect_err("stale patch"),
    );
    assert_eq!(e.code, 409);

    // DELETE preconditions, then delete returning a Status for secrets.
    let pre = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("nope".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let e = api_err(secrets.delete("s1", &pre).await.expect_err("precondition"));
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .contains("Precondition failed: UID in precondition: nope"),
        "{}",
        e.message
    );
    let gone = secrets
        .delete("s1", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(gone.is_right(), "secrets deletion answers a Status");
    assert!(secrets.get_opt("s1").await.expect("get_opt").is_none());
}

#[tokio::test]
async fn metadata_generation_and_managed_fields() {
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pp = PostParams {
        field_manager: Some("kubectl-pullfix".into()),
        ..Default::default()
    };
    let d = deps
        .create(&pp, &deployment("web", "nginx:1"))
        .await
        .expect("create");
    let uid = d.metadata.uid.clone().unwrap_or_default();
    assert_eq!(uid.len(), 36);
    assert_eq!(&uid[14..15], "4");
    assert_eq!(d.metadata.generation, Some(1));
    let ts = d
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    assert!(!ts.is_empty());
    let mf = d.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("kubectl-pullfix"));
    assert_eq!(mf[0].operation.as_deref(), Some("Update"));
    assert_eq!(mf[0].fields_type.as_deref(), Some("FieldsV1"));

    let labels = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("label patch");
    assert_eq!(
        labels.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let managers: Vec<String> = labels
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers.len(), 2, "{managers:?}");
    let spec = deps
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("x".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(spec.metadata.generation, Some(2));
    assert!(
        spec.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|m| m.manager.as_deref() == Some("x"))
    );
    let rv_before = spec.metadata.resource_version.clone();
    let same = deps
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("x".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("no-op patch");
    assert_eq!(
        same.metadata.resource_version, rv_before,
        "a no-op write changes nothing"
    );

    // generateName
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "cfg-"}})).expect("cm");
    let made = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("generateName");
    let name = made.metadata.name.unwrap_or_default();
    assert_eq!(name.len(), 9);
    assert!(
        name[4..]
            .bytes()
            .all(|c| objects::NAME_ALPHABET.contains(&c)),
        "{name}"
    );
}

#[tokio::test]
async fn dry_run_writes_nothing_and_is_audited() {
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s = secrets
        .create(&PostParams::default(), &secret("s", json!({"a": "1"})))
        .await
        .expect("create");
    let rv = s.metadata.resource_version.clone();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    secrets
        .create(&dry, &secret("other", json!({})))
        .await
        .expect("dry create");
    assert!(secrets.get_opt("other").await.expect("get").is_none());
    let pp = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let patched = secrets
        .patch("s", &pp, &Patch::Merge(json!({"stringData": {"a": "2"}})))
        .await
        .expect("dry patch");
    assert_eq!(
        patched.data.as_ref().map(|d| d["a"].0.clone()),
        Some(b"2".to_vec())
    );
    let dp = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    secrets.delete("s", &dp).await.expect("dry delete");
    let after = secrets.get("s").await.expect("still there");
    assert_eq!(after.metadata.resource_version, rv);
    assert_eq!(
        after.data.as_ref().map(|d| d["a"].0.clone()),
        Some(b"1".to_vec())
    );
    // dryRun in the DeleteOptions body only (what pullfix sends).
    let (code, _) = f
        .raw(
            "DELETE",
            "/api/v1/namespaces/default/secrets/s",
            Some(ADMIN),
            "application/json",
            r#"{"dryRun":["All"]}"#,
        )
        .await;
    assert_eq!(code, 200);
    assert!(secrets.get_opt("s").await.expect("get").is_some());
    let (code, _) = f
        .raw(
            "DELETE",
            "/api/v1/namespaces/default/secrets/s?dryRun=All",
            Some(ADMIN),
            "application/json",
            "",
        )
        .await;
    assert_eq!(code, 200);
    assert!(secrets.get_opt("s").await.expect("get").is_some());
    let (code, body) = f
        .raw(
            "DELETE",
            "/api/v1/namespaces/default/secrets/s?dryRun=Bogus",
            Some(ADMIN),
            "application/json",
            "",
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let audit = f.audit();
    let dry_lines: Vec<&Value> = audit
        .iter()
        .filter(|l| {
            l["requestURI"]
                .as_str()
                .is_some_and(|u| u.contains("dryRun=All"))
        })
        .collect();
    assert!(dry_lines.iter().any(|l| l["verb"] == "patch"
        && l["objectRef"]["name"] == "s"
        && l["objectRef"]["namespace"] == "default"));
    assert!(dry_lines.iter().any(|l| l["verb"] == "delete"));
    let line = dry_lines[0];
    assert_eq!(line["kind"], "Event");
    assert_eq!(line["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(line["stage"], "ResponseComplete");
    assert_eq!(line["user"]["username"], "admin");
    assert_eq!(line["objectRef"]["resource"], "secrets");
}

#[tokio::test]
async fn selectors_and_pagination() {
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), "nginx"))
            .await
            .expect("create");
    }
    pods.patch_status(
        "p1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .expect("status");
    let lp = ListParams::default().labels("app in (p1,p2)");
    assert_eq!(pods.list(&lp).await.expect("labels").items.len(), 2);
    let text = client
        .request_text(
            http::Request::get(
                "/api/v1/pods?fieldSelector=status.phase%21%3DRunning&resourceVersion=0",
            )
            .body(Vec::new())
            .expect("req"),
        )
        .await
        .expect("field selected");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["kind"], "PodList");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["items"][0]["kind"], "Pod");
    assert_eq!(v["items"][0]["apiVersion"], "v1");
    let e = api_err(
        pods.list(&ListParams::default().fields("spec.foo=bar"))
            .await
            .expect_err("400"),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: spec.foo")
    );

    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(2);
    // As kube-apiserver: an unfiltered page says how many items follow.
    let first = pods.list(&lp).await.expect("page");
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let filtered = pods
        .list(
            &ListParams::default()
                .limit(2)
                .fields("status.phase!=Running"),
        )
        .await
        .expect("filtered page");
    assert_eq!(filtered.metadata.remaining_item_count, None);
    loop {
        let page = pods.list(&lp).await.expect("page");
        assert!(page.items.len() <= 2);
        names.extend(page.items.iter().filter_map(|p| p.metadata.name.clone()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"]);
}

#[tokio::test]
async fn watches_replay_from_a_resource_version_and_expire() {
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let a: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "a", "labels": {"w": "yes"}}}))
            .expect("cm");
    let made = cms
        .create(&PostParams::default(), &a)
        .await
        .expect("create");
    let rv = made.metadata.resource_version.clone().unwrap_or_default();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .expect("patch");
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"w": "no"}}})),
    )
    .await
    .expect("relabel");
    let wp = WatchParams::default().labels("w=yes").timeout(2);
    let events: Vec<_> = cms
        .watch(&wp, &rv)
        .await
        .expect("watch")
        .try_collect()
        .await
        .expect("events");
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(_) => Some("ADDED"),
            WatchEvent::Modified(_) => Some("MODIFIED"),
            WatchEvent::Deleted(_) => Some("DELETED"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["MODIFIED", "DELETED"], "stops matching → DELETED");

    // kube-rs's watcher (list, then watch from the list's RV).
    let pods: Api<Pod> = Api::all(client.clone());
    let mut stream =
        kube::runtime::watcher(pods, kube::runtime::watcher::Config::default()).boxed();
    let writer: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut seen = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        match next {
            Ok(Some(Ok(kube::runtime::watcher::Event::InitDone))) => {
                writer
                    .create(&PostParams::default(), &pod("watched", "nginx"))
                    .await
                    .expect("create pod");
            }
            Ok(Some(Ok(kube::runtime::watcher::Event::Apply(p))))
                if p.metadata.name.as_deref() == Some("watched") =>
            {
                seen = true;
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!(
                "watcher ended: {:?}",
                other.map(|o| o.map(|r| r.map(|_| ()))).is_ok()
            ),
        }
    }
    assert!(
        seen,
        "the watcher saw the pod created after its initial list"
    );

    for i in 0..(store::HISTORY + 5) {
        cms.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": i.to_string()}})),
        )
        .await
        .expect("churn");
    }
    let events: Vec<_> = cms
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .expect("watch")
        .try_collect()
        .await
        .expect("events");
    match events.first() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {rv} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn status_subresource_isolation_binding_graceful_delete_and_logs() {
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods
        .create(&PostParams::default(), &pod("p", "registry.local/app"))
        .await
        .expect("create");
    let spec = p.spec.clone().expect("spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("Always")
    );
    assert_eq!(
        p.status.as_ref().and_then(|s| s.phase.clone()).as_deref(),
        Some("Pending")
    );
    assert_eq!(
        p.status
            .as_ref()
            .and_then(|s| s.qos_class.clone())
            .as_deref(),
        Some("BestEffort")
    );

    let main = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"x": "y"}}, "status": {"phase": "Running"}}),
            ),
        )
        .await
        .expect("main patch");
    assert_eq!(
        main.status.and_then(|s| s.phase).as_deref(),
        Some("Pending"),
        "main writes keep status"
    );
    let st = pods
        .patch_status("p", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"z": "1"}}, "status": {
            "phase": "Pending",
            "containerStatuses": [{"name": "app", "image": "registry.local/app", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}})))
        .await
        .expect("status patch");
    assert!(
        !st.metadata.labels.unwrap_or_default().contains_key("z"),
        "status writes change only status"
    );

    let (code, body) = f
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods/p/log",
            Some(ADMIN),
            "",
            "",
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["message"],
        r#"container "app" in pod "p" is waiting to start: trying and failing to pull image"#
    );

    let bind = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let (code, body) = f
        .raw(
            "POST",
            "/api/v1/namespaces/default/pods/p/binding",
            Some(ADMIN),
            "application/json",
            &bind.to_string(),
        )
        .await;
    assert_eq!((code, body["status"].clone()), (201, json!("Success")));
    let (code, body) = f
        .raw(
            "POST",
            "/api/v1/namespaces/default/pods/p/binding",
            Some(ADMIN),
            "application/json",
            &bind.to_string(),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        pods.get("p")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.node_name)
            .as_deref(),
        Some("n1")
    );

    pods.patch_status("p", &PatchParams::default(), &Patch::Merge(json!({"status": {"containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "one\ntwo\nthree"}}}]}})))
        .await
        .expect("terminated");
    let (code, body) = f
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods/p/log?tailLines=2",
            Some(ADMIN),
            "",
            "",
        )
        .await;
    assert_eq!((code, body), (200, json!("two\nthree\n")));

    // Bound pod: graceful deletion, then gone with grace 0 and the uid.
    let first = pods
        .delete("p", &DeleteParams::default())
        .await
        .expect("delete");
    let pending = first.left().expect("the pod comes back");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(pending.metadata.deletion_grace_period_seconds, Some(30));
    assert!(pods.get_opt("p").await.expect("get").is_some());
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pending.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    pods.delete("p", &now).await.expect("final delete");
    assert!(pods.get_opt("p").await.expect("get").is_none());
    // Unbound pods go at once.
    pods.create(&PostParams::default(), &pod("q", "x:1"))
        .await
        .expect("create q");
    pods.delete("q", &DeleteParams::default())
        .await
        .expect("delete q");
    assert!(pods.get_opt("q").await.expect("get").is_none());
}

#[tokio::test]
async fn authorization_wording_ssar_and_authentication() {
    let f = Fixture::new().await;
    let oncall = f.client("oncall").await;
    let secrets: Api<Secret> = Api::namespaced(oncall.clone(), "ns1");
    let e = api_err(secrets.get("x").await.expect_err("403"));
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        r#"secrets "x" is forbidden: User "oncall" cannot get resource "secrets" in API group "" in the namespace "ns1""#
    );
    let e = api_err(secrets.list(&ListParams::default()).await.expect_err("403"));
    assert_eq!(
        e.message,
        r#"secrets is forbidden: User "oncall" cannot list resource "secrets" in API group "" in the namespace "ns1""#
    );
    let nodes: Api<Node> = Api::all(oncall.clone());
    let e = api_err(nodes.list(&ListParams::default()).await.expect_err("403"));
    assert_eq!(
        e.message,
        r#"nodes is forbidden: User "oncall" cannot list resource "nodes" in API group "" at the cluster scope"#
    );
    let deps: Api<Deployment> = Api::namespaced(oncall.clone(), "default");
    let e = api_err(
        deps.patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect_err("403"),
    );
    assert!(
        e.message
            .contains(r#"cannot patch resource "deployments/scale" in API group "apps""#),
        "{}",
        e.message
    );

    let ssar_api: Api<SelfSubjectAccessReview> = Api::all(oncall.clone());
    let review = |verb: &str, resource: &str| -> SelfSubjectAccessReview {
        serde_json::from_value(json!({"spec": {"resourceAttributes": {"namespace": "ns1", "verb": verb, "group": "", "resource": resource}}})).expect("ssar")
    };
    let denied = ssar_api
        .create(&PostParams::default(), &review("get", "secrets"))
        .await
        .expect("ssar");
    let status = denied.status.expect("status");
    assert!(!status.allowed);
    // As RBAC: a denial carries no reason, so `kubectl auth can-i` prints "no".
    assert_eq!(status.reason.unwrap_or_default(), "");
    let ok = ssar_api
        .create(&PostParams::default(), &review("patch", "deployments"))
        .await
        .expect("ssar");
    assert!(ok.status.expect("status").allowed);

    let (code, body) = f
        .raw("GET", "/api/v1/namespaces", Some("wrong"), "", "")
        .await;
    assert_eq!((code, body["reason"].clone()), (401, json!("Unauthorized")));
    let (code, body) = f.raw("GET", "/api/v1/namespaces", None, "", "").await;
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains(r#"User "system:anonymous""#)
    );
    let (code, _) = f.raw("GET", "/version", None, "", "").await;
    assert_eq!(code, 200);
    let (code, body) = f.raw("GET", "/apis/apps/v1", None, "", "").await;
    assert_eq!(
        (code, body["kind"].clone()),
        (200, json!("APIResourceList"))
    );
    let audit = f.audit();
    assert!(audit.iter().any(|l| l["user"]["username"] == "oncall"
        && l["verb"] == "get"
        && l["responseStatus"]["code"] == 403));
}

#[tokio::test]
async fn namespaces_secrets_validation_and_bad_requests() {
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop"}})).expect("ns");
    let made = nss
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    assert_eq!(made.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    assert_eq!(
        made.spec.and_then(|s| s.finalizers),
        Some(vec!["kubernetes".to_string()])
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "shop");
    let bad: Secret = serde_json::from_value(json!({"metadata": {"name": "reg"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{not json"}})).expect("secret");
    let e = api_err(
        secrets
            .create(&PostParams::default(), &bad)
            .await
            .expect_err("422"),
    );
    assert!(e.message.starts_with(r#"Secret "reg" is invalid: data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": "#), "{}", e.message);
    secrets
        .create(&PostParams::default(), &secret("plain", json!({"a": "b"})))
        .await
        .expect("create");
    let e = api_err(
        secrets
            .patch(
                "plain",
                &PatchParams::default(),
                &Patch::Merge(json!({"type": "kubernetes.io/tls"})),
            )
            .await
            .expect_err("immutable"),
    );
    assert_eq!(
        e.message,
        r#"Secret "plain" is invalid: type: Invalid value: "kubernetes.io/tls": field is immutable"#
    );
    let e = api_err(
        secrets
            .patch(
                "plain",
                &PatchParams::apply("m"),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret"})),
            )
            .await
            .expect_err("415"),
    );
    assert_eq!((e.code, e.reason.as_str()), (415, "UnsupportedMediaType"));
    assert!(e.message.contains("server-side apply"));

    let (code, body) = f
        .raw(
            "POST",
            "/api/v1/namespaces/shop/configmaps",
            Some(ADMIN),
            "application/json",
            "{oops",
        )
        .await;
    assert_eq!((code, body["reason"].clone()), (400, json!("BadRequest")));
    let big = format!(
        r#"{{"metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "a".repeat(MAX_BODY + 10)
    );
    let (code, _) = f
        .raw(
            "POST",
            "/api/v1/namespaces/shop/configmaps",
            Some(ADMIN),
            "application/json",
            &big,
        )
        .await;
    assert_eq!(code, 413);
    let (code, body) = f
        .raw("GET", "/apis/nope.io/v1/things", Some(ADMIN), "", "")
        .await;
    assert_eq!((code, body["kind"].clone()), (404, json!("Status")));

    let (code, term) = f
        .raw("DELETE", "/api/v1/namespaces/shop", Some(ADMIN), "", "")
        .await;
    assert_eq!(code, 200);
    assert_eq!(term["status"]["phase"], "Terminating");
    assert!(nss.get_opt("shop").await.expect("get").is_none());
    assert!(secrets.get_opt("plain").await.expect("get").is_none());
    let (code, _) = f
        .raw("DELETE", "/api/v1/namespaces/default", Some(ADMIN), "", "")
        .await;
    assert_eq!(code, 403);
}

/// The ServiceAccount admission plugin: `default` when none is named, and
/// the plugin's 403 for a ServiceAccount that does not exist.
#[tokio::test]
async fn service_account_admission_defaults_and_refuses() {
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods
        .create(&PostParams::default(), &pod("plain", "nginx:1"))
        .await
        .expect("a pod naming no ServiceAccount");
    let spec = p.spec.expect("spec");
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert_eq!(spec.service_account.as_deref(), Some("default"));

    let mut named = pod("builder-pod", "nginx:1");
    named.spec.as_mut().expect("spec").service_account_name = Some("builder".into());
    let e = api_err(
        pods.create(&PostParams::default(), &named)
            .await
            .expect_err("no such ServiceAccount"),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        r#"pods "builder-pod" is forbidden: error looking up service account default/builder: serviceaccount "builder" not found"#
    );
    // Names are generated after admission: the message shows the prefix.
    let mut generated = named.clone();
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("builder-".into());
    let e = api_err(
        pods.create(&PostParams::default(), &generated)
            .await
            .expect_err("no such ServiceAccount"),
    );
    assert!(
        e.message.starts_with(r#"pods "builder-" is forbidden: "#),
        "{}",
        e.message
    );
    // A dry run is refused the same way and nothing is stored.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    assert_eq!(
        api_err(pods.create(&dry, &named).await.expect_err("dry run")).code,
        403
    );
    assert!(pods.get_opt("builder-pod").await.expect("get").is_none());

    let (code, _) = f
        .raw(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts",
            Some(ADMIN),
            "application/json",
            r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"builder"}}"#,
        )
        .await;
    assert_eq!(code, 201);
    let p = pods
        .create(&PostParams::default(), &named)
        .await
        .expect("the ServiceAccount exists now");
    assert_eq!(
        p.spec.and_then(|s| s.service_account),
        Some("builder".into())
    );

    // A new namespace has no `default` ServiceAccount until the namespace
    // controller makes one (there is none in this test).
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "fresh"}})).expect("ns");
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let fresh: Api<Pod> = Api::namespaced(client.clone(), "fresh");
    let e = api_err(
        fresh
            .create(&PostParams::default(), &pod("early", "nginx:1"))
            .await
            .expect_err("no default ServiceAccount yet"),
    );
    assert_eq!(
        e.message,
        r#"pods "early" is forbidden: error looking up service account fresh/default: serviceaccount "default" not found"#
    );
    // Templates keep what they were given: admission is per pod.
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "fresh");
    let d = deps
        .create(&PostParams::default(), &deployment("web", "nginx:1"))
        .await
        .expect("deployment");
    let template = d.spec.and_then(|s| s.template.spec).expect("template spec");
    assert_eq!(template.service_account_name, None);
    assert_eq!(template.service_account, None);
}

// ---------------------------------------------------------------- kubectl

const KUBECTL: &str = "/usr/bin/kubectl";

/// The kubectl tests need the real kubectl: without it they fail, never
/// pass unseen.
fn require_kubectl() {
    assert!(
        std::path::Path::new(KUBECTL).exists(),
        "this test drives the real kubectl and there is no {KUBECTL}: install kubectl 1.32 or \
         newer there (https://kubernetes.io/docs/tasks/tools/), or run the other tests with \
         `cargo test -p pullfix-sandbox -- --skip apiserver::tests::kubectl_`"
    );
}

fn kubectl(f: &Fixture, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let kc = f.dir.path().join("kubeconfig");
    if !kc.exists() {
        std::fs::write(&kc, f.server.kubeconfig("admin", Some("default")))
            .expect("write kubeconfig");
    }
    kubectl_with(f, &kc, args, stdin)
}

/// kubectl with the kubeconfig at `kc`.
fn kubectl_with(
    f: &Fixture,
    kc: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write as _;
    let mut cmd = std::process::Command::new(KUBECTL);
    cmd.args(args)
        .env("KUBECONFIG", kc)
        .env("HOME", f.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run kubectl");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.unwrap_or("").as_bytes());
    }
    let out = child.wait_with_output().expect("kubectl output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(f: &Fixture, args: &[&str], stdin: Option<&str>) -> String {
    let (success, out, err) = kubectl(f, args, stdin);
    assert!(success, "kubectl {args:?} failed: {err}\n{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_everyday_commands() {
    require_kubectl();
    let f = Fixture::new().await;
    let client = f.client("admin").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod("web-1", "registry.local/web:1"),
    )
    .await
    .expect("pod");
    pods.patch_status("web-1", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "app", "image": "registry.local/web:1", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}})))
        .await
        .expect("status");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let uid = pods
        .get("web-1")
        .await
        .expect("pod")
        .metadata
        .uid
        .unwrap_or_default();
    let ev = json!({"metadata": {"name": "web-1.1"}, "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": uid}, "reason": "BackOff", "message": "Back-off pulling image \"registry.local/web:1\"", "type": "Normal", "count": 3, "lastTimestamp": "2024-01-01T00:00:00Z", "firstTimestamp": "2024-01-01T00:00:00Z", "source": {"component": "kubelet"}});
    events
        .create(
            &PostParams::default(),
            &serde_json::from_value(ev).expect("event"),
        )
        .await
        .expect("event");

    let f = tokio::task::spawn_blocking(move || {
        let out = ok(&f, &["get", "pods"], None);
        let header: Vec<&str> = out.lines().next().unwrap_or("").split_whitespace().collect();
        assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{out}");
        assert!(out.contains("ImagePullBackOff"), "{out}");
        let out = ok(&f, &["describe", "pod", "web-1"], None);
        assert!(out.contains("Back-off pulling image"), "{out}");
        assert!(out.contains("registry.local/web:1"), "{out}");
        let out = ok(&f, &["get", "events"], None);
        assert!(out.contains("BackOff"), "{out}");

        let yaml = ok(&f, &["create", "secret", "docker-registry", "regcred", "--docker-server=r", "--docker-username=u", "--docker-password=p", "--dry-run=client", "-o", "yaml"], None);
        let out = ok(&f, &["apply", "-f", "-"], Some(&yaml));
        assert!(out.contains("secret/regcred created"), "{out}");
        let yaml2 = ok(&f, &["create", "secret", "docker-registry", "regcred", "--docker-server=r", "--docker-username=u", "--docker-password=p2", "--dry-run=client", "-o", "yaml"], None);
        let out = ok(&f, &["apply", "-f", "-"], Some(&yaml2));
        assert!(out.contains("secret/regcred configured"), "{out}");
        let b64 = ok(&f, &["get", "secret", "regcred", "-o", r"jsonpath={.data.\.dockerconfigjson}"], None);
        let cfg = base64::engine::general_purpose::STANDARD.decode(b64.trim()).expect("base64");
        let cfg: Value = serde_json::from_slice(&cfg).expect("docker config");
        assert_eq!(cfg["auths"]["r"]["password"], "p2");

        let manifest = serde_json::to_string(&deployment("web", "registry.local/web:1")).expect("json");
        ok(&f, &["apply", "-f", "-"], Some(&manifest));
        ok(&f, &["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.local/web:2"}]}}}}"#], None);
        ok(&f, &["patch", "deployment", "web", "--type", "merge", "-p", r#"{"metadata":{"labels":{"team":"shop"}}}"#], None);
        ok(&f, &["patch", "deployment", "web", "--type", "json", "-p", r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#], None);
        ok(&f, &["set", "image", "deployment/web", "app=registry.local/web:3"], None);
        ok(&f, &["rollout", "restart", "deployment/web"], None);
        let out = ok(&f, &["get", "deployment", "web", "-o", "json"], None);
        let d: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "registry.local/web:3");
        assert_eq!(d["spec"]["template"]["spec"]["containers"].as_array().map(Vec::len), Some(1));
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["metadata"]["labels"]["team"], "shop");
        assert!(d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string());
        let out = ok(&f, &["get", "all"], None);
        assert!(out.contains("deployment.apps/web") && out.contains("pod/web-1"), "{out}");
        let (_, out, _) = kubectl(&f, &["get", "pods", "-w", "--request-timeout=2s"], None);
        assert!(out.contains("web-1"), "{out}");
        let (_, out, err) = kubectl(&f, &["explain", "pods"], None);
        assert!(out.contains("Pod") || !err.is_empty(), "explain says something: {out}{err}");
        f
    })
    .await
    .expect("kubectl steps");

    // rollout status against a written Deployment status.
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = deps.get("web").await.expect("get");
    let generation = d.metadata.generation.unwrap_or(0);
    deps.patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}})))
        .await
        .expect("status");
    let f = tokio::task::spawn_blocking(move || {
        let out = ok(
            &f,
            &["rollout", "status", "deployment/web", "--timeout=10s"],
            None,
        );
        assert!(out.contains("successfully rolled out"), "{out}");
        let out = ok(&f, &["delete", "pod", "web-1"], None);
        assert!(out.contains("deleted"), "{out}");
        f
    })
    .await
    .expect("kubectl rollout");
    assert!(pods.get_opt("web-1").await.expect("get").is_none());
    let audit = f.audit();
    assert!(audit.iter().any(|l| {
        l["userAgent"]
            .as_str()
            .is_some_and(|u| u.starts_with("kubectl"))
            && l["verb"] == "patch"
    }));
}

/// One request as [`RecordingProxy`] saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, as sent (with the `/u/TOKEN` prefix).
    path: String,
    content_type: String,
    accept: String,
    body: Bytes,
    status: u16,
    response_content_type: String,
}

/// A plain-HTTP proxy in front of the server that records every request
/// and the answer's status and content type, so a test sees what kubectl
/// really sent.
struct RecordingProxy {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _task: ServerTask,
}

impl RecordingProxy {
    async fn start(upstream: String) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let client = reqwest::Client::new();
        let task = ServerTask::spawn(&tokio::runtime::Handle::current(), move |stopped| {
            serve_http1(listener, stopped, move |req, _peer| {
                let (log, client, upstream) = (log.clone(), client.clone(), upstream.clone());
                async move { proxy_one(req, &client, &upstream, &log).await }
            })
        });
        RecordingProxy {
            url,
            seen,
            _task: task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("proxy log").clone()
    }
}

async fn proxy_one(
    req: hyper::Request<Incoming>,
    client: &reqwest::Client,
    upstream: &str,
    log: &Mutex<Vec<Seen>>,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = req.headers().clone();
    let header = |h: &http::HeaderMap, name: http::header::HeaderName| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let body = req
        .into_body()
        .collect()
        .await
        .expect("request body")
        .to_bytes();
    let mut forward = client
        .request(method.clone(), format!("{upstream}{path}"))
        .body(body.clone());
    for (name, value) in &headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.send().await.expect("forward to the server");
    let status = answer.status();
    let response_content_type = header(answer.headers(), http::header::CONTENT_TYPE);
    let answer_body = answer.bytes().await.expect("the server's answer");
    log.lock().expect("proxy log").push(Seen {
        method: method.to_string(),
        path,
        content_type: header(&headers, http::header::CONTENT_TYPE),
        accept: header(&headers, http::header::ACCEPT),
        body,
        status: status.as_u16(),
        response_content_type: response_content_type.clone(),
    });
    let mut r = Response::new(Full::new(answer_body));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(&response_content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// The length-delimited fields of a protobuf message (other wire types are
/// skipped).
fn len_fields(mut b: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    fn varint(b: &mut &[u8]) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().ok_or("truncated varint")?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        match key & 7 {
            0 => {
                varint(&mut b)?;
            }
            1 => b = b.get(8..).ok_or("truncated fixed64")?,
            2 => {
                let n = usize::try_from(varint(&mut b)?).map_err(|e| e.to_string())?;
                let value = b.get(..n).ok_or("truncated length-delimited field")?;
                out.push((key >> 3, value));
                b = &b[n..];
            }
            5 => b = b.get(4..).ok_or("truncated fixed32")?,
            w => return Err(format!("unexpected wire type {w}")),
        }
    }
    Ok(out)
}

/// (apiVersion, kind) of a Kubernetes protobuf body: the magic `k8s\0`,
/// then a `runtime.Unknown` (1: typeMeta {1: apiVersion, 2: kind}, 2: raw).
/// Read here from the wire format, not with the server's decoder.
fn protobuf_type(body: &[u8]) -> Result<(String, String), String> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or("the body does not start with the magic k8s\\0")?;
    let unknown = len_fields(rest)?;
    let field = |fields: &[(u64, &[u8])], n: u64| {
        fields
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, v)| v.to_vec())
            .unwrap_or_default()
    };
    if field(&unknown, 2).is_empty() {
        return Err("runtime.Unknown carries no raw object".into());
    }
    let type_meta = field(&unknown, 1);
    let type_meta = len_fields(&type_meta)?;
    let text = |n| String::from_utf8_lossy(&field(&type_meta, n)).into_owned();
    Ok((text(1), text(2)))
}

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// kubectl 1.32+ typed clients send protobuf bodies (seen through a
/// recording proxy), and the server decodes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_commands_send_protobuf() {
    require_kubectl();
    let f = Fixture::new().await;
    let proxy = RecordingProxy::start(f.server.url()).await;
    std::fs::write(
        f.dir.path().join("kubeconfig"),
        kubeconfig_yaml(&proxy.url, ADMIN, Some("default")),
    )
    .expect("write the kubeconfig through the proxy");
    let f = tokio::task::spawn_blocking(move || {
        ok(&f, &["create", "namespace", "shop"], None);
        ok(
            &f,
            &[
                "-n",
                "shop",
                "create",
                "secret",
                "docker-registry",
                "regcred",
                "--docker-server=r.example",
                "--docker-username=u",
                "--docker-password=p",
            ],
            None,
        );
        ok(
            &f,
            &[
                "-n",
                "shop",
                "create",
                "configmap",
                "cfg",
                "--from-literal=a=b",
            ],
            None,
        );
        ok(
            &f,
            &["-n", "shop", "create", "serviceaccount", "builder"],
            None,
        );
        ok(
            &f,
            &[
                "-n",
                "shop",
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=2",
                "--port=80",
            ],
            None,
        );
        let out = ok(&f, &["auth", "can-i", "get", "secrets", "-n", "shop"], None);
        assert_eq!(out.trim(), "yes");
        f
    })
    .await
    .expect("kubectl create");
    let client = f.client("admin").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "shop");
    let s = secrets.get("regcred").await.expect("secret");
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
    let cfg = s
        .data
        .unwrap_or_default()
        .get(".dockerconfigjson")
        .map(|b| b.0.clone())
        .unwrap_or_default();
    let cfg: Value = serde_json::from_slice(&cfg).expect("docker config json");
    assert_eq!(cfg["auths"]["r.example"]["username"], "u");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    assert_eq!(
        cms.get("cfg")
            .await
            .expect("cm")
            .data
            .unwrap_or_default()
            .get("a")
            .map(String::as_str),
        Some("b")
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let d = deps.get("web").await.expect("deployment");
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let c = &spec.template.spec.expect("pod spec").containers[0];
    assert_eq!(
        (c.name.as_str(), c.image.as_deref()),
        ("nginx", Some("nginx:1.27"))
    );
    assert_eq!(c.ports.as_ref().map(|p| p[0].container_port), Some(80));
    let managers: Vec<String> = s
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["kubectl-create"]);

    // What kubectl sent: each create a protobuf envelope of its kind.
    let seen = proxy.seen();
    let sent: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {} ({})", s.method, s.path, s.content_type))
        .collect();
    for (plural, api_version, kind) in [
        ("namespaces", "v1", "Namespace"),
        ("secrets", "v1", "Secret"),
        ("configmaps", "v1", "ConfigMap"),
        ("serviceaccounts", "v1", "ServiceAccount"),
        ("deployments", "apps/v1", "Deployment"),
        (
            "selfsubjectaccessreviews",
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
        ),
    ] {
        let suffix = format!("/{plural}");
        let creates: Vec<&Seen> = seen
            .iter()
            .filter(|s| {
                s.method == "POST" && s.path.split('?').next().unwrap_or("").ends_with(&suffix)
            })
            .collect();
        assert_eq!(
            creates.len(),
            1,
            "one POST to {plural}; kubectl sent: {sent:#?}"
        );
        let s = creates[0];
        assert!(
            s.content_type.starts_with(PROTOBUF),
            "kubectl sent the {kind} as {:?}, not {PROTOBUF}",
            s.content_type
        );
        assert_eq!(
            protobuf_type(&s.body).unwrap_or_else(|e| panic!("the {kind} body: {e}")),
            (api_version.to_string(), kind.to_string())
        );
        assert_eq!(s.status, 201, "{kind}");
        // kubectl offers protobuf and JSON; the server answers JSON, which
        // it accepts.
        assert!(
            s.accept.contains(PROTOBUF) && s.accept.contains("application/json"),
            "{kind}: Accept {:?}",
            s.accept
        );
        assert_eq!(s.response_content_type, "application/json", "{kind}");
    }
}

/// Serves for manual experiments with kubectl:
/// `PULLFIX_APISERVER_MANUAL=/tmp/kc cargo test --lib manual_server -- --ignored`
/// writes an admin kubeconfig to that path and serves for ten minutes.
#[tokio::test]
#[ignore]
async fn manual_server() {
    let Ok(path) = std::env::var("PULLFIX_APISERVER_MANUAL") else {
        return;
    };
    let f = Fixture::new().await;
    std::fs::write(&path, f.server.kubeconfig("admin", None)).expect("write kubeconfig");
    tokio::time::sleep(Duration::from_secs(600)).await;
}
