//! The garbage collector: dependents of vanished owners (background), and
//! the `foregroundDeletion` / `orphan` finalizers.

use super::*;

pub(super) const OWNER_KINDS: [Kind; 4] =
    [Kind::Deployment, Kind::ReplicaSet, Kind::Job, Kind::CronJob];
pub(super) const DEPENDENT_KINDS: [Kind; 3] = [Kind::Pod, Kind::ReplicaSet, Kind::Job];

/// Dependents whose owners are all gone are deleted (background
/// propagation); owners being deleted with the `foregroundDeletion`
/// finalizer lose their dependents first, with `orphan` they let them go.
pub fn plan_gc(snap: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    let mut owners: HashSet<(&str, &str)> = HashSet::new();
    for k in OWNER_KINDS {
        for o in snap.list(k) {
            owners.insert((namespace(o), uid(o)));
        }
    }
    let mut dependents: HashMap<&str, Vec<(Kind, &Value)>> = HashMap::new();
    for k in DEPENDENT_KINDS {
        for obj in snap.list(k) {
            let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
                continue;
            };
            if refs.is_empty() {
                continue;
            }
            for r in refs {
                dependents
                    .entry(str_at(r, &["uid"]))
                    .or_default()
                    .push((k, obj));
            }
            if deleting(obj) {
                continue;
            }
            let mut gone = Vec::new();
            for r in refs {
                let kind = Kind::of(str_at(r, &["apiVersion"]), str_at(r, &["kind"]))
                    .filter(|k| OWNER_KINDS.contains(k) && snap.is_synced(*k));
                let Some(kind) = kind else {
                    gone.clear();
                    break;
                };
                if owners.contains(&(namespace(obj), str_at(r, &["uid"]))) {
                    gone.clear();
                    break;
                }
                gone.push((
                    kind,
                    str_at(r, &["name"]).to_string(),
                    str_at(r, &["uid"]).to_string(),
                ));
            }
            if !gone.is_empty() {
                out.push(Action::Collect {
                    kind: k,
                    namespace: namespace(obj).to_string(),
                    name: name(obj).to_string(),
                    uid: uid(obj).to_string(),
                    owners: gone,
                });
            }
        }
    }
    for k in OWNER_KINDS {
        for owner in snap.list(k).filter(|o| deleting(o)) {
            let finalizers: Vec<&str> = owner["metadata"]["finalizers"]
                .as_array()
                .map(|f| f.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mine: Vec<(Kind, &Value)> = dependents.get(uid(owner)).cloned().unwrap_or_default();
            let mut done = Vec::new();
            if finalizers.contains(&"foregroundDeletion") {
                for (dk, dep) in &mine {
                    if !deleting(dep) {
                        out.push(Action::Delete {
                            kind: *dk,
                            namespace: namespace(dep).to_string(),
                            name: name(dep).to_string(),
                            uid: uid(dep).to_string(),
                            event: None,
                        });
                    }
                }
                if mine.is_empty() {
                    done.push("foregroundDeletion");
                }
            }
            if finalizers.contains(&"orphan") {
                for (dk, dep) in &mine {
                    let rest: Vec<&Value> = dep["metadata"]["ownerReferences"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .filter(|r| str_at(r, &["uid"]) != uid(owner))
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(Action::Patch {
                        kind: *dk,
                        namespace: namespace(dep).to_string(),
                        name: name(dep).to_string(),
                        patch: json!({"metadata": {"ownerReferences": rest}}),
                    });
                }
                if mine.is_empty() {
                    done.push("orphan");
                }
            }
            if !done.is_empty() {
                let rest: Vec<&str> = finalizers
                    .into_iter()
                    .filter(|f| !done.contains(f))
                    .collect();
                out.push(Action::Patch {
                    kind: k,
                    namespace: namespace(owner).to_string(),
                    name: name(owner).to_string(),
                    patch: json!({"metadata": {"finalizers": rest}}),
                });
            }
        }
    }
    out
}
