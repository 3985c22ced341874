//! Decoding of the Kubernetes protobuf encoding for the request bodies
//! kubectl 1.32+ sends as `application/vnd.kubernetes.protobuf`: its typed
//! clients (`kubectl create namespace|secret|configmap|serviceaccount|
//! deployment`, `kubectl auth can-i`) encode built-in kinds that way. Only
//! those kinds, and only the fields those commands set, are described
//! here; other fields are skipped. Other kinds answer 415. Pure.
//!
//! Wire format: the magic `k8s\0`, then a `runtime.Unknown` message
//! (1: typeMeta {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding,
//! 4: contentType) whose `raw` is the object's message, with the field
//! numbers of `k8s.io/api/*/generated.proto`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// Magic prefix of the protobuf envelope.
pub const MAGIC: &[u8] = b"k8s\0";

/// How a field is decoded.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Msg(&'static [Field]),
    /// `map<string,string>`
    MapStr,
    /// `map<string,bytes>` (base64 values)
    MapBytes,
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn rep(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REF: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    rep(13, "ownerReferences", Ty::Msg(OWNER_REF)),
    rep(14, "finalizers", Ty::Str),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(&[rep(1, "finalizers", Ty::Str)])),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

const LOCAL_REF: &[Field] = &[f(1, "name", Ty::Str)];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(
        2,
        "secrets",
        Ty::Msg(&[
            f(1, "kind", Ty::Str),
            f(2, "namespace", Ty::Str),
            f(3, "name", Ty::Str),
        ]),
    ),
    rep(3, "imagePullSecrets", Ty::Msg(LOCAL_REF)),
    f(4, "automountServiceAccountToken", Ty::Bool),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
];

const SSAR: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
            f(
                2,
                "nonResourceAttributes",
                Ty::Msg(&[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)]),
            ),
        ]),
    ),
];

const CONTAINER_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "hostPort", Ty::Int),
    f(3, "containerPort", Ty::Int),
    f(4, "protocol", Ty::Str),
];

const ENV_VAR: &[Field] = &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)];

const CONTAINER: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "image", Ty::Str),
    rep(3, "command", Ty::Str),
    rep(4, "args", Ty::Str),
    f(5, "workingDir", Ty::Str),
    rep(6, "ports", Ty::Msg(CONTAINER_PORT)),
    rep(7, "env", Ty::Msg(ENV_VAR)),
    f(8, "resources", Ty::Msg(&[])),
    f(14, "imagePullPolicy", Ty::Str),
];

const POD_SPEC: &[Field] = &[
    rep(2, "containers", Ty::Msg(CONTAINER)),
    f(3, "restartPolicy", Ty::Str),
    f(4, "terminationGracePeriodSeconds", Ty::Int),
    f(6, "dnsPolicy", Ty::Str),
    f(7, "nodeSelector", Ty::MapStr),
    f(8, "serviceAccountName", Ty::Str),
    f(10, "nodeName", Ty::Str),
    rep(15, "imagePullSecrets", Ty::Msg(LOCAL_REF)),
    rep(20, "initContainers", Ty::Msg(CONTAINER)),
];

const POD_TEMPLATE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(POD_SPEC)),
];

const LABEL_SELECTOR: &[Field] = &[f(1, "matchLabels", Ty::MapStr)];

const DEPLOYMENT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "replicas", Ty::Int),
            f(2, "selector", Ty::Msg(LABEL_SELECTOR)),
            f(3, "template", Ty::Msg(POD_TEMPLATE)),
            f(4, "strategy", Ty::Msg(&[f(1, "type", Ty::Str)])),
        ]),
    ),
];

fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SSAR,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        _ => return None,
    })
}

/// Kinds this module decodes (for messages and docs).
pub const KINDS: &[&str] = &[
    "Namespace",
    "Secret",
    "ConfigMap",
    "ServiceAccount",
    "SelfSubjectAccessReview",
    "Deployment",
];

/// (field number, wire type, varint value, length-delimited bytes).
type WireField<'a> = (u64, u64, Value, &'a [u8]);

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i).ok_or("truncated varint")?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        let end = self.i.checked_add(len).ok_or("length overflow")?;
        let out = self.b.get(self.i..end).ok_or("truncated field")?;
        self.i = end;
        Ok(out)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.advance(8),
            2 => self.bytes().map(|_| ()),
            5 => self.advance(4),
            w => Err(format!("unsupported wire type {w}")),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), String> {
        if self.i + n > self.b.len() {
            return Err("truncated field".into());
        }
        self.i += n;
        Ok(())
    }

    fn fields(mut self) -> Result<Vec<WireField<'a>>, String> {
        let mut out = Vec::new();
        while self.i < self.b.len() {
            let key = self.varint()?;
            let (num, wire) = (key >> 3, key & 7);
            match wire {
                0 => {
                    let v = self.varint()?;
                    out.push((num, wire, json!(v), &[][..]));
                }
                2 => {
                    let b = self.bytes()?;
                    out.push((num, wire, Value::Null, b));
                }
                w => self.skip(w)?,
            }
        }
        Ok(out)
    }
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in a string field".to_string())
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut key = String::new();
    let mut value = json!("");
    for (num, wire, _, raw) in (Reader { b, i: 0 }).fields()? {
        match (num, wire) {
            (1, 2) => key = text(raw)?,
            (2, 2) if bytes_value => value = json!(STANDARD.encode(raw)),
            (2, 2) => value = json!(text(raw)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn message(b: &[u8], fields: &[Field]) -> Result<Value, String> {
    let mut out = Map::new();
    for (num, wire, scalar, raw) in (Reader { b, i: 0 }).fields()? {
        let Some(field) = fields.iter().find(|f| f.num == num) else {
            continue;
        };
        let value = match (field.ty, wire) {
            (Ty::Str, 2) => json!(text(raw)?),
            (Ty::Int, 0) => json!(scalar.as_u64().unwrap_or(0) as i64),
            (Ty::Bool, 0) => json!(scalar.as_u64().unwrap_or(0) != 0),
            (Ty::Msg(inner), 2) => message(raw, inner)?,
            (Ty::MapStr | Ty::MapBytes, 2) => {
                let (k, v) = map_entry(raw, matches!(field.ty, Ty::MapBytes))?;
                let m = out.entry(field.name).or_insert_with(|| json!({}));
                m[k.as_str()] = v;
                continue;
            }
            _ => {
                return Err(format!(
                    "field {} has an unexpected wire type {wire}",
                    field.name
                ));
            }
        };
        if field.repeated {
            let list = out.entry(field.name).or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(value);
            }
        } else {
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a protobuf request body into the JSON object it stands for.
/// `Err` is the message for a 400 (malformed) or, prefixed by
/// `unsupported:`, a 415.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the k8s magic prefix")?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (num, wire, _, bytes) in (Reader { b: rest, i: 0 }).fields()? {
        match (num, wire) {
            (1, 2) => {
                for (n, w, _, b) in (Reader { b: bytes, i: 0 }).fields()? {
                    match (n, w) {
                        (1, 2) => api_version = text(b)?,
                        (2, 2) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, 2) => raw = bytes,
            _ => {}
        }
    }
    let fields = schema(&api_version, &kind).ok_or_else(|| {
        format!(
            "unsupported: the pullfix sandbox decodes protobuf only for {}; got {kind} ({api_version}) — send JSON (kubectl apply -f, or kubectl 1.31)",
            KINDS.join(", ")
        )
    })?;
    let mut obj = message(raw, fields)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(num: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(num << 3 | 2, &mut out);
        varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = field(1, api_version.as_bytes());
        tm.extend(field(2, kind.as_bytes()));
        let mut body = MAGIC.to_vec();
        body.extend(field(1, &tm));
        body.extend(field(2, raw));
        body
    }

    #[test]
    fn decodes_a_docker_registry_secret() {
        let mut meta = field(1, b"regcred");
        let mut entry = field(1, b".dockerconfigjson");
        entry.extend(field(2, br#"{"auths":{}}"#));
        meta.extend(field(11, &[field(1, b"a"), field(2, b"b")].concat()));
        let mut raw = field(1, &meta);
        raw.extend(field(2, &entry));
        raw.extend(field(3, b"kubernetes.io/dockerconfigjson"));
        let v = decode(&envelope("v1", "Secret", &raw)).expect("decode");
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["name"], "regcred");
        assert_eq!(v["metadata"]["labels"]["a"], "b");
        assert_eq!(v["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(
            v["data"][".dockerconfigjson"],
            STANDARD.encode(r#"{"auths":{}}"#)
        );
    }

    #[test]
    fn decodes_repeated_and_integer_fields() {
        let mut container = field(1, b"app");
        container.extend(field(2, b"nginx:1"));
        let mut podspec = field(2, &container);
        podspec.extend(field(
            2,
            &[field(1, b"side"), field(2, b"busybox")].concat(),
        ));
        let template = field(2, &podspec);
        let mut spec = vec![1 << 3, 3];
        spec.extend(field(3, &template));
        let raw = [field(1, &field(1, b"web")), field(2, &spec)].concat();
        let v = decode(&envelope("apps/v1", "Deployment", &raw)).expect("decode");
        assert_eq!(v["spec"]["replicas"], 3);
        let cs = v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers");
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[1]["image"], "busybox");
    }

    #[test]
    fn rejects_unknown_kinds_and_garbage() {
        let e = decode(&envelope("batch/v1", "Job", &[])).expect_err("unsupported");
        assert!(e.starts_with("unsupported:"), "{e}");
        assert!(decode(b"{}").is_err());
        let mut truncated = envelope("v1", "Secret", &field(1, &field(1, b"x")));
        truncated.truncate(truncated.len() - 2);
        assert!(decode(&truncated).is_err());
    }
}
