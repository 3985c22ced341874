//! What `diagnose` reads of the cluster for all its findings at once: the
//! diagnosed pods' events, their ServiceAccounts and the pull secrets they
//! name, each kind in one list per namespace (a few namespaces) or one
//! cluster-wide list (an outage), joined in memory. The number of requests
//! grows with list pages, not with failing pods; a secret the lists do not
//! hold (another type, or no `list secrets` right) is read by name, once.
//!
//! Every function here does I/O; the decisions stay in `decide`.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::{Event, Secret, ServiceAccount};
use kube::Client;
use serde::Deserialize;

use crate::api::{self, ApiError, ListQuery};
use crate::collect::{self, EventLite, Meta, NameRef, Scope, Spread};
use crate::diagnose::secrets::{Lookup, SecretView};
use crate::scan::{FailingPod, parse_time};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretLite {
    #[serde(default)]
    metadata: SecretMeta,
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretMeta {
    #[serde(flatten)]
    meta: Meta,
    #[serde(default)]
    managed_fields: Vec<ManagedField>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ManagedField {
    #[serde(default)]
    time: Option<String>,
}

impl SecretLite {
    pub(crate) fn view(self) -> SecretView {
        let m = self.metadata.meta;
        SecretView {
            name: m.name,
            namespace: m.namespace,
            type_: self.type_,
            data: self
                .data
                .into_iter()
                .map(|(k, v)| (k, STANDARD.decode(v.trim()).unwrap_or_default()))
                .collect(),
            created: m.creation_timestamp.as_deref().and_then(parse_time),
            updated: self
                .metadata
                .managed_fields
                .iter()
                .filter_map(|f| f.time.as_deref().and_then(parse_time))
                .max(),
            labels: m.labels,
            annotations: m.annotations,
            owners: m
                .owner_references
                .into_iter()
                .map(|o| (o.kind, o.name))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceAccountLite {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    image_pull_secrets: Vec<NameRef>,
}

/// Pull secrets (`type=kubernetes.io/dockerconfigjson`).
pub(crate) fn pull_secrets() -> ListQuery {
    ListQuery::fields("type=kubernetes.io/dockerconfigjson")
}

/// Reads one secret by name.
pub(crate) async fn get_secret(client: &Client, ns: &str, name: &str) -> Lookup {
    match api::get_opt_as::<Secret, SecretLite>(client, Some(ns), name).await {
        Ok(Some(s)) => Lookup::Found(s.view()),
        Ok(None) => Lookup::NotFound,
        Err(e) if e.is_forbidden() => Lookup::Forbidden,
        Err(e) => Lookup::Failed(e.short()),
    }
}

/// A ServiceAccount as read: its pull secrets, absent, or unreadable.
#[derive(Debug, Clone)]
pub(crate) enum SaLookup {
    Found(Vec<String>),
    NotFound,
    Unread,
}

/// Everything read for one run of `diagnose`.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    /// Events about each diagnosed pod, newest first.
    events: BTreeMap<(String, String), Vec<EventLite>>,
    /// Namespaces whose events could not be read, and why.
    pub events_unread: BTreeMap<String, ApiError>,
    service_accounts: BTreeMap<(String, String), SaLookup>,
    /// Every secret a diagnosed pod or its ServiceAccount names.
    secrets: BTreeMap<(String, String), Lookup>,
    /// The pull secrets of the namespaces read (all of them when the list
    /// was cluster-wide), for "unused but matching" and other namespaces.
    pull_secrets: BTreeMap<String, Vec<SecretView>>,
    /// The pull-secret list was cluster-wide and complete.
    pub pull_secrets_cluster_wide: bool,
}

impl Gathered {
    /// The pod's events, newest first.
    pub(crate) fn events(&self, ns: &str, pod: &str) -> &[EventLite] {
        self.events
            .get(&(ns.to_string(), pod.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    pub(crate) fn service_account(&self, ns: &str, sa: &str) -> SaLookup {
        self.service_accounts
            .get(&(ns.to_string(), sa.to_string()))
            .cloned()
            .unwrap_or(SaLookup::Unread)
    }

    /// A named secret as read (`Failed` if it was never asked for).
    pub(crate) fn secret(&self, ns: &str, name: &str) -> Lookup {
        self.secrets
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| Lookup::Failed("not read".into()))
    }

    /// The namespace's pull secrets (`None` when they could not be listed).
    pub(crate) fn pull_secrets_in(&self, ns: &str) -> Option<&[SecretView]> {
        self.pull_secrets.get(ns).map(Vec::as_slice)
    }

    /// Every pull secret listed, when the list was cluster-wide.
    pub(crate) fn all_pull_secrets(&self) -> Option<impl Iterator<Item = &SecretView>> {
        self.pull_secrets_cluster_wide
            .then(|| self.pull_secrets.values().flatten())
    }
}

/// Lists `K` over the spread, keeping what `keep` returns; a cluster-wide
/// list that RBAC refuses falls back to one list per wanted namespace
/// (rights granted per namespace are common). Returns what was kept and,
/// per namespace, why it could not be read.
async fn list_over<K, T, U>(
    client: &Client,
    spread: &Spread,
    wanted: &BTreeSet<String>,
    query: &ListQuery,
    mut keep: impl FnMut(T) -> Option<U>,
) -> (Vec<U>, BTreeMap<String, ApiError>)
where
    K: kube::Resource<DynamicType = ()>,
    T: serde::de::DeserializeOwned,
{
    let mut failed = BTreeMap::new();
    if *spread == Spread::Cluster {
        match api::list_as::<K, T, U>(client, None, query, &mut keep).await {
            Ok((kept, _)) => return (kept, failed),
            Err(e) if !e.is_forbidden() => {
                for ns in wanted {
                    failed.insert(ns.clone(), e.clone());
                }
                return (Vec::new(), failed);
            }
            Err(_) => {}
        }
    }
    let mut kept = Vec::new();
    for ns in wanted {
        match api::list_as::<K, T, U>(client, Some(ns), query, &mut keep).await {
            Ok((more, _)) => kept.extend(more),
            Err(e) => {
                failed.insert(ns.clone(), e);
            }
        }
    }
    (kept, failed)
}

/// Reads the events, ServiceAccounts and pull secrets of the pods.
pub(crate) async fn gather(client: &Client, scope: &Scope, pods: &[&FailingPod]) -> Gathered {
    let mut out = Gathered::default();
    let wanted_pods: BTreeSet<(String, String)> = pods
        .iter()
        .map(|p| (p.namespace.clone(), p.name.clone()))
        .collect();
    let namespaces: BTreeSet<String> = pods.iter().map(|p| p.namespace.clone()).collect();
    let spread = Spread::over(scope, namespaces.clone(), collect::NAMESPACE_LISTS);

    // Events about the pods (all reasons: the classifier reads them all).
    // From etcd, not the watch cache: the fix's rounds read what they have
    // just changed (here and below).
    let query = ListQuery::fields("involvedObject.kind=Pod");
    let (events, failed) =
        list_over::<Event, EventLite, _>(client, &spread, &namespaces, &query, |e: EventLite| {
            wanted_pods
                .contains(&(e.metadata.namespace.clone(), e.involved_object.name.clone()))
                .then_some(e)
        })
        .await;
    out.events_unread = failed;
    for e in events {
        out.events
            .entry((e.metadata.namespace.clone(), e.involved_object.name.clone()))
            .or_default()
            .push(e);
    }
    for list in out.events.values_mut() {
        let t = |e: &EventLite| e.last_timestamp.clone().or_else(|| e.event_time.clone());
        list.sort_by_key(|e| std::cmp::Reverse(t(e)));
    }

    // ServiceAccounts.
    let wanted_sas: BTreeSet<(String, String)> = pods
        .iter()
        .map(|p| {
            (
                p.namespace.clone(),
                p.service_account
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            )
        })
        .collect();
    let (sas, failed) = list_over::<ServiceAccount, ServiceAccountLite, _>(
        client,
        &spread,
        &namespaces,
        &ListQuery::default(),
        |s: ServiceAccountLite| {
            wanted_sas
                .contains(&(s.metadata.namespace.clone(), s.metadata.name.clone()))
                .then_some(s)
        },
    )
    .await;
    for sa in sas {
        out.service_accounts.insert(
            (sa.metadata.namespace, sa.metadata.name),
            SaLookup::Found(
                sa.image_pull_secrets
                    .into_iter()
                    .map(|r| r.name)
                    .filter(|n| !n.is_empty())
                    .collect(),
            ),
        );
    }
    for key in &wanted_sas {
        let state = if failed.contains_key(&key.0) {
            SaLookup::Unread
        } else {
            SaLookup::NotFound
        };
        out.service_accounts.entry(key.clone()).or_insert(state);
    }

    // Pull secrets: the namespaces' (every namespace's when cluster-wide).
    let (listed, failed) = list_over::<Secret, SecretLite, _>(
        client,
        &spread,
        &namespaces,
        &pull_secrets(),
        |s: SecretLite| Some(s.view()),
    )
    .await;
    out.pull_secrets_cluster_wide = spread == Spread::Cluster && failed.is_empty();
    for ns in namespaces.iter().filter(|ns| !failed.contains_key(*ns)) {
        out.pull_secrets.entry(ns.clone()).or_default();
    }
    for v in listed {
        out.pull_secrets
            .entry(v.namespace.clone())
            .or_default()
            .push(v);
    }
    // The secrets the pods and their ServiceAccounts name: from the list,
    // else read by name (another type, or a namespace not listed), once.
    let mut named: BTreeSet<(String, String)> = BTreeSet::new();
    for p in pods {
        for s in &p.pull_secrets {
            named.insert((p.namespace.clone(), s.clone()));
        }
        let sa = p.service_account.as_deref().unwrap_or("default");
        if let SaLookup::Found(list) = out.service_account(&p.namespace, sa) {
            for s in list {
                named.insert((p.namespace.clone(), s));
            }
        }
    }
    let unlisted: BTreeSet<(String, String)> = named
        .iter()
        .filter(|(ns, name)| {
            !out.pull_secrets
                .get(ns)
                .is_some_and(|l| l.iter().any(|v| v.name == *name))
        })
        .cloned()
        .collect();
    // Many named secrets outside the pull-secret lists (deleted in every
    // namespace, say): one list of the secrets' names tells which exist,
    // instead of one GET each.
    let existing: Option<BTreeSet<(String, String)>> = if unlisted.len() > collect::NAMESPACE_LISTS
    {
        let in_ns: BTreeSet<String> = unlisted.iter().map(|(ns, _)| ns.clone()).collect();
        let (names, failed) = list_over::<Secret, MetaOnly, _>(
            client,
            &Spread::over(scope, in_ns.clone(), collect::NAMESPACE_LISTS),
            &in_ns,
            &ListQuery::default().metadata_only(),
            |m: MetaOnly| {
                let key = (m.metadata.namespace, m.metadata.name);
                unlisted.contains(&key).then_some(key)
            },
        )
        .await;
        failed.is_empty().then(|| names.into_iter().collect())
    } else {
        None
    };
    for (ns, name) in named {
        let listed = out
            .pull_secrets
            .get(&ns)
            .and_then(|l| l.iter().find(|v| v.name == name))
            .cloned();
        let lookup = match listed {
            Some(v) => Lookup::Found(v),
            None if existing
                .as_ref()
                .is_some_and(|e| !e.contains(&(ns.clone(), name.clone()))) =>
            {
                Lookup::NotFound
            }
            None => get_secret(client, &ns, &name).await,
        };
        out.secrets.insert((ns, name), lookup);
    }
    out
}

/// An object's metadata, from a metadata-only list.
#[derive(Debug, Clone, Default, Deserialize)]
struct MetaOnly {
    #[serde(default)]
    metadata: Meta,
}
