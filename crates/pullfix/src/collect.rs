//! Reading the cluster: paged pod lists decoded into small structs (only
//! the fields pullfix needs, so 10,000 pods stay cheap), owners, events,
//! pull secrets, ServiceAccounts, nodes and refresh CronJobs.
//!
//! Every function here does I/O; the decisions are made by pure code in
//! `scan` and `diagnose`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use kube::Client;
use serde::Deserialize;

/// A pod, reduced to what diagnosis reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodLite {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: PodSpecLite,
    #[serde(default)]
    pub status: PodStatusLite,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default)]
    pub owner_references: Vec<OwnerRef>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecLite {
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub service_account_name: Option<String>,
    #[serde(default)]
    pub image_pull_secrets: Vec<NameRef>,
    #[serde(default)]
    pub containers: Vec<ContainerLite>,
    #[serde(default)]
    pub init_containers: Vec<ContainerLite>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct NameRef {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerLite {
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatusLite {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatusLite>,
    #[serde(default)]
    pub init_container_statuses: Vec<ContainerStatusLite>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatusLite {
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub state: StateLite,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StateLite {
    #[serde(default)]
    pub waiting: Option<Waiting>,
    #[serde(default)]
    pub running: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Waiting {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct ListLite<T> {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Deserialize, Default)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

/// Which namespaces to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespace(String),
}

impl Scope {
    /// The API path of a core resource in this scope.
    pub fn path(&self, resource: &str) -> String {
        match self {
            Scope::All => format!("/api/v1/{resource}"),
            Scope::Namespace(ns) => format!("/api/v1/namespaces/{ns}/{resource}"),
        }
    }
}

/// Page size for list calls (kubectl uses 500 too).
pub const PAGE_SIZE: u32 = 500;

/// Lists pods page by page, handing each page's pods to `keep`, which
/// returns the ones worth keeping (so memory stays bounded by one page plus
/// what is kept). Returns the kept pods and the number of pods seen.
pub async fn list_pods_filtered<T>(
    client: &Client,
    scope: &Scope,
    query: &str,
    mut keep: impl FnMut(PodLite) -> Option<T>,
) -> anyhow::Result<(Vec<T>, usize)> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    let mut cont: Option<String> = None;
    loop {
        let mut path = format!("{}?limit={PAGE_SIZE}", scope.path("pods"));
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(c) = &cont {
            path.push_str("&continue=");
            path.push_str(&urlencode(c));
        }
        let req = http::Request::get(&path)
            .body(Vec::new())
            .context("build the pod list request")?;
        let page: ListLite<PodLite> = client
            .request(req)
            .await
            .map_err(|e| crate::errors::api_error(e, "list pods", scope_name(scope)))?;
        seen += page.items.len();
        kept.extend(page.items.into_iter().filter_map(&mut keep));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => cont = Some(c),
            None => break,
        }
    }
    Ok((kept, seen))
}

fn scope_name(scope: &Scope) -> String {
    match scope {
        Scope::All => "all namespaces".into(),
        Scope::Namespace(ns) => format!("namespace {ns}"),
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    crate::encoding::percent_encode(s)
}

/// GETs one object as a small struct; `Ok(None)` on 404.
pub async fn get_opt<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    what: &str,
) -> anyhow::Result<Option<T>> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .context("build request")?;
    match client.request::<T>(req).await {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(crate::errors::api_error(e, "get", what.to_string())),
    }
}

/// Lists objects at `path` (all pages) as small structs.
pub async fn list_all<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    what: &str,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    let mut cont: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let mut p = format!("{path}{sep}limit={PAGE_SIZE}");
        if let Some(c) = &cont {
            p.push_str("&continue=");
            p.push_str(&urlencode(c));
        }
        let req = http::Request::get(&p)
            .body(Vec::new())
            .context("build request")?;
        let page: ListLite<T> = client
            .request(req)
            .await
            .map_err(|e| crate::errors::api_error(e, "list", what.to_string()))?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => cont = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// A workload controller's replica counts and rollout state.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadLite {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: serde_json::Value,
    #[serde(default)]
    pub status: serde_json::Value,
}

/// How many pods the scope holds, from one `limit=1` list
/// (`remainingItemCount`); `None` when the server does not say.
pub async fn count_pods(client: &Client, scope: &Scope) -> Option<usize> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct CountMeta {
        #[serde(default)]
        remaining_item_count: Option<usize>,
    }
    #[derive(Deserialize)]
    struct Counted {
        metadata: CountMeta,
        #[serde(default)]
        items: Vec<serde::de::IgnoredAny>,
    }
    let req = http::Request::get(format!("{}?limit=1", scope.path("pods")))
        .body(Vec::new())
        .ok()?;
    let c: Counted = client.request(req).await.ok()?;
    Some(c.items.len() + c.metadata.remaining_item_count.unwrap_or(0))
}

/// An event, reduced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLite {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub count: Option<i32>,
    #[serde(default)]
    pub last_timestamp: Option<String>,
    #[serde(default)]
    pub event_time: Option<String>,
    #[serde(default)]
    pub involved_object: InvolvedLite,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedLite {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub field_path: Option<String>,
}

/// The events about one pod, newest first.
pub async fn pod_events(client: &Client, ns: &str, pod: &str) -> anyhow::Result<Vec<EventLite>> {
    let selector = urlencode(&format!(
        "involvedObject.name={pod},involvedObject.kind=Pod"
    ));
    let mut events: Vec<EventLite> = list_all(
        client,
        &format!("/api/v1/namespaces/{ns}/events?fieldSelector={selector}"),
        &format!("events of pod {ns}/{pod}"),
    )
    .await?;
    events.sort_by(|a, b| {
        let t = |e: &EventLite| e.last_timestamp.clone().or_else(|| e.event_time.clone());
        t(b).cmp(&t(a))
    });
    Ok(events)
}
