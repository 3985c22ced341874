//! The one gateway to the Kubernetes API: every read and write of scan,
//! diagnose, fix and verify goes through here, and every failure comes
//! back as an [`ApiError`] that says what was asked about which object
//! and what kind of failure it was (see [`crate::errors`]).
//!
//! - Paths come from the resource types (`k8s_openapi`'s `Resource`), and
//!   names and namespaces are percent-escaped as path segments, so a name
//!   never turns into another path or a query.
//! - Writes use `kube::Api` (patch, replace, create, delete) with
//!   `fieldManager=kubectl-pullfix`, and `dryRun=All` for rehearsals.
//! - Reads decode into the small structs of [`crate::collect`] (a page of
//!   500 pods costs a page of small structs, not of full `Pod`s): `kube::Api`
//!   only decodes into the full type, so these build the request with
//!   kube's own request builder (`kube::core::Request`) for the type's
//!   path, and hand it to the client here, and only here.
//! - The CronJob API falls back to `batch/v1beta1` only when discovery says
//!   `batch/v1` has no CronJobs (Kubernetes before 1.21).

use std::sync::OnceLock;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, LogParams, Patch, PatchParams, PostParams,
    Preconditions,
};
use kube::{Client, Resource};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::errors::{ApiError, Kind, Op};

/// The field manager of every write.
pub(crate) const FIELD_MANAGER: &str = "kubectl-pullfix";

/// Page size for list calls (kubectl uses 500 too).
pub(crate) const PAGE_SIZE: u32 = 500;

/// The most pages one list reads (10 million objects at [`PAGE_SIZE`]):
/// past it, the server's pagination is taken to be broken.
const MAX_PAGES: usize = 20_000;

static SERVER: OnceLock<String> = OnceLock::new();

/// Records the API server's address (from the kubeconfig), so an
/// unreachable server is named in the advice. The first call wins.
pub(crate) fn set_server(url: &str) {
    let _ = SERVER.set(url.trim_end_matches('/').to_string());
}

/// The API server's address, when [`set_server`] was called.
pub(crate) fn server() -> Option<String> {
    SERVER.get().cloned()
}

/// A resource type's name as a person says it: `secret`, `deployment`.
fn singular<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_ascii_lowercase()
}

/// A resource type's name as RBAC says it: `secrets`, `deployments.apps`.
fn rbac_name<K: Resource<DynamicType = ()>>() -> String {
    let group = K::group(&());
    if group.is_empty() {
        K::plural(&()).into_owned()
    } else {
        format!("{}.{group}", K::plural(&()))
    }
}

/// Percent-escapes one path segment (a name or a namespace): only
/// unreserved characters stay, and `.`/`..` cannot climb the path.
pub(crate) fn escape(segment: &str) -> String {
    if segment == "." || segment == ".." {
        return segment.replace('.', "%2E");
    }
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A resource's collection path in a namespace (or cluster-wide).
fn collection<K: Resource<DynamicType = ()>>(ns: Option<&str>) -> String {
    K::url_path(&(), ns.map(escape).as_deref())
}

// ---------------------------------------------------------------------
// Reads into small structs.

/// Which objects a list returns.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListQuery {
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
    /// Serve the first page from the API server's watch cache
    /// (`resourceVersion=0`): cheaper, possibly a little stale.
    pub from_cache: bool,
    /// Ask for the objects' metadata only (`PartialObjectMetadataList`):
    /// names, labels, owners; no spec, status or data.
    pub metadata_only: bool,
}

impl ListQuery {
    pub(crate) fn fields(selector: &str) -> ListQuery {
        ListQuery {
            field_selector: Some(selector.into()),
            ..ListQuery::default()
        }
    }

    pub(crate) fn labels(selector: &str) -> ListQuery {
        ListQuery {
            label_selector: Some(selector.into()),
            ..ListQuery::default()
        }
    }

    pub(crate) fn cached(mut self) -> ListQuery {
        self.from_cache = true;
        self
    }

    pub(crate) fn metadata_only(mut self) -> ListQuery {
        self.metadata_only = true;
        self
    }

    fn describe(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.field_selector, &self.label_selector]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The list request for one page.
    fn request(
        &self,
        url_path: &str,
        limit: u32,
        cont: Option<&str>,
    ) -> Result<http::Request<Vec<u8>>, kube::Error> {
        let lp = kube::api::ListParams {
            field_selector: self.field_selector.clone(),
            label_selector: self.label_selector.clone(),
            limit: Some(limit),
            continue_token: cont.map(str::to_string),
            ..Default::default()
        };
        let mut req = kube::core::Request::new(url_path)
            .list(&lp)
            .map_err(kube::Error::BuildRequest)?;
        if self.metadata_only {
            req.headers_mut().insert(
                http::header::ACCEPT,
                http::HeaderValue::from_static(
                    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                ),
            );
        }
        if self.from_cache && cont.is_none() {
            // kube leaves `resourceVersion=0` out when a limit is set.
            let uri = format!("{}&resourceVersion=0", req.uri());
            *req.uri_mut() = uri.parse().map_err(|e: http::uri::InvalidUri| {
                kube::Error::BuildRequest(kube::core::request::Error::Validation(e.to_string()))
            })?;
        }
        Ok(req)
    }
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default)]
    metadata: PageMeta,
    /// An empty metadata-only list comes as `"items": null` (a Go nil
    /// slice), which is no items.
    #[serde(
        default = "Vec::new",
        deserialize_with = "null_is_empty",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    items: Vec<T>,
}

fn null_is_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
    #[serde(default)]
    remaining_item_count: Option<usize>,
}

/// Reads one object of type `K` as `T` (a small struct, or a `Value`);
/// `Ok(None)` when it does not exist.
pub(crate) async fn get_opt_as<K, T>(
    client: &Client,
    ns: Option<&str>,
    name: &str,
) -> Result<Option<T>, ApiError>
where
    K: Resource<DynamicType = ()>,
    T: DeserializeOwned,
{
    let op = Op::object("get", &singular::<K>(), ns, name).rbac(&rbac_name::<K>());
    get_path_opt(client, &collection::<K>(ns), name, op).await
}

async fn get_path_opt<T: DeserializeOwned>(
    client: &Client,
    collection: &str,
    name: &str,
    op: Op,
) -> Result<Option<T>, ApiError> {
    let req = kube::core::Request::new(collection)
        .get(&escape(name), &Default::default())
        .map_err(|e| ApiError::new(op.clone(), &kube::Error::BuildRequest(e)))?;
    match client.request::<T>(req).await {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(ApiError::new(op, &e)),
    }
}

/// Lists objects of type `K` page by page ([`PAGE_SIZE`]), handing each
/// page's items to `keep`, which returns the ones worth keeping (memory
/// stays bounded by one page plus what is kept). Returns the kept items and
/// the number of items seen.
pub(crate) async fn list_as<K, T, U>(
    client: &Client,
    ns: Option<&str>,
    query: &ListQuery,
    keep: impl FnMut(T) -> Option<U>,
) -> Result<(Vec<U>, usize), ApiError>
where
    K: Resource<DynamicType = ()>,
    T: DeserializeOwned,
{
    let op = Op::list(&K::plural(&()), ns, query.describe().as_deref()).rbac(&rbac_name::<K>());
    list_path(client, &collection::<K>(ns), query, op, keep).await
}

/// Every object of type `K` (all pages) as `T`.
pub(crate) async fn list_all_as<K, T>(
    client: &Client,
    ns: Option<&str>,
    query: &ListQuery,
) -> Result<Vec<T>, ApiError>
where
    K: Resource<DynamicType = ()>,
    T: DeserializeOwned,
{
    Ok(list_as::<K, T, T>(client, ns, query, Some).await?.0)
}

async fn list_path<T: DeserializeOwned, U>(
    client: &Client,
    url_path: &str,
    query: &ListQuery,
    op: Op,
    mut keep: impl FnMut(T) -> Option<U>,
) -> Result<(Vec<U>, usize), ApiError> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    let mut cont: Option<String> = None;
    for page_number in 1.. {
        let req = query
            .request(url_path, PAGE_SIZE, cont.as_deref())
            .map_err(|e| ApiError::new(op.clone(), &e))?;
        let page: Page<T> = client
            .request(req)
            .await
            .map_err(|e| ApiError::new(op.clone(), &e))?;
        seen += page.items.len();
        kept.extend(page.items.into_iter().filter_map(&mut keep));
        // A server whose pagination never ends (the same token again, or
        // pages without end) must not hold the on-call's terminal forever.
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) if cont.as_deref() == Some(c.as_str()) => {
                return Err(ApiError::odd(
                    op,
                    "the API server answered the same `continue` token twice: its list never ends"
                        .into(),
                ));
            }
            Some(_) if page_number >= MAX_PAGES => {
                return Err(ApiError::odd(
                    op,
                    format!(
                        "the API server was still paginating after {MAX_PAGES} pages of {PAGE_SIZE}: stopped there"
                    ),
                ));
            }
            Some(c) => cont = Some(c),
            None => break,
        }
    }
    Ok((kept, seen))
}

/// How many objects of type `K` the scope holds, from one `limit=1` list
/// (`remainingItemCount`); `None` when the server does not say or fails.
pub(crate) async fn count<K: Resource<DynamicType = ()>>(
    client: &Client,
    ns: Option<&str>,
) -> Option<usize> {
    let req = ListQuery::default()
        .request(&collection::<K>(ns), 1, None)
        .ok()?;
    let page: Page<serde::de::IgnoredAny> = client.request(req).await.ok()?;
    // More pages and no count: unknown (not "one pod").
    match (
        page.metadata.continue_.filter(|c| !c.is_empty()),
        page.metadata.remaining_item_count,
    ) {
        (None, _) => Some(page.items.len()),
        (Some(_), Some(rest)) => Some(page.items.len() + rest),
        (Some(_), None) => None,
    }
}

/// Reads an object by a path its caller built (the sandbox's practice
/// helpers); pullfix itself uses the typed functions above.
pub(crate) async fn get_path<T: DeserializeOwned>(
    client: &Client,
    path: &str,
    what: &str,
) -> Result<Option<T>, ApiError> {
    let op = described("get", what);
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| ApiError::new(op.clone(), &kube::Error::HttpError(e)))?;
    match client.request::<T>(req).await {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(ApiError::new(op, &e)),
    }
}

/// Lists (all pages) by a path its caller built (the sandbox's practice
/// helpers); pullfix itself uses the typed functions above.
pub(crate) async fn list_path_all<T: DeserializeOwned>(
    client: &Client,
    path: &str,
    what: &str,
) -> Result<Vec<T>, ApiError> {
    let (url_path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut lq = ListQuery::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "fieldSelector" => lq.field_selector = Some(v),
            "labelSelector" => lq.label_selector = Some(v),
            "resourceVersion" if v == "0" => lq.from_cache = true,
            _ => {}
        }
    }
    Ok(
        list_path(client, url_path, &lq, described("list", what), Some)
            .await?
            .0,
    )
}

/// An operation described by its caller's words (`get pod`).
fn described(verb: &str, what: &str) -> Op {
    Op {
        verb: verb.into(),
        resource: what.into(),
        namespace: None,
        name: None,
        list: false,
        rbac: None,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        if c == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if c == b'+' { b' ' } else { c });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------
// CronJobs, pod logs, access reviews.

/// Lists the CronJobs of a namespace as `T`: `batch/v1`, or `batch/v1beta1`
/// when discovery says the cluster serves no `batch/v1` CronJobs (before
/// Kubernetes 1.21). Any other failure is an error, not a fallback.
pub(crate) async fn list_cronjobs<T: DeserializeOwned>(
    client: &Client,
    ns: Option<&str>,
) -> Result<Vec<T>, ApiError> {
    use k8s_openapi::api::batch::v1::CronJob;
    if cronjobs_in_batch_v1(client).await? {
        return list_all_as::<CronJob, T>(client, ns, &ListQuery::default()).await;
    }
    let ar = ApiResource {
        group: "batch".into(),
        version: "v1beta1".into(),
        api_version: "batch/v1beta1".into(),
        kind: "CronJob".into(),
        plural: "cronjobs".into(),
    };
    let path = DynamicObject::url_path(&ar, ns.map(escape).as_deref());
    let op = Op::list("cronjobs", ns, None);
    Ok(list_path(client, &path, &ListQuery::default(), op, Some)
        .await?
        .0)
}

/// Whether discovery lists `cronjobs` under `batch/v1`.
pub(crate) async fn cronjobs_in_batch_v1(client: &Client) -> Result<bool, ApiError> {
    match client.list_api_group_resources("batch/v1").await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == "cronjobs")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(ApiError::new(
            Op {
                verb: "discover".into(),
                resource: "API group batch/v1".into(),
                namespace: None,
                name: None,
                list: false,
                rbac: None,
            },
            &e,
        )),
    }
}

/// The last `lines` lines of a pod's log.
pub(crate) async fn pod_log_tail(
    client: &Client,
    ns: &str,
    pod: &str,
    lines: i64,
) -> Result<String, ApiError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &escape(ns));
    let lp = LogParams {
        tail_lines: Some(lines),
        ..LogParams::default()
    };
    api.logs(&escape(pod), &lp)
        .await
        .map_err(|e| ApiError::new(Op::object("read the log of", "pod", Some(ns), pod), &e))
}

/// Asks the API server whether this identity may do `verb` on the object
/// (a SelfSubjectAccessReview).
pub(crate) async fn can_i(
    client: &Client,
    target: &ObjectRef,
    verb: &str,
) -> Result<bool, ApiError> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(target.namespace.clone()),
                verb: Some(verb.into()),
                group: Some(target.resource.group().into()),
                resource: Some(target.resource.plural().into()),
                name: Some(target.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let op = Op::object(
        "check permission to",
        &format!("{verb} {}", target.resource.plural()),
        Some(&target.namespace),
        &target.name,
    );
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| ApiError::new(op, &e))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

// ---------------------------------------------------------------------
// Writes.

/// The resources pullfix changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writable {
    Secret,
    ServiceAccount,
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl Writable {
    /// The workload kinds pullfix patches, by their `kind`.
    pub(crate) fn workload(kind: &str) -> Option<Writable> {
        match kind {
            "Deployment" => Some(Writable::Deployment),
            "StatefulSet" => Some(Writable::StatefulSet),
            "DaemonSet" => Some(Writable::DaemonSet),
            _ => None,
        }
    }

    fn api_resource(self) -> ApiResource {
        use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
        use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
        match self {
            Writable::Secret => ApiResource::erase::<Secret>(&()),
            Writable::ServiceAccount => ApiResource::erase::<ServiceAccount>(&()),
            Writable::Pod => ApiResource::erase::<Pod>(&()),
            Writable::Deployment => ApiResource::erase::<Deployment>(&()),
            Writable::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            Writable::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
        }
    }

    /// The API group (`""` for core).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Writable::Secret | Writable::ServiceAccount | Writable::Pod => "",
            _ => "apps",
        }
    }

    /// The resource (`secrets`, `deployments`).
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Writable::Secret => "secrets",
            Writable::ServiceAccount => "serviceaccounts",
            Writable::Pod => "pods",
            Writable::Deployment => "deployments",
            Writable::StatefulSet => "statefulsets",
            Writable::DaemonSet => "daemonsets",
        }
    }

    /// `secret`, `deployment`.
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Writable::Secret => "secret",
            Writable::ServiceAccount => "serviceaccount",
            Writable::Pod => "pod",
            Writable::Deployment => "deployment",
            Writable::StatefulSet => "statefulset",
            Writable::DaemonSet => "daemonset",
        }
    }
}

/// One object pullfix reads before it changes it, and then changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectRef {
    pub resource: Writable,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(resource: Writable, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            resource,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn api(&self, client: &Client) -> Api<DynamicObject> {
        Api::namespaced_with(
            client.clone(),
            &escape(&self.namespace),
            &self.resource.api_resource(),
        )
    }

    fn op(&self, verb: &str) -> Op {
        let group = self.resource.group();
        let rbac = if group.is_empty() {
            self.resource.plural().to_string()
        } else {
            format!("{}.{group}", self.resource.plural())
        };
        Op::object(
            verb,
            self.resource.singular(),
            Some(&self.namespace),
            &self.name,
        )
        .rbac(&rbac)
    }

    /// Reads the object whole (for a diff, a backup and the write based on
    /// it); `Ok(None)` when it does not exist.
    pub async fn get_opt(&self, client: &Client) -> Result<Option<Value>, ApiError> {
        let got = self
            .api(client)
            .get_opt(&escape(&self.name))
            .await
            .map_err(|e| ApiError::new(self.op("get"), &e))?;
        got.map(|o| serde_json::to_value(o).map_err(|e| self.decode_error("get", e)))
            .transpose()
    }

    fn decode_error(&self, verb: &str, e: serde_json::Error) -> ApiError {
        ApiError::new(self.op(verb), &kube::Error::SerdeError(e))
    }
}

/// A change to one object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Write {
    /// A JSON merge patch (`application/merge-patch+json`).
    MergePatch(Value),
    /// A strategic merge patch (`application/strategic-merge-patch+json`).
    StrategicPatch(Value),
    /// The whole object (PUT), carrying the resourceVersion it was based on.
    Replace(Value),
    /// A new object (POST).
    Create(Value),
    /// A delete that only happens if the object is still this uid and
    /// resourceVersion.
    Delete {
        uid: Option<String>,
        resource_version: Option<String>,
    },
}

impl Write {
    /// The RBAC verb the write needs.
    pub(crate) fn verb(&self) -> &'static str {
        match self {
            Write::MergePatch(_) | Write::StrategicPatch(_) => "patch",
            Write::Replace(_) => "update",
            Write::Create(_) => "create",
            Write::Delete { .. } => "delete",
        }
    }

    /// The body sent (none for a delete's own preconditions).
    #[cfg(test)]
    pub(crate) fn body(&self) -> Option<&Value> {
        match self {
            Write::MergePatch(b)
            | Write::StrategicPatch(b)
            | Write::Replace(b)
            | Write::Create(b) => Some(b),
            Write::Delete { .. } => None,
        }
    }
}

/// Sends a write, with field manager `kubectl-pullfix`; `dry_run` makes it
/// a server-side rehearsal (`dryRun=All`: checked, admitted, not stored).
/// Returns the object as the server left it (none for a delete): its
/// `resourceVersion` is what a backup's restore is conditional on.
pub(crate) async fn write(
    client: &Client,
    target: &ObjectRef,
    change: &Write,
    dry_run: bool,
) -> Result<Option<Value>, ApiError> {
    let api = target.api(client);
    let name = escape(&target.name);
    let verb = change.verb();
    let post = PostParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    let patch = PatchParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let object = |v: &Value| {
        serde_json::from_value::<DynamicObject>(v.clone()).map_err(|e| target.decode_error(verb, e))
    };
    let sent = match change {
        Write::MergePatch(b) => api.patch(&name, &patch, &Patch::Merge(b)).await.map(Some),
        Write::StrategicPatch(b) => api
            .patch(&name, &patch, &Patch::Strategic(b))
            .await
            .map(Some),
        Write::Replace(b) => api.replace(&name, &post, &object(b)?).await.map(Some),
        Write::Create(b) => api.create(&post, &object(b)?).await.map(Some),
        Write::Delete {
            uid,
            resource_version,
        } => {
            let dp = DeleteParams {
                dry_run,
                preconditions: Some(Preconditions {
                    uid: uid.clone(),
                    resource_version: resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            delete(client, target, &name, &dp).await.map(|()| None)
        }
    };
    let sent = sent.map_err(|e| ApiError::new(target.op(verb), &e))?;
    sent.map(|o| serde_json::to_value(o).map_err(|e| target.decode_error(verb, e)))
        .transpose()
}

/// A delete with its DeleteOptions in the body, and `dryRun=All` in the
/// query too for a rehearsal: the API server reads the body (and ignores
/// the query when there is one), audit logs and tools read the query.
/// `kube::Api::delete` puts it in the body only, so this one request is
/// built here with kube's request builder.
async fn delete(
    client: &Client,
    target: &ObjectRef,
    name: &str,
    dp: &DeleteParams,
) -> Result<(), kube::Error> {
    let ar = target.resource.api_resource();
    let collection = DynamicObject::url_path(&ar, Some(&escape(&target.namespace)));
    let mut req = kube::core::Request::new(collection)
        .delete(name, dp)
        .map_err(kube::Error::BuildRequest)?;
    if dp.dry_run {
        let uri = req.uri().to_string();
        let sep = if uri.ends_with('?') || uri.ends_with('&') {
            ""
        } else if uri.contains('?') {
            "&"
        } else {
            "?"
        };
        *req.uri_mut() =
            format!("{uri}{sep}dryRun=All")
                .parse()
                .map_err(|e: http::uri::InvalidUri| {
                    kube::Error::BuildRequest(kube::core::request::Error::Validation(e.to_string()))
                })?;
    }
    client.request_text(req).await.map(drop)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_as_path_segments() {
        assert_eq!(escape("regcred"), "regcred");
        assert_eq!(escape("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(escape(".."), "%2E%2E");
        assert_eq!(escape("x.y"), "x.y");
        assert_eq!(
            collection::<k8s_openapi::api::core::v1::Secret>(Some("sh/op")),
            "/api/v1/namespaces/sh%2Fop/secrets"
        );
        assert_eq!(
            collection::<k8s_openapi::api::apps::v1::Deployment>(None),
            "/apis/apps/v1/deployments"
        );
    }

    #[test]
    fn list_queries_page_and_keep_the_watch_cache() {
        let q = ListQuery::fields("status.phase!=Running").cached();
        let first = q.request("/api/v1/pods", 500, None).unwrap();
        assert_eq!(
            first.uri().to_string(),
            "/api/v1/pods?&fieldSelector=status.phase%21%3DRunning&limit=500&resourceVersion=0"
        );
        let next = q.request("/api/v1/pods", 500, Some("tok/en")).unwrap();
        assert_eq!(
            next.uri().to_string(),
            "/api/v1/pods?&fieldSelector=status.phase%21%3DRunning&limit=500&continue=tok%2Fen"
        );
    }

    #[test]
    fn raw_paths_parse_back_into_queries() {
        assert_eq!(
            percent_decode("type%3Dkubernetes.io%2Fx"),
            "type=kubernetes.io/x"
        );
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    /// A server that records each request (head and body) and answers 200
    /// with `body`.
    async fn recording_server(
        body: &'static str,
    ) -> (Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        routing_server(move |_| (200, body.to_string())).await
    }

    /// A server that records each request (head and body) and answers each
    /// request line with `route(request line)`: (status, body).
    async fn routing_server(
        route: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
    ) -> (Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let (url, seen) = fake_api(move |line| {
            let (code, body) = route(line);
            (code, String::new(), body)
        })
        .await;
        let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        (client, seen)
    }

    /// A fake API server at the URL it answers with: records each request
    /// (head and body) and answers each request line with `route(request
    /// line)`: (status, more header lines each ending in CRLF, body).
    pub(crate) async fn fake_api(
        route: impl Fn(&str) -> (u16, String, String) + Send + Sync + 'static,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if rest.len() >= len {
                            break;
                        }
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                let (code, headers, body) = route(text.lines().next().unwrap_or(""));
                log.lock().unwrap().push(text);
                let resp = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn a_metadata_only_list_asks_for_metadata_and_reads_an_empty_one() {
        // What a 1.20 API server answers for an empty metadata-only list.
        let page = r#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"1"},"items":null}"#;
        let (client, seen) = recording_server(page).await;
        let got = list_all_as::<k8s_openapi::api::core::v1::Secret, serde_json::Value>(
            &client,
            None,
            &ListQuery::default().metadata_only(),
        )
        .await
        .unwrap();
        assert!(got.is_empty());
        let request = seen.lock().unwrap()[0].to_ascii_lowercase();
        assert!(
            request.contains(
                "accept: application/json;as=partialobjectmetadatalist;g=meta.k8s.io;v=v1"
            ),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_list_that_never_ends_is_an_error_not_a_hang() {
        // Every page: one pod, and the same continue token.
        let page = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"continue":"again"},"items":[{"metadata":{"name":"p"}}]}"#;
        let (client, seen) = recording_server(page).await;
        let err = list_all_as::<k8s_openapi::api::core::v1::Pod, serde_json::Value>(
            &client,
            Some("shop"),
            &ListQuery::default(),
        )
        .await
        .unwrap_err();
        assert!(err.message.contains("same `continue` token twice"), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 2, "stopped at the repeat");
    }

    #[tokio::test]
    async fn cronjobs_fall_back_to_v1beta1_only_when_discovery_says_so() {
        let empty = r#"{"kind":"List","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"refresh"}}]}"#;
        // batch/v1 without cronjobs (Kubernetes 1.20): v1beta1.
        let (client, seen) = routing_server(move |line| {
            if line.starts_with("GET /apis/batch/v1 ") {
                (200, r#"{"kind":"APIResourceList","groupVersion":"batch/v1","resources":[{"name":"jobs","singularName":"job","namespaced":true,"kind":"Job","verbs":["list"]}]}"#.into())
            } else {
                (200, empty.into())
            }
        })
        .await;
        let got: Vec<Value> = list_cronjobs(&client, Some("shop")).await.unwrap();
        assert_eq!(got.len(), 1);
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen[1].starts_with("GET /apis/batch/v1beta1/namespaces/shop/cronjobs?"),
            "{seen:?}"
        );
        // batch/v1 with cronjobs: v1, and nothing else.
        let (client, seen) = routing_server(move |line| {
            if line.starts_with("GET /apis/batch/v1 ") {
                (200, r#"{"kind":"APIResourceList","groupVersion":"batch/v1","resources":[{"name":"cronjobs","singularName":"cronjob","namespaced":true,"kind":"CronJob","verbs":["list"]}]}"#.into())
            } else if line.contains("v1beta1") {
                (500, "{}".into())
            } else {
                (200, empty.into())
            }
        })
        .await;
        let got: Vec<Value> = list_cronjobs(&client, Some("shop")).await.unwrap();
        assert_eq!(got.len(), 1);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[1].starts_with("GET /apis/batch/v1/namespaces/shop/cronjobs?"));
        // A failing discovery or a failing v1 list is an error, not a
        // reason to try v1beta1.
        for broken in ["GET /apis/batch/v1 ", "GET /apis/batch/v1/namespaces"] {
            let (client, seen) = routing_server(move |line| {
                if line.starts_with(broken) {
                    (500, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"boom","reason":"InternalError","code":500}"#.into())
                } else if line.starts_with("GET /apis/batch/v1 ") {
                    (200, r#"{"kind":"APIResourceList","groupVersion":"batch/v1","resources":[{"name":"cronjobs","singularName":"cronjob","namespaced":true,"kind":"CronJob","verbs":["list"]}]}"#.into())
                } else {
                    (200, empty.into())
                }
            })
            .await;
            let err = list_cronjobs::<Value>(&client, Some("shop"))
                .await
                .unwrap_err();
            assert_eq!(err.code, Some(500), "{err}");
            let seen = seen.lock().unwrap().clone();
            assert!(!seen.iter().any(|r| r.contains("v1beta1")), "{seen:?}");
        }
    }

    #[tokio::test]
    async fn writes_carry_the_field_manager_and_the_dry_run() {
        let obj = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"}}"#;
        let (client, seen) = recording_server(obj).await;
        let web = ObjectRef::new(Writable::Deployment, "shop", "web");
        let patch = Write::StrategicPatch(serde_json::json!({"spec": {"paused": false}}));
        write(&client, &web, &patch, true).await.unwrap();
        let odd = ObjectRef::new(Writable::Secret, "shop", "a/b?c");
        let delete = Write::Delete {
            uid: Some("u1".into()),
            resource_version: Some("42".into()),
        };
        write(&client, &odd, &delete, true).await.unwrap();
        write(&client, &odd, &delete, false).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen[0].starts_with("PATCH /apis/apps/v1/namespaces/shop/deployments/web?&dryRun=All&fieldManager=kubectl-pullfix HTTP/1.1"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0]
                .to_ascii_lowercase()
                .contains("content-type: application/strategic-merge-patch+json"),
            "{}",
            seen[0]
        );
        // The name stays one path segment; the dry-run is in the query and
        // in the body, with the preconditions.
        assert!(
            seen[1].starts_with(
                "DELETE /api/v1/namespaces/shop/secrets/a%2Fb%3Fc?dryRun=All HTTP/1.1"
            ),
            "{}",
            seen[1]
        );
        assert!(seen[1].contains(r#""dryRun":["All"]"#), "{}", seen[1]);
        assert!(
            seen[1].contains(r#""preconditions":{"resourceVersion":"42","uid":"u1"}"#),
            "{}",
            seen[1]
        );
        assert!(
            seen[2].starts_with("DELETE /api/v1/namespaces/shop/secrets/a%2Fb%3Fc HTTP/1.1")
                || seen[2]
                    .starts_with("DELETE /api/v1/namespaces/shop/secrets/a%2Fb%3Fc? HTTP/1.1"),
            "{}",
            seen[2]
        );
        assert!(!seen[2].contains("dryRun"), "{}", seen[2]);
    }

    #[test]
    fn writes_name_their_verb() {
        assert_eq!(Write::MergePatch(Value::Null).verb(), "patch");
        assert_eq!(Write::Replace(Value::Null).verb(), "update");
        assert_eq!(Write::Create(Value::Null).verb(), "create");
        assert_eq!(
            Write::Delete {
                uid: None,
                resource_version: None
            }
            .verb(),
            "delete"
        );
        assert_eq!(Writable::workload("DaemonSet"), Some(Writable::DaemonSet));
        assert_eq!(Writable::workload("Job"), None);
    }
}
