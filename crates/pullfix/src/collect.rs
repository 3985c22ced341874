//! Reading the cluster: paged pod lists decoded into small structs (only
//! the fields pullfix needs, so 10,000 pods stay cheap), owners, events,
//! pull secrets, ServiceAccounts, nodes and refresh CronJobs.
//!
//! Every function here does I/O, through [`crate::api`]; the decisions are
//! made by pure code in `scan` and `diagnose`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use serde::Deserialize;

use crate::api::{self, ApiError, ListQuery};

/// A pod, reduced to what diagnosis reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodLite {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: PodSpecLite,
    #[serde(default)]
    pub status: PodStatusLite,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
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
pub(crate) struct OwnerRef {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodSpecLite {
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
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct NameRef {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerLite {
    pub name: String,
    #[serde(default)]
    pub image: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodStatusLite {
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatusLite>,
    #[serde(default)]
    pub init_container_statuses: Vec<ContainerStatusLite>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerStatusLite {
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub state: StateLite,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StateLite {
    #[serde(default)]
    pub waiting: Option<Waiting>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Waiting {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Which namespaces to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespace(String),
}

impl Scope {
    /// The namespace, or `None` for all of them.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Namespace(ns) => Some(ns),
        }
    }
}

/// The most namespaces read one list each before a list is made
/// cluster-wide instead (paged, filtered in memory): eight requests is what
/// a cluster-wide list of a few pages costs, and in an outage the failures
/// span far more namespaces than that.
pub(crate) const NAMESPACE_LISTS: usize = 8;

/// Where one kind of object is listed for a run: in each of a few
/// namespaces, or once cluster-wide. Chosen by [`Spread::over`] so that the
/// number of requests stays bounded by list pages, not by failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Spread {
    Cluster,
    Namespaces(BTreeSet<String>),
}

impl Spread {
    /// The namespaces `wanted` (those holding what is to be read) under
    /// `scope`: one list per namespace up to `per_namespace_limit` of them,
    /// else one cluster-wide list. A one-namespace scope never reads
    /// outside it. Pure.
    pub(crate) fn over(
        scope: &Scope,
        wanted: BTreeSet<String>,
        per_namespace_limit: usize,
    ) -> Spread {
        match scope {
            Scope::Namespace(ns) => Spread::Namespaces(
                wanted
                    .into_iter()
                    .filter(|w| w == ns)
                    .collect::<BTreeSet<_>>(),
            ),
            Scope::All if wanted.len() <= per_namespace_limit => Spread::Namespaces(wanted),
            Scope::All => Spread::Cluster,
        }
    }

    /// The whole scope: cluster-wide, or its one namespace.
    pub(crate) fn whole(scope: &Scope) -> Spread {
        match scope {
            Scope::All => Spread::Cluster,
            Scope::Namespace(ns) => Spread::Namespaces(BTreeSet::from([ns.clone()])),
        }
    }

    /// Whether nothing is to be listed.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Spread::Namespaces(set) if set.is_empty())
    }
}

/// Lists objects of type `K` over a [`Spread`], page by page, keeping what
/// `keep` returns. A failure of any list is the failure of the whole.
pub(crate) async fn list_spread<K, T, U>(
    client: &Client,
    spread: &Spread,
    query: &ListQuery,
    mut keep: impl FnMut(T) -> Option<U>,
) -> Result<Vec<U>, ApiError>
where
    K: kube::Resource<DynamicType = ()>,
    T: serde::de::DeserializeOwned,
{
    match spread {
        Spread::Cluster => Ok(api::list_as::<K, T, U>(client, None, query, keep).await?.0),
        Spread::Namespaces(set) => {
            let mut out = Vec::new();
            for ns in set {
                out.extend(
                    api::list_as::<K, T, U>(client, Some(ns), query, &mut keep)
                        .await?
                        .0,
                );
            }
            Ok(out)
        }
    }
}

/// Lists pods page by page, handing each page's pods to `keep`, which
/// returns the ones worth keeping (so memory stays bounded by one page plus
/// what is kept). Returns the kept pods and the number of pods seen.
pub(crate) async fn list_pods_filtered<T>(
    client: &Client,
    scope: &Scope,
    query: &ListQuery,
    keep: impl FnMut(PodLite) -> Option<T>,
) -> Result<(Vec<T>, usize), ApiError> {
    api::list_as::<Pod, PodLite, T>(client, scope.namespace(), query, keep).await
}

/// GETs an object by a path the caller built, as a small struct; `Ok(None)`
/// on 404. Kept for the sandbox's practice helpers: pullfix's own reads use
/// the typed functions of [`crate::api`].
pub async fn get_opt<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    what: &str,
) -> anyhow::Result<Option<T>> {
    Ok(api::get_path(client, path, what).await?)
}

/// Lists objects at a path the caller built (all pages) as small structs.
/// Kept for the sandbox's practice helpers: pullfix's own reads use the
/// typed functions of [`crate::api`].
pub async fn list_all<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    what: &str,
) -> anyhow::Result<Vec<T>> {
    Ok(api::list_path_all(client, path, what).await?)
}

/// A workload controller's replica counts and rollout state.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkloadLite {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: serde_json::Value,
    #[serde(default)]
    pub status: serde_json::Value,
}

/// How many pods the scope holds, from one `limit=1` list
/// (`remainingItemCount`); `None` when the server does not say.
pub(crate) async fn count_pods(client: &Client, scope: &Scope) -> Option<usize> {
    api::count::<Pod>(client, scope.namespace()).await
}

/// An event, reduced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventLite {
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
pub(crate) struct InvolvedLite {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub field_path: Option<String>,
}

impl EventLite {
    /// What the classifier reads of it.
    pub(crate) fn text(&self) -> crate::diagnose::classify::EventText<'_> {
        crate::diagnose::classify::EventText {
            reason: &self.reason,
            message: &self.message,
            count: self.count.unwrap_or(1),
        }
    }
}

/// The events about one pod, newest first.
pub(crate) async fn pod_events(
    client: &Client,
    ns: &str,
    pod: &str,
) -> Result<Vec<EventLite>, ApiError> {
    let query = ListQuery::fields(&format!(
        "involvedObject.name={pod},involvedObject.kind=Pod"
    ));
    let mut events: Vec<EventLite> = api::list_all_as::<Event, _>(client, Some(ns), &query).await?;
    events.sort_by(|a, b| {
        let t = |e: &EventLite| e.last_timestamp.clone().or_else(|| e.event_time.clone());
        t(b).cmp(&t(a))
    });
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_few_namespaces_are_listed_each_many_at_once() {
        let few = set(&["a", "b"]);
        assert_eq!(
            Spread::over(&Scope::All, few.clone(), 8),
            Spread::Namespaces(few)
        );
        let many: BTreeSet<String> = (0..9).map(|i| format!("n{i}")).collect();
        assert_eq!(Spread::over(&Scope::All, many, 8), Spread::Cluster);
        // A one-namespace scope never reads outside it, however many.
        let many: BTreeSet<String> = (0..90).map(|i| format!("n{i}")).collect();
        assert_eq!(
            Spread::over(&Scope::Namespace("n3".into()), many, 8),
            Spread::Namespaces(set(&["n3"]))
        );
        assert!(Spread::over(&Scope::Namespace("x".into()), set(&["y"]), 8).is_empty());
        assert_eq!(Spread::whole(&Scope::All), Spread::Cluster);
        assert_eq!(
            Spread::whole(&Scope::Namespace("x".into())),
            Spread::Namespaces(set(&["x"]))
        );
    }
}
