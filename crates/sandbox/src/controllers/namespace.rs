//! The namespace controller's part the sandbox needs: every Active
//! namespace gets a `default` ServiceAccount.

use super::*;

/// Every Active namespace gets a `default` ServiceAccount (no token secret,
/// as since 1.24).
pub fn plan_namespaces(snap: &Snapshot) -> Vec<Action> {
    if !snap.is_synced(Kind::ServiceAccount) {
        return Vec::new();
    }
    snap.list(Kind::Namespace)
        .filter(|ns| !deleting(ns))
        .filter(|ns| matches!(str_at(ns, &["status", "phase"]), "" | "Active"))
        .filter(|ns| {
            snap.get(Kind::ServiceAccount, name(ns), "default")
                .is_none()
        })
        .map(|ns| Action::Create {
            kind: Kind::ServiceAccount,
            namespace: name(ns).to_string(),
            body: json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": name(ns)},
            }),
            event: None,
        })
        .collect()
}
