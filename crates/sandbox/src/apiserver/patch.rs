//! The three PATCH flavours kube-apiserver accepts:
//!
//! * JSON merge patch (RFC 7386, `application/merge-patch+json`),
//! * JSON patch (RFC 6902, `application/json-patch+json`), with the semantics and
//!   error texts of `gopkg.in/evanphx/json-patch.v4`, the library the API server uses,
//! * strategic merge patch (`application/strategic-merge-patch+json`), following
//!   `k8s.io/apimachinery/pkg/util/strategicpatch` for the fields listed in
//!   `list_strategy` (merge keys taken from the `patchMergeKey`/`patchStrategy`
//!   struct tags of `k8s.io/api`).

use serde_json::{Map, Value};

/// A patch that could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchError {
    pub message: String,
    /// true → 400 BadRequest, false → 422 Invalid
    pub bad_request: bool,
}

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatchError {}

fn bad(message: impl Into<String>) -> PatchError {
    PatchError {
        message: message.into(),
        bad_request: true,
    }
}

fn invalid(message: impl Into<String>) -> PatchError {
    PatchError {
        message: message.into(),
        bad_request: false,
    }
}

/// Strategic-merge-patch behaviours of the real API server this one does not reproduce.
pub const UNSUPPORTED: &[&str] = &[
    "merge keys come from a table of built-in field names (pod templates, Secret, ServiceAccount, Node, Service, status conditions), not from Go struct tags",
    "custom resources are merged like built-ins (the real server refuses strategic merge patches for them)",
    "fields and value types are not checked against the schema; only unknown `$` directives are rejected",
    "`$setElementOrder` lists are honoured but not checked against the patch list",
    "`$patch: merge` is accepted as a no-op (the real server rejects it)",
    "errors the real server reports as 500 (missing merge key, unknown `$patch` value) are 400 here",
    "`$deleteFromPrimitiveList` on a field the object lacks is ignored",
];

// ---------------------------------------------------------------------------
// JSON merge patch
// ---------------------------------------------------------------------------

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------
// JSON patch
// ---------------------------------------------------------------------------

/// The JSON type's name, for error messages (patches and selectors), as
/// the real API server (Go) words it.
pub(super) use pullfix::encoding::go_json_kind as json_kind;

/// RFC 6901 unescaping, a single pass like Go's `strings.NewReplacer("~1", "/", "~0", "~")`.
fn decode_key(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(i) = rest.find('~') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('1') {
            out.push('/');
            rest = r;
        } else if let Some(r) = after.strip_prefix('0') {
            out.push('~');
            rest = r;
        } else {
            out.push('~');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Go's `strconv.Atoi`, with its error text.
fn atoi(key: &str) -> Result<i64, String> {
    let digits = key.strip_prefix(['+', '-']).unwrap_or(key);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {key:?}: invalid syntax"));
    }
    key.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {key:?}: value out of range"))
}

fn invalid_index(idx: i64) -> String {
    format!("Unable to access invalid index: {idx}: invalid index referenced")
}

/// `findObject`: the container (object or array) holding the last path segment, and
/// that segment decoded. `None` when any intermediate step is missing.
fn find_parent<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let key = decode_key(split[split.len() - 1]);
    let mut cur = doc;
    for part in &split[1..split.len() - 1] {
        let k = decode_key(part);
        let next = match cur {
            Value::Object(m) => m.get_mut(&k)?,
            Value::Array(a) => {
                let idx = atoi(&k).ok()?;
                let idx = usize::try_from(idx).ok()?;
                a.get_mut(idx)?
            }
            _ => return None,
        };
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        cur = next;
    }
    if cur.is_object() || cur.is_array() {
        Some((cur, key))
    } else {
        None
    }
}

/// Array index for `get`/`set`: must exist and be non-negative.
fn existing_index(a: &[Value], key: &str) -> Result<usize, String> {
    let idx = atoi(key)?;
    match usize::try_from(idx) {
        Ok(i) if i < a.len() => Ok(i),
        _ => Err(invalid_index(idx)),
    }
}

fn container_get(c: &Value, key: &str) -> Result<Option<Value>, String> {
    match c {
        Value::Object(m) => Ok(m.get(key).cloned()),
        Value::Array(a) => existing_index(a, key).map(|i| a.get(i).cloned()),
        _ => Ok(None),
    }
}

fn container_add(c: &mut Value, key: &str, val: Value) -> Result<(), String> {
    match c {
        Value::Object(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(val);
                return Ok(());
            }
            let idx = atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = a.len() as i64 + 1;
            if idx >= size || idx < -size {
                return Err(invalid_index(idx));
            }
            let pos = if idx < 0 { idx + size } else { idx };
            a.insert(pos as usize, val);
            Ok(())
        }
        _ => Err("unknown object type".to_string()),
    }
}

fn container_remove(c: &mut Value, key: &str) -> Result<(), String> {
    match c {
        Value::Object(m) => match m.remove(key) {
            Some(_) => Ok(()),
            None => Err(format!(
                "Unable to remove nonexistent key: {key}: missing value"
            )),
        },
        Value::Array(a) => {
            let idx = atoi(key)?;
            let len = a.len() as i64;
            if idx >= len || idx < -len {
                return Err(invalid_index(idx));
            }
            let pos = if idx < 0 { idx + len } else { idx };
            a.remove(pos as usize);
            Ok(())
        }
        _ => Err("unknown object type".to_string()),
    }
}

/// A string field of an operation: `Ok(None)` when absent or null.
fn op_string(op: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match op.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type string",
            json_kind(other)
        )),
    }
}

fn apply_op(doc: &mut Value, op: &Map<String, Value>) -> Result<(), PatchError> {
    let kind = match op.get("op") {
        Some(Value::String(s)) => s.as_str(),
        _ => "unknown",
    };
    // `value` when present; a missing value behaves as JSON null.
    let value = op.get("value").cloned().unwrap_or(Value::Null);
    let path = op_string(op, "path");
    let from = op_string(op, "from");
    let need_path = |name: &str, wrap_inner: bool| -> Result<String, PatchError> {
        match &path {
            Ok(Some(p)) => Ok(p.clone()),
            Ok(None) if wrap_inner => Err(invalid(format!(
                "{name} operation failed to decode path: operation missing path field: missing value"
            ))),
            Ok(None) => Err(invalid(format!(
                "{name} operation failed to decode path: missing value"
            ))),
            Err(e) if wrap_inner => Err(invalid(format!(
                "{name} operation failed to decode path: {e}"
            ))),
            Err(_) => Err(invalid(format!(
                "{name} operation failed to decode path: missing value"
            ))),
        }
    };
    let need_from = |name: &str| -> Result<String, PatchError> {
        match &from {
            Ok(Some(p)) => Ok(p.clone()),
            Ok(None) => Err(invalid(format!(
                "{name} operation failed to decode from: operation, missing from field: missing value"
            ))),
            Err(e) => Err(invalid(format!(
                "{name} operation failed to decode from: {e}"
            ))),
        }
    };
    match kind {
        "add" => {
            let path = need_path("add", false)?;
            let Some((c, key)) = find_parent(doc, &path) else {
                return Err(invalid(format!(
                    "add operation does not apply: doc is missing path: {path:?}: missing value"
                )));
            };
            container_add(c, &key, value)
                .map_err(|e| invalid(format!("error in add for path: '{path}': {e}")))
        }
        "remove" => {
            let path = need_path("remove", false)?;
            let Some((c, key)) = find_parent(doc, &path) else {
                return Err(invalid(format!(
                    "remove operation does not apply: doc is missing path: {path:?}: missing value"
                )));
            };
            container_remove(c, &key)
                .map_err(|e| invalid(format!("error in remove for path: '{path}': {e}")))
        }
        "replace" => {
            let path = need_path("replace", true)?;
            let Some((c, key)) = find_parent(doc, &path) else {
                return Err(invalid(format!(
                    "replace operation does not apply: doc is missing path: {path}: missing value"
                )));
            };
            match c {
                Value::Object(m) => {
                    m.insert(key, value);
                    Ok(())
                }
                Value::Array(a) => match existing_index(a, &key) {
                    Ok(i) => {
                        a[i] = value;
                        Ok(())
                    }
                    Err(_) => Err(invalid(format!(
                        "replace operation does not apply: doc is missing key: {path}: missing value"
                    ))),
                },
                _ => Err(invalid(format!(
                    "replace operation does not apply: doc is missing path: {path}: missing value"
                ))),
            }
        }
        "move" => {
            let from = need_from("move")?;
            let Some((c, key)) = find_parent(doc, &from) else {
                return Err(invalid(format!(
                    "move operation does not apply: doc is missing from path: {from}: missing value"
                )));
            };
            let val = container_get(c, &key)
                .map_err(|e| invalid(format!("error in move for path: '{key}': {e}")))?
                .unwrap_or(Value::Null);
            container_remove(c, &key)
                .map_err(|e| invalid(format!("error in move for path: '{key}': {e}")))?;
            let path = need_path("move", true)?;
            let Some((c, key)) = find_parent(doc, &path) else {
                return Err(invalid(format!(
                    "move operation does not apply: doc is missing destination path: {path}: missing value"
                )));
            };
            container_add(c, &key, val)
                .map_err(|e| invalid(format!("error in move for path: '{path}': {e}")))
        }
        "copy" => {
            let from = need_from("copy")?;
            let Some((c, key)) = find_parent(doc, &from) else {
                return Err(invalid(format!(
                    "copy operation does not apply: doc is missing from path: {from}: missing value"
                )));
            };
            let val = container_get(c, &key)
                .map_err(|e| invalid(format!("error in copy for from: '{from}': {e}")))?
                .unwrap_or(Value::Null);
            let path = need_path("copy", false)?;
            let Some((c, key)) = find_parent(doc, &path) else {
                return Err(invalid(format!(
                    "copy operation does not apply: doc is missing destination path: {path}: missing value"
                )));
            };
            container_add(c, &key, val)
                .map_err(|e| invalid(format!("error while adding value during copy: {e}")))
        }
        "test" => {
            let path = need_path("test", true)?;
            let Some((c, key)) = find_parent(doc, &path) else {
                return Err(invalid(format!(
                    "test operation does not apply: is missing path: {path}: missing value"
                )));
            };
            let got = container_get(c, &key)
                .map_err(|e| invalid(format!("error in test for path: '{path}': {e}")))?;
            let ok = match got {
                None => value.is_null(),
                Some(v) => op.contains_key("value") && v == value,
            };
            if ok {
                Ok(())
            } else {
                Err(invalid(format!("testing value {path} failed: test failed")))
            }
        }
        other => Err(invalid(format!("Unexpected kind: {other}"))),
    }
}

/// RFC 6902 JSON patch, with the semantics and messages of the API server's
/// json-patch library. Decoding problems are 400s, failed operations 422s.
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, PatchError> {
    let list = match ops {
        Value::Null => return Ok(target.clone()),
        Value::Array(a) => a,
        other => {
            return Err(bad(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_kind(other)
            )));
        }
    };
    let empty = Map::new();
    let mut parsed = Vec::with_capacity(list.len());
    for op in list {
        match op {
            Value::Object(m) => parsed.push(m),
            Value::Null => parsed.push(&empty),
            other => {
                return Err(bad(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    json_kind(other)
                )));
            }
        }
    }
    let mut doc = target.clone();
    for op in parsed {
        apply_op(&mut doc, op)?;
    }
    Ok(doc)
}

// ---------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PREFIX: &str = "$deleteFromPrimitiveList";
const ORDER_PREFIX: &str = "$setElementOrder";

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// The patch's list replaces the live one (no `patchStrategy`, or atomic lists).
    Replace,
    /// Elements are maps merged by this key (`patchStrategy:"merge" patchMergeKey:"..."`).
    MergeKey(&'static str),
    /// A set of scalars (`patchStrategy:"merge"` on a primitive list, e.g. finalizers).
    MergeScalars,
}

fn containerish(field: &str) -> bool {
    matches!(
        field,
        "containers" | "initContainers" | "ephemeralContainers"
    )
}

/// The patch strategy of the list at `path` (field names from the root; list
/// indices are not part of the path) in an object of `kind`.
fn list_strategy(kind: &str, path: &[String]) -> ListStrategy {
    use ListStrategy::*;
    let n = path.len();
    let Some(field) = path.last().map(String::as_str) else {
        return Replace;
    };
    let parent = if n >= 2 { path[n - 2].as_str() } else { "" };
    match field {
        // PodSpec
        "containers" | "initContainers" | "ephemeralContainers" => MergeKey("name"),
        "imagePullSecrets" if kind == "ServiceAccount" && n == 1 => Replace, // listType=atomic
        "imagePullSecrets" => MergeKey("name"),
        "volumes" if parent == "spec" => MergeKey("name"),
        "hostAliases" => MergeKey("ip"),
        "topologySpreadConstraints" => MergeKey("topologyKey"),
        "resourceClaims" if parent == "spec" => MergeKey("name"),
        "schedulingGates" => MergeKey("name"),
        "tolerations" | "readinessGates" => Replace,
        // Container / EphemeralContainer
        "env" if containerish(parent) => MergeKey("name"),
        "volumeMounts" if containerish(parent) => MergeKey("mountPath"),
        "volumeDevices" if containerish(parent) => MergeKey("devicePath"),
        "ports" if containerish(parent) => MergeKey("containerPort"),
        // ServiceSpec
        "ports" if kind == "Service" && n == 2 && parent == "spec" => MergeKey("port"),
        // ObjectMeta
        "ownerReferences" if parent == "metadata" => MergeKey("uid"),
        "finalizers" if parent == "metadata" => MergeScalars,
        // ServiceAccount
        "secrets" if kind == "ServiceAccount" && n == 1 => MergeKey("name"),
        // Node
        "podCIDRs" if kind == "Node" => MergeScalars,
        "addresses" if kind == "Node" && parent == "status" => MergeKey("type"),
        // Status of Pod, Node, Namespace, Service, Deployment, ReplicaSet, StatefulSet,
        // DaemonSet, Job, PersistentVolumeClaim, ...
        "conditions" if parent == "status" => MergeKey("type"),
        "podIPs" | "hostIPs" if parent == "status" => MergeKey("ip"),
        "resourceClaimStatuses" if parent == "status" => MergeKey("name"),
        _ => Replace,
    }
}

/// Go's `%v` formatting of a decoded JSON value (for error messages).
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_fmt).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_fmt(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    bad(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(&Value::Object(m.clone()))
    ))
}

fn bad_patch_type(t: &Value, m: &Map<String, Value>) -> PatchError {
    let t = match t {
        Value::String(s) => s.clone(),
        other => format!("%!s({})", go_fmt(other)),
    };
    bad(format!(
        "unknown patch type: {t} in map: {}",
        go_fmt(&Value::Object(m.clone()))
    ))
}

/// Where we are in the object: field names for strategy look-ups, and a display
/// path (`spec.containers[0].env`) for messages.
struct Ctx<'a> {
    kind: &'a str,
    fields: Vec<String>,
    display: String,
}

impl Ctx<'_> {
    fn child(&mut self, field: &str) -> (usize, usize) {
        let mark = (self.fields.len(), self.display.len());
        self.fields.push(field.to_string());
        if !self.display.is_empty() {
            self.display.push('.');
        }
        self.display.push_str(field);
        mark
    }

    fn index(&mut self, i: usize) -> (usize, usize) {
        let mark = (self.fields.len(), self.display.len());
        self.display.push_str(&format!("[{i}]"));
        mark
    }

    fn restore(&mut self, mark: (usize, usize)) {
        self.fields.truncate(mark.0);
        self.display.truncate(mark.1);
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// A patch value with nothing to merge into: directives are applied to "nothing"
/// (and so stripped), nulls dropped.
fn clean(v: &Value, ctx: &mut Ctx) -> Result<Value, PatchError> {
    match v {
        Value::Object(p) => Ok(Value::Object(merge_map(Map::new(), p, ctx)?)),
        Value::Array(items) => merge_list(&[], items, ctx, None),
        other => Ok(other.clone()),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<Map<String, Value>, PatchError> {
    let mut patch = patch.clone();
    if let Some(d) = patch.get(DIRECTIVE).cloned() {
        match d.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                return merge_map(Map::new(), &patch, ctx);
            }
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {
                patch.remove(DIRECTIVE);
            }
            _ => return Err(bad_patch_type(&d, &patch)),
        }
    }

    if let Some(retain) = patch.remove(RETAIN_KEYS) {
        let Value::Array(keep) = retain else {
            return Err(bad("Invalid patch format of retainKeys"));
        };
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        for (k, v) in &patch {
            if v.is_null() || k.starts_with(DELETE_PREFIX) || k.starts_with(ORDER_PREFIX) {
                continue;
            }
            if !keep.contains(&k.as_str()) {
                return Err(bad("Invalid patch format of retainKeys"));
            }
        }
        original.retain(|k, _| keep.contains(&k.as_str()));
    }

    // Parallel lists: `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`.
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    let mut deletions: Vec<(String, Vec<Value>)> = Vec::new();
    let mut regular: Vec<(String, Value)> = Vec::new();
    for (k, v) in patch {
        if k.starts_with(ORDER_PREFIX) {
            let field = match k.split_once('/') {
                Some((ORDER_PREFIX, f)) => f.to_string(),
                _ => return Err(bad("Invalid patch format of setElementOrder list")),
            };
            let Value::Array(list) = v else {
                return Err(bad("Invalid patch format of setElementOrder list"));
            };
            orders.push((field, list));
        } else if k.starts_with(DELETE_PREFIX) {
            let field = match k.split_once('/') {
                Some((DELETE_PREFIX, f)) => f.to_string(),
                _ => return Err(bad("Invalid patch format of primitive list")),
            };
            let Value::Array(list) = v else {
                return Err(bad("Invalid patch format of primitive list"));
            };
            deletions.push((field, list));
        } else if k.starts_with('$') {
            let mark = ctx.child(&k);
            let path = ctx.display.clone();
            ctx.restore(mark);
            return Err(invalid(format!(
                "strict decoding error: unknown field {path:?}"
            )));
        } else {
            regular.push((k, v));
        }
    }

    let touched: Vec<String> = regular.iter().map(|(k, _)| k.clone()).collect();
    for (k, v) in regular {
        if v.is_null() {
            original.remove(&k);
            continue;
        }
        let order = orders
            .iter()
            .find(|(f, _)| *f == k)
            .map(|(_, o)| o.as_slice());
        let mark = ctx.child(&k);
        let merged = match original.remove(&k) {
            None => clean(&v, ctx),
            Some(cur) if !same_type(&cur, &v) => clean(&v, ctx),
            Some(Value::Object(cur)) => match &v {
                Value::Object(p) => merge_map(cur, p, ctx).map(Value::Object),
                _ => clean(&v, ctx),
            },
            Some(Value::Array(cur)) => match &v {
                Value::Array(p) => merge_list(&cur, p, ctx, order),
                _ => clean(&v, ctx),
            },
            Some(_) => clean(&v, ctx),
        };
        ctx.restore(mark);
        original.insert(k, merged?);
    }

    // An order for a list the patch does not otherwise touch still reorders it.
    for (field, order) in &orders {
        if touched.contains(field) {
            continue;
        }
        if let Some(Value::Array(cur)) = original.get(field) {
            let mark = ctx.child(field);
            let strategy = list_strategy(ctx.kind, &ctx.fields);
            ctx.restore(mark);
            let key = match strategy {
                ListStrategy::MergeKey(k) => Some(k),
                _ => None,
            };
            let reordered = reorder(cur.clone(), order, cur, key);
            original.insert(field.clone(), Value::Array(reordered));
        }
    }

    for (field, remove) in deletions {
        if let Some(cur) = original.get_mut(&field) {
            let Value::Array(items) = cur else {
                return Err(bad(format!(
                    "expected a []interface {{}}, but received a {}",
                    go_type(cur)
                )));
            };
            items.retain(|x| !remove.contains(x));
        }
    }
    Ok(original)
}

/// The merge-key value of a list element (the element itself for scalars).
fn key_of<'v>(item: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(k) => item.get(k),
        None => Some(item),
    }
}

fn index_in(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let want = key_of(item, key)?;
    list.iter().position(|x| key_of(x, key) == Some(want))
}

/// `normalizeElementOrder`: items named by `order` come in that order; the others
/// keep their live order and are interleaved by their position in `live`.
fn reorder(merged: Vec<Value>, order: &[Value], live: &[Value], key: Option<&str>) -> Vec<Value> {
    let (mut patch_items, server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|x| index_in(order, x, key).is_some());
    patch_items.sort_by_key(|x| index_in(order, x, key).unwrap_or(usize::MAX));
    // mergeSortedSlice(serverOnly, patchItems, live)
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let (mut i, mut j) = (0, 0);
    while i < server_only.len() || j < patch_items.len() {
        if i >= server_only.len() {
            out.push(patch_items[j].clone());
            j += 1;
        } else if j >= patch_items.len() {
            out.push(server_only[i].clone());
            i += 1;
        } else {
            let li = index_in(live, &server_only[i], key);
            let ri = index_in(live, &patch_items[j], key);
            match (li, ri) {
                (Some(l), Some(r)) if l < r => {
                    out.push(server_only[i].clone());
                    i += 1;
                }
                _ => {
                    out.push(patch_items[j].clone());
                    j += 1;
                }
            }
        }
    }
    out
}

fn merge_list(
    original: &[Value],
    patch: &[Value],
    ctx: &mut Ctx,
    order: Option<&[Value]>,
) -> Result<Value, PatchError> {
    let strategy = list_strategy(ctx.kind, &ctx.fields);
    if strategy == ListStrategy::Replace {
        let mut out = Vec::with_capacity(patch.len());
        for (i, item) in patch.iter().enumerate() {
            let mark = ctx.index(i);
            let cleaned = clean(item, ctx);
            ctx.restore(mark);
            out.push(cleaned?);
        }
        return Ok(Value::Array(out));
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    // All elements must share one type, and lists of lists are not supported.
    let mut first: Option<&Value> = None;
    for item in original.iter().chain(patch) {
        match first {
            None => {
                if item.is_array() {
                    return Err(invalid("Lists of lists are not supported"));
                }
                first = Some(item);
            }
            Some(f) if !same_type(f, item) => {
                let both = format!(
                    "[{} {}]",
                    go_fmt(&Value::Array(original.to_vec())),
                    go_fmt(&Value::Array(patch.to_vec()))
                );
                return Err(bad(format!("list element types are not identical: {both}")));
            }
            Some(_) => {}
        }
    }
    let maps = first.is_some_and(Value::is_object);
    if !maps {
        // A set of scalars: union, then order.
        let mut merged: Vec<Value> = Vec::new();
        for item in original.iter().chain(patch) {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        let order = order.unwrap_or(patch);
        return Ok(Value::Array(reorder(merged, order, original, None)));
    }
    let ListStrategy::MergeKey(key) = strategy else {
        return Err(bad("cannot merge lists without merge key for type struct"));
    };
    let mut live: Vec<Value> = original.to_vec();
    let mut items: Vec<&Map<String, Value>> = Vec::new();
    let mut replace = false;
    for item in patch {
        let Value::Object(m) = item else { continue };
        match m.get(DIRECTIVE) {
            None => items.push(m),
            Some(Value::String(d)) if d == "delete" => {
                let Some(want) = m.get(key) else {
                    return Err(no_merge_key(m, key));
                };
                live.retain(|x| x.get(key) != Some(want));
            }
            Some(Value::String(d)) if d == "replace" => replace = true,
            Some(Value::String(d)) if d == "merge" => {
                if m.contains_key(key) {
                    items.push(m);
                }
            }
            Some(other) => return Err(bad_patch_type(other, m)),
        }
    }
    if replace {
        let mut out = Vec::with_capacity(items.len());
        for (i, m) in items.into_iter().enumerate() {
            let mark = ctx.index(i);
            let cleaned = merge_map(Map::new(), m, ctx);
            ctx.restore(mark);
            out.push(Value::Object(cleaned?));
        }
        return Ok(Value::Array(out));
    }
    let base = live.clone();
    for m in &items {
        let Some(want) = m.get(key) else {
            return Err(no_merge_key(m, key));
        };
        match live.iter().position(|x| x.get(key) == Some(want)) {
            Some(pos) => {
                let cur = match live.get(pos) {
                    Some(Value::Object(cur)) => cur.clone(),
                    _ => Map::new(),
                };
                let mark = ctx.index(pos);
                let merged = merge_map(cur, m, ctx);
                ctx.restore(mark);
                live[pos] = Value::Object(merged?);
            }
            None => {
                let mark = ctx.index(live.len());
                let merged = merge_map(Map::new(), m, ctx);
                ctx.restore(mark);
                live.push(Value::Object(merged?));
            }
        }
    }
    let patch_order: Vec<Value> = items.iter().map(|m| Value::Object((*m).clone())).collect();
    let order = order.unwrap_or(&patch_order);
    Ok(Value::Array(reorder(live, order, &base, Some(key))))
}

/// Strategic merge patch of an object of `kind` ("Pod", "Deployment", ...).
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    kind: &str,
) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Null => return Ok(target.clone()),
        Value::Object(p) => p,
        other => {
            return Err(bad(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(other)
            )));
        }
    };
    let original = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    let mut ctx = Ctx {
        kind,
        fields: Vec::new(),
        display: String::new(),
    };
    merge_map(original, patch, &mut ctx).map(Value::Object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                         "finalizers": ["a", "b"]},
            "spec": {
                "replicas": 2,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                             "ports": [{"containerPort": 80}]},
                            {"name": "sidecar", "image": "busybox"}
                        ],
                        "imagePullSecrets": [{"name": "old"}],
                        "tolerations": [{"key": "x", "operator": "Exists"}]
                    }
                }
            }
        })
    }

    #[test]
    fn merge_patch_rfc7386() {
        let t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let p = json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": null, "y": 1}});
        assert_eq!(
            merge_patch(&t, &p),
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"y": 1}})
        );
        assert_eq!(merge_patch(&t, &json!("s")), json!("s"));
        assert_eq!(merge_patch(&json!("s"), &json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn json_patch_operations() {
        let t = json!({"metadata": {"labels": {"a/b": "1", "c~d": "2"}}, "list": [1, 2, 3]});
        let ops = json!([
            {"op": "test", "path": "/metadata/labels/a~1b", "value": "1"},
            {"op": "replace", "path": "/metadata/labels/c~0d", "value": "3"},
            {"op": "add", "path": "/list/-", "value": 4},
            {"op": "add", "path": "/list/0", "value": 0},
            {"op": "remove", "path": "/list/1"},
            {"op": "copy", "from": "/list/0", "path": "/first"},
            {"op": "move", "from": "/first", "path": "/metadata/first"}
        ]);
        assert_eq!(
            json_patch(&t, &ops).unwrap(),
            json!({"metadata": {"labels": {"a/b": "1", "c~d": "3"}, "first": 0}, "list": [0, 2, 3, 4]})
        );
        // Replacing a missing object key adds it, as json-patch v4 does.
        assert_eq!(
            json_patch(
                &json!({"a": {}}),
                &json!([{"op": "replace", "path": "/a/b", "value": 1}])
            )
            .unwrap(),
            json!({"a": {"b": 1}})
        );
    }

    #[test]
    fn json_patch_errors_like_the_server() {
        let t = json!({"spec": {"containers": [{"name": "a"}]}, "metadata": {"labels": {}}});
        let err = |ops: Value| json_patch(&t, &ops).unwrap_err();
        assert_eq!(
            err(json!([{"op": "add", "path": "/status/phase", "value": "x"}])),
            invalid(
                "add operation does not apply: doc is missing path: \"/status/phase\": missing value"
            )
        );
        assert_eq!(
            err(json!([{"op": "remove", "path": "/metadata/labels/app"}])).message,
            "error in remove for path: '/metadata/labels/app': Unable to remove nonexistent key: app: missing value"
        );
        assert_eq!(
            err(json!([{"op": "replace", "path": "/spec/containers/5/image", "value": "x"}]))
                .message,
            "replace operation does not apply: doc is missing path: /spec/containers/5/image: missing value"
        );
        assert_eq!(
            err(json!([{"op": "replace", "path": "/spec/containers/5", "value": "x"}])).message,
            "replace operation does not apply: doc is missing key: /spec/containers/5: missing value"
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "/spec/containers/7", "value": {}}])).message,
            "error in add for path: '/spec/containers/7': Unable to access invalid index: 7: invalid index referenced"
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "/spec/containers/x", "value": {}}])).message,
            "error in add for path: '/spec/containers/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err(json!([{"op": "test", "path": "/spec/containers/0/name", "value": "b"}])).message,
            "testing value /spec/containers/0/name failed: test failed"
        );
        assert_eq!(
            err(json!([{"op": "frob", "path": "/a"}])).message,
            "Unexpected kind: frob"
        );
        assert_eq!(
            err(json!([{"path": "/a"}])).message,
            "Unexpected kind: unknown"
        );
        assert_eq!(
            err(json!([{"op": "add", "value": 1}])).message,
            "add operation failed to decode path: missing value"
        );
        assert_eq!(
            err(json!([{"op": "move", "path": "/a"}])).message,
            "move operation failed to decode from: operation, missing from field: missing value"
        );
        let decode = err(json!({"op": "add"}));
        assert!(decode.bad_request);
        assert_eq!(
            decode.message,
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        assert!(!err(json!([{"op": "frob"}])).bad_request);
    }

    #[test]
    fn smp_set_image_merges_containers_by_name() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}});
        let out = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["image"], "nginx:2");
        assert_eq!(cs[0]["env"][1]["value"], "2", "untouched fields survive");
        assert_eq!(cs[1]["name"], "sidecar");
    }

    #[test]
    fn smp_lists_without_merge_key_are_replaced() {
        let patch = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "y"}]}}}});
        let out = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "y"}])
        );
        // ServiceAccount imagePullSecrets is atomic: replaced, not merged.
        let sa = json!({"kind": "ServiceAccount", "metadata": {"name": "default"}, "imagePullSecrets": [{"name": "a"}], "secrets": [{"name": "t"}]});
        let out = strategic_merge_patch(
            &sa,
            &json!({"imagePullSecrets": [{"name": "b"}], "secrets": [{"name": "u"}]}),
            "ServiceAccount",
        )
        .unwrap();
        assert_eq!(out["imagePullSecrets"], json!([{"name": "b"}]));
        // Merged by name; as in Go's mergeSortedSlice, new patch items come before live-only ones.
        assert_eq!(out["secrets"], json!([{"name": "u"}, {"name": "t"}]));
    }

    #[test]
    fn smp_pod_image_pull_secrets_merge_and_env_and_ports() {
        let patch = json!({"spec": {"template": {"spec": {
            "imagePullSecrets": [{"name": "new"}],
            "containers": [{"name": "app", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}], "ports": [{"containerPort": 443}]}]
        }}}});
        let out = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap();
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(
            spec["imagePullSecrets"],
            json!([{"name": "new"}, {"name": "old"}])
        );
        assert_eq!(
            spec["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}])
        );
        assert_eq!(
            spec["containers"][0]["ports"],
            json!([{"containerPort": 443}, {"containerPort": 80}])
        );
    }

    #[test]
    fn smp_null_deletes_and_nested_maps_merge() {
        let patch = json!({"metadata": {"labels": {"app": null, "tier": "x"}}, "spec": {"strategy": {"rollingUpdate": null}}});
        let out = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"tier": "x"}));
        assert_eq!(out["spec"]["strategy"], json!({"type": "RollingUpdate"}));
        assert_eq!(out["metadata"]["name"], "web");
    }

    #[test]
    fn smp_directives() {
        let d = deployment();
        // $patch: delete as a list element.
        let out = strategic_merge_patch(&d, &json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}), "Deployment").unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // $patch: replace as a list element.
        let out = strategic_merge_patch(&d, &json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}), "Deployment").unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
        // $patch: replace / delete in a map.
        let out = strategic_merge_patch(
            &d,
            &json!({"metadata": {"labels": {"$patch": "replace", "new": "1"}}}),
            "Deployment",
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"new": "1"}));
        let out = strategic_merge_patch(
            &d,
            &json!({"spec": {"strategy": {"$patch": "delete"}}}),
            "Deployment",
        )
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({}));
        // $patch: merge is a no-op.
        let out = strategic_merge_patch(
            &d,
            &json!({"metadata": {"labels": {"$patch": "merge", "n": "1"}}}),
            "Deployment",
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "n": "1"}));
        // Primitive set: finalizers merge, $deleteFromPrimitiveList removes.
        let out = strategic_merge_patch(&d, &json!({"metadata": {"finalizers": ["c", "a"], "$deleteFromPrimitiveList/finalizers": ["b"]}}), "Deployment").unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a"]));
        // $retainKeys clears fields not listed.
        let out = strategic_merge_patch(
            &d,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            "Deployment",
        )
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn smp_directive_errors() {
        let d = deployment();
        let e = strategic_merge_patch(
            &d,
            &json!({"metadata": {"labels": {"$patch": "frob"}}}),
            "Deployment",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "unknown patch type: frob in map: map[$patch:frob]"
        );
        let e =
            strategic_merge_patch(&d, &json!({"spec": {"$frob": 1}}), "Deployment").unwrap_err();
        assert_eq!(
            e,
            invalid("strict decoding error: unknown field \"spec.$frob\"")
        );
        let e = strategic_merge_patch(
            &d,
            &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            "Deployment",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "map: map[image:x] does not contain declared merge key: name"
        );
        let e = strategic_merge_patch(
            &d,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            "Deployment",
        )
        .unwrap_err();
        assert_eq!(e, bad("Invalid patch format of retainKeys"));
        let e = strategic_merge_patch(&d, &json!(["x"]), "Deployment").unwrap_err();
        assert!(e.bad_request);
    }

    #[test]
    fn smp_kubectl_apply_three_way_patch() {
        // What `kubectl apply` sends after adding an env var and a container, reordering
        // containers, and dropping a label (last-applied annotation included).
        let patch = json!({
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Deployment\"}\n"},
                "labels": {"app": null}
            },
            "spec": {
                "$retainKeys": ["rollingUpdate", "type"],
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}, {"name": "new"}],
                    "containers": [
                        {"$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "Z"}],
                         "env": [{"name": "Z", "value": "26"}], "name": "app"},
                        {"image": "new:1", "name": "new"}
                    ]
                }}
            }
        });
        // `$retainKeys` at spec level would clear other spec fields; kubectl only puts it
        // on retainKeys fields, so drop it here after checking that it is honoured.
        let e = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap_err();
        assert_eq!(e.message, "Invalid patch format of retainKeys");
        let mut patch = patch;
        patch["spec"].as_object_mut().unwrap().remove("$retainKeys");
        let out = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap();
        assert!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .is_string()
        );
        assert!(out["metadata"]["labels"].get("app").is_none());
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "app", "new"]);
        let env: Vec<&str> = out["spec"]["template"]["spec"]["containers"][1]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(env, ["A", "B", "Z"]);
        assert!(
            !out.to_string().contains('$'),
            "no directive survives: {out}"
        );
    }

    #[test]
    fn smp_set_element_order_for_primitive_list_and_untouched_list() {
        let d = deployment();
        let out = strategic_merge_patch(
            &d,
            &json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}),
            "Deployment",
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
    }

    #[test]
    fn smp_service_ports_and_rollout_restart() {
        let svc = json!({"kind": "Service", "spec": {"ports": [{"port": 80, "name": "http"}]}});
        let out = strategic_merge_patch(
            &svc,
            &json!({"spec": {"ports": [{"port": 80, "name": "web"}, {"port": 443}]}}),
            "Service",
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "name": "web"}, {"port": 443}])
        );
        let restart = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}});
        let out = strategic_merge_patch(&deployment(), &restart, "Deployment").unwrap();
        assert_eq!(out["spec"]["template"]["metadata"]["labels"]["app"], "web");
        assert!(
            out["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .is_string()
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn arb_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(Value::from),
                "(-|0|1|x|name|\\$patch|delete|replace|merge|/a|~)".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 32, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(
                        "(name|image|containers|env|spec|metadata|finalizers|ports|containerPort|\\$patch|\\$retainKeys|\\$setElementOrder/containers|\\$deleteFromPrimitiveList/finalizers|\\$x|op|path|from|value)",
                        inner,
                        0..5
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn arb_op() -> impl Strategy<Value = Value> {
            (
                "(add|remove|replace|move|copy|test|bogus)",
                "(|/|/a|/a/0|/a/-|/a/b|/0|/a/~1|/a/99|/a/-1|x/a)",
                "(|/|/a|/a/0|/b)",
                arb_json(),
            )
                .prop_map(|(op, path, from, value)| {
                    serde_json::json!({"op": op, "path": path, "from": from, "value": value})
                })
        }

        proptest! {
            #[test]
            fn merge_patch_never_panics(t in arb_json(), p in arb_json()) {
                let _ = merge_patch(&t, &p);
            }

            #[test]
            fn json_patch_never_panics(t in arb_json(), ops in prop::collection::vec(arb_op(), 0..6)) {
                let _ = json_patch(&t, &Value::Array(ops));
            }

            #[test]
            fn json_patch_arbitrary_ops_never_panic(t in arb_json(), ops in arb_json()) {
                let _ = json_patch(&t, &ops);
            }

            #[test]
            fn smp_never_panics(t in arb_json(), p in arb_json(), kind in "(Pod|Deployment|Service|ServiceAccount|Node|Secret)") {
                let _ = strategic_merge_patch(&t, &p, &kind);
            }

            #[test]
            fn smp_with_plain_maps_is_merge_patch(
                t in prop::collection::btree_map("[a-c]", "[x-z]", 0..4),
                p in prop::collection::btree_map("[a-d]", prop::option::of("[x-z]"), 0..4),
            ) {
                let t = serde_json::to_value(t).unwrap();
                let p = serde_json::to_value(p).unwrap();
                prop_assert_eq!(strategic_merge_patch(&t, &p, "Pod").unwrap(), merge_patch(&t, &p));
            }
        }
    }
}
