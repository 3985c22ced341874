//! The I/O side: watches keep the snapshot current, the loop plans after a
//! debounce and executes the actions, events are recorded.

use super::*;

/// (namespace, involved uid, reason, message).
pub(super) type EventKey = (String, String, String, String);

pub(super) struct Shared {
    client: Client,
    snapshot: Mutex<Snapshot>,
    changed: Notify,
    /// Recorded events → (name, count).
    events: Mutex<HashMap<EventKey, (String, i64)>>,
}

/// Runs the controllers until `shutdown` becomes true (or its sender is dropped).
pub async fn run(
    client: Client,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        client: client.clone(),
        snapshot: Mutex::new(Snapshot::default()),
        changed: Notify::new(),
        events: Mutex::new(HashMap::new()),
    });
    let watches: Vec<_> = Kind::WATCHED
        .into_iter()
        .map(|k| tokio::spawn(watch_kind(shared.clone(), k)))
        .collect();
    let result = control_loop(&shared, &options, &mut shutdown).await;
    for w in watches {
        w.abort();
    }
    result
}

pub(super) async fn control_loop(
    shared: &Arc<Shared>,
    options: &Options,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let stopped = |s: &watch::Receiver<bool>| *s.borrow();
    // Wait for the first lists (bounded: a kind the server lacks never lists).
    let started = tokio::time::Instant::now();
    loop {
        let synced = {
            let snap = shared.snapshot.lock().expect("snapshot lock");
            Kind::WATCHED.iter().all(|k| snap.is_synced(*k))
        };
        if synced || started.elapsed() >= INITIAL_SYNC || stopped(shutdown) {
            break;
        }
        tokio::select! {
            () = shared.changed.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            r = shutdown.changed() => if r.is_err() { return Ok(()) },
        }
    }
    let mut wake: Option<tokio::time::Instant> = None;
    let mut warned: HashSet<String> = HashSet::new();
    loop {
        if stopped(shutdown) {
            return Ok(());
        }
        tokio::time::sleep(DEBOUNCE).await;
        let actions = {
            let snap = shared.snapshot.lock().expect("snapshot lock");
            plan_all(&snap, &Clock::new(Utc::now(), options.time_scale))
        };
        let writes = actions
            .iter()
            .filter(|a| !matches!(a, Action::RequeueAfter(_)))
            .count();
        if writes > 0 {
            tracing::debug!("controllers: {writes} writes");
        }
        let now = tokio::time::Instant::now();
        let mut next = now + RESYNC;
        if let Some(w) = wake.filter(|w| *w > now) {
            next = next.min(w);
        }
        let mut failed = false;
        for action in actions {
            if let Action::RequeueAfter(d) = action {
                next = next.min(now + d);
                continue;
            }
            if let Err(e) = execute(shared, action).await {
                // The same failure again (retried every second) is logged once.
                failed = true;
                let text = format!("{e:#}");
                if warned.insert(text.clone()) {
                    tracing::warn!("controllers: {text}");
                } else {
                    tracing::debug!("controllers: {text}");
                }
                next = next.min(tokio::time::Instant::now() + RETRY);
            }
        }
        if !failed {
            warned.clear();
        }
        wake = Some(next);
        tokio::select! {
            () = shared.changed.notified() => {}
            () = tokio::time::sleep_until(next) => {}
            r = shutdown.changed() => if r.is_err() { return Ok(()) },
        }
    }
}

pub(super) async fn watch_kind(shared: Arc<Shared>, kind: Kind) {
    let api: Api<DynamicObject> = Api::all_with(shared.client.clone(), &kind.api_resource());
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut buffer: Option<BTreeMap<String, Value>> = None;
    let mut failures = 0u32;
    while let Some(event) = stream.next().await {
        let to_value = |o: DynamicObject| -> Option<Value> {
            let mut v = serde_json::to_value(o).ok()?;
            strip(&mut v);
            Some(v)
        };
        match event {
            Ok(watcher::Event::Init) => buffer = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(o)) => {
                if let (Some(b), Some(v)) = (buffer.as_mut(), to_value(o)) {
                    b.insert(object_key(namespace(&v), name(&v)), v);
                }
            }
            Ok(watcher::Event::InitDone) => {
                failures = 0;
                let objects = buffer.take().unwrap_or_default();
                shared
                    .snapshot
                    .lock()
                    .expect("snapshot lock")
                    .replace_all(kind, objects);
                shared.changed.notify_one();
            }
            Ok(watcher::Event::Apply(o)) => {
                if let Some(v) = to_value(o) {
                    shared
                        .snapshot
                        .lock()
                        .expect("snapshot lock")
                        .apply(kind, v);
                    shared.changed.notify_one();
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                let (ns, n) = (
                    o.metadata.namespace.clone().unwrap_or_default(),
                    o.metadata.name.clone().unwrap_or_default(),
                );
                let rv = o.metadata.resource_version.and_then(|r| r.parse().ok());
                shared
                    .snapshot
                    .lock()
                    .expect("snapshot lock")
                    .remove(kind, &ns, &n, rv);
                shared.changed.notify_one();
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!("controllers: watch {}: {e}", kind.plural());
                } else {
                    tracing::debug!("controllers: watch {}: {e}", kind.plural());
                }
            }
        }
    }
}

pub(super) fn is_status(v: &Value) -> bool {
    v["kind"].as_str() == Some("Status")
}

/// Errors that are part of normal operation: the object is gone, already
/// exists, or its namespace is going away.
pub(super) fn expected(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.code == 404
                || s.code == 409
                || s.message.contains("being terminated")
                || s.message.contains("already assigned")
        }
        _ => false,
    }
}

pub(super) async fn request(
    shared: &Shared,
    req: http::Request<Vec<u8>>,
) -> Result<Value, kube::Error> {
    shared.client.request::<Value>(req).await
}

pub(super) async fn execute(shared: &Shared, action: Action) -> anyhow::Result<()> {
    let result = execute_inner(shared, &action).await;
    match result {
        Err(e) if expected(&e) => {
            tracing::debug!("controllers: {action:?}: {e}");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("{}: {e}", describe(&action))),
        Ok(()) => Ok(()),
    }
}

pub(super) fn describe(a: &Action) -> String {
    match a {
        Action::Create {
            kind,
            namespace,
            body,
            ..
        } => format!(
            "create {} {namespace}/{}",
            kind.name(),
            if name(body).is_empty() {
                str_at(body, &["metadata", "generateName"])
            } else {
                name(body)
            }
        ),
        Action::Patch {
            kind,
            namespace,
            name,
            ..
        } => format!("patch {} {namespace}/{name}", kind.name()),
        Action::PatchStatus {
            kind,
            namespace,
            name,
            ..
        } => {
            format!("update status of {} {namespace}/{name}", kind.name())
        }
        Action::Delete {
            kind,
            namespace,
            name,
            ..
        }
        | Action::Collect {
            kind,
            namespace,
            name,
            ..
        } => {
            format!("delete {} {namespace}/{name}", kind.name())
        }
        Action::Bind {
            namespace,
            pod,
            node,
            ..
        } => format!("bind pod {namespace}/{pod} to {node}"),
        Action::Event(e) => format!("record event {} in {}", e.reason, e.namespace),
        Action::RequeueAfter(_) => "requeue".into(),
    }
}

pub(super) fn delete_params(uid: &str) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

pub(super) async fn execute_inner(shared: &Shared, action: &Action) -> Result<(), kube::Error> {
    match action {
        Action::Create {
            kind,
            namespace,
            body,
            event,
        } => create(shared, *kind, namespace, body, event.as_ref()).await,
        Action::Patch {
            kind,
            namespace,
            name,
            patch,
        } => merge_patch(shared, *kind, namespace, name, None, patch).await,
        Action::PatchStatus {
            kind,
            namespace,
            name,
            patch,
        } => merge_patch(shared, *kind, namespace, name, Some("status"), patch).await,
        Action::Delete {
            kind,
            namespace,
            name: n,
            uid,
            event,
        } => {
            delete(shared, *kind, namespace, n, uid).await?;
            if let Some(e) = event {
                record(shared, e).await;
            }
            Ok(())
        }
        Action::Collect {
            kind,
            namespace,
            name: n,
            uid,
            owners,
        } => collect(shared, *kind, namespace, n, uid, owners).await,
        Action::Bind {
            namespace,
            pod,
            node,
            event,
        } => bind(shared, namespace, pod, node, event.as_ref()).await,
        Action::Event(e) => {
            record(shared, e).await;
            Ok(())
        }
        Action::RequeueAfter(_) => Ok(()),
    }
}

/// POST `body`; records `event` (with `{name}` filled in) once the object
/// exists, or a `FailedCreate` warning when a pod is refused.
async fn create(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    body: &Value,
    event: Option<&EventRecord>,
) -> Result<(), kube::Error> {
    let req = Request::new(kind.collection_path(namespace))
        .create(
            &PostParams::default(),
            serde_json::to_vec(body).map_err(kube::Error::SerdeError)?,
        )
        .map_err(kube::Error::BuildRequest)?;
    match request(shared, req).await {
        Ok(created) => {
            let created_name = name(&created).to_string();
            shared
                .snapshot
                .lock()
                .expect("snapshot lock")
                .apply(kind, created);
            if let Some(e) = event {
                let mut e = e.clone();
                e.message = e.message.replace("{name}", &created_name);
                record(shared, &e).await;
            }
            Ok(())
        }
        Err(err) => {
            if let (Some(e), kube::Error::Api(s), Kind::Pod) = (event, &err, kind)
                && !s.message.contains("being terminated")
            {
                let mut e = e.clone();
                e.kind = "Warning";
                e.reason = "FailedCreate".into();
                e.message = format!("Error creating: {}", s.message);
                record(shared, &e).await;
            }
            Err(err)
        }
    }
}

/// JSON merge patch of the object (or of its `subresource`); the answer
/// goes into the snapshot.
async fn merge_patch(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    name: &str,
    subresource: Option<&str>,
    patch: &Value,
) -> Result<(), kube::Error> {
    let request_for = Request::new(kind.collection_path(namespace));
    let params = PatchParams::default();
    let req = match subresource {
        Some(sub) => request_for.patch_subresource(sub, name, &params, &Patch::Merge(patch)),
        None => request_for.patch(name, &params, &Patch::Merge(patch)),
    }
    .map_err(kube::Error::BuildRequest)?;
    let v = request(shared, req).await?;
    shared
        .snapshot
        .lock()
        .expect("snapshot lock")
        .apply_answer(kind, v);
    Ok(())
}

/// Deletes a dependent once a GET confirms that every owner is gone (or
/// was replaced by an object with another UID).
async fn collect(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    n: &str,
    uid: &str,
    owners: &[(Kind, String, String)],
) -> Result<(), kube::Error> {
    for (okind, oname, ouid) in owners {
        let req = Request::new(okind.collection_path(namespace))
            .get(oname, &Default::default())
            .map_err(kube::Error::BuildRequest)?;
        match request(shared, req).await {
            Ok(o) if self::uid(&o) == ouid => return Ok(()),
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    tracing::debug!("controllers: collecting {} {namespace}/{n}", kind.name());
    delete(shared, kind, namespace, n, uid).await
}

/// POST `pods/NAME/binding`; the pod's `nodeName` is set in the snapshot.
async fn bind(
    shared: &Shared,
    namespace: &str,
    pod: &str,
    node: &str,
    event: Option<&EventRecord>,
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let req = Request::new(Kind::Pod.collection_path(namespace))
        .create_subresource(
            "binding",
            pod,
            &PostParams::default(),
            serde_json::to_vec(&body).map_err(kube::Error::SerdeError)?,
        )
        .map_err(kube::Error::BuildRequest)?;
    request(shared, req).await?;
    shared
        .snapshot
        .lock()
        .expect("snapshot lock")
        .update_local(Kind::Pod, namespace, pod, |p| {
            p["spec"]["nodeName"] = json!(node);
        });
    if let Some(e) = event {
        record(shared, e).await;
    }
    Ok(())
}

pub(super) async fn delete(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    n: &str,
    uid: &str,
) -> Result<(), kube::Error> {
    let req = Request::new(kind.collection_path(namespace))
        .delete(n, &delete_params(uid))
        .map_err(kube::Error::BuildRequest)?;
    let v = request(shared, req).await?;
    shared
        .snapshot
        .lock()
        .expect("snapshot lock")
        .delete_answer(kind, namespace, n, v);
    Ok(())
}

/// Records an event, folding a repeat into `count` like the event recorder.
pub(super) async fn record(shared: &Shared, e: &EventRecord) {
    let key = (
        e.namespace.clone(),
        str_at(&e.involved, &["uid"]).to_string(),
        e.reason.clone(),
        e.message.clone(),
    );
    let now = Utc::now();
    let stamp = rfc3339(now);
    let path = Kind::Event.collection_path(&e.namespace);
    let seen = shared.events.lock().expect("event lock").get(&key).cloned();
    if let Some((event_name, count)) = seen {
        let patch = json!({"count": count + 1, "lastTimestamp": stamp});
        if let Ok(req) =
            Request::new(&path).patch(&event_name, &PatchParams::default(), &Patch::Merge(&patch))
            && request(shared, req).await.is_ok()
        {
            shared
                .events
                .lock()
                .expect("event lock")
                .insert(key, (event_name, count + 1));
            return;
        }
    }
    let event_name = format!(
        "{}.{:x}",
        str_at(&e.involved, &["name"]),
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let mut body = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": event_name, "namespace": e.namespace},
        "involvedObject": e.involved,
        "reason": e.reason, "message": e.message, "type": e.kind,
        "source": {"component": e.component},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "reportingComponent": e.component, "reportingInstance": "",
    });
    if e.component == SCHEDULER {
        // The scheduler writes events.k8s.io events: eventTime and action.
        body["eventTime"] = json!(now.to_rfc3339_opts(SecondsFormat::Micros, true));
        body["action"] = json!(if e.reason == "Scheduled" {
            "Binding"
        } else {
            "Scheduling"
        });
        body["reportingInstance"] = json!("default-scheduler-pullfix-sandbox");
    }
    let Ok(bytes) = serde_json::to_vec(&body) else {
        return;
    };
    let Ok(req) = Request::new(&path).create(&PostParams::default(), bytes) else {
        return;
    };
    match request(shared, req).await {
        Ok(_) => {
            let mut events = shared.events.lock().expect("event lock");
            if events.len() > 4096 {
                events.clear();
            }
            events.insert(key, (event_name, 1));
        }
        Err(err) if expected(&err) => {
            tracing::debug!("controllers: record event {}: {err}", e.reason);
        }
        Err(err) => tracing::warn!(
            "controllers: record event {} in {}: {err}",
            e.reason,
            e.namespace
        ),
    }
}
