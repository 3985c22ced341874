//! The namespace a command looks in must exist: a mistyped `-n` (or a
//! context pointing at a namespace since deleted) would otherwise scan
//! nothing and report "ok: no pod is failing". One GET before the scan;
//! when it says 404, the error lists the close names there are.
//!
//! RBAC: many on-call users may read pods in their namespace but not `get
//! namespaces`. A denied check is skipped (said at `-v`), never an error.
//!
//! [`close_names`] and [`not_found`] are pure; [`check`] does the I/O.

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use serde::Deserialize;

use crate::api::{self, ListQuery};

/// Where the namespace came from, for the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `-n` / `--namespace`.
    Flag,
    /// The kubeconfig context's namespace (or `default` when it has none).
    Context,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Exists,
    /// RBAC denied the GET: the scan goes ahead without the check.
    NotChecked,
}

#[derive(Deserialize)]
struct NameOnly {
    #[serde(default)]
    metadata: crate::collect::Meta,
}

/// Checks that `ns` exists. `Err` with the close names when it does not;
/// `Ok(NotChecked)` when RBAC does not allow the check.
pub async fn check(client: &Client, ns: &str, source: Source) -> anyhow::Result<Checked> {
    match api::get_opt_as::<Namespace, serde::de::IgnoredAny>(client, None, ns).await {
        Ok(Some(_)) => Ok(Checked::Exists),
        Ok(None) => {
            // The names there are, when this user may list them.
            let names: Option<Vec<String>> =
                api::list_all_as::<Namespace, NameOnly>(client, None, &ListQuery::default())
                    .await
                    .ok()
                    .map(|l| l.into_iter().map(|n| n.metadata.name).collect());
            Err(not_found(ns, source, names.as_deref()))
        }
        Err(e) if e.is_forbidden() => {
            tracing::info!(
                "cannot check that namespace {ns} exists (no `get namespaces` permission): looking in it anyway"
            );
            Ok(Checked::NotChecked)
        }
        Err(e) => Err(e.into()),
    }
}

/// The error for a namespace that does not exist: one line, one `help:`
/// line naming the close names (or saying how to list them). Pure.
pub fn not_found(ns: &str, source: Source, names: Option<&[String]>) -> anyhow::Error {
    let shown = crate::input::shown(ns);
    let from = match source {
        Source::Flag => "-n",
        Source::Context => "the kubeconfig context's namespace",
    };
    let close = names.map(|n| close_names(ns, n)).unwrap_or_default();
    let suggestion = match close.as_slice() {
        [] => String::new(),
        [one] => format!("did you mean `{one}`? "),
        many => format!(
            "did you mean one of: {}? ",
            many.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let fix = match source {
        Source::Flag => "kubectl get namespaces lists them; -A looks in every namespace",
        Source::Context => {
            "kubectl get namespaces lists them; pass -n NAMESPACE, or kubectl config set-context --current --namespace=NAME"
        }
    };
    anyhow::anyhow!("namespace `{shown}` ({from}) not found\nhelp: {suggestion}{fix}")
}

/// Names close to `wanted`, closest first (at most 5): within an edit
/// distance of a third of its length (at least 2), or one a prefix of the
/// other. Pure.
pub fn close_names(wanted: &str, names: &[String]) -> Vec<String> {
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .filter(|n| n.as_str() != wanted)
        .filter_map(|n| {
            let d = crate::diagnose::secrets::levenshtein(wanted, n);
            let prefix = n.len() >= 2
                && wanted.len() >= 2
                && (n.starts_with(wanted) || wanted.starts_with(n.as_str()));
            (d <= limit || prefix).then_some((d, n))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn close_names_closest_first() {
        let all = names(&[
            "default",
            "kube-system",
            "shop",
            "shop-b",
            "shop-c",
            "payments",
        ]);
        assert_eq!(close_names("shpo", &all), ["shop"]);
        assert_eq!(close_names("shop-d", &all), ["shop-b", "shop-c", "shop"]);
        assert_eq!(close_names("paymnets", &all), ["payments"]);
        assert!(close_names("nosuchns", &all).is_empty());
        assert_eq!(close_names("kube", &all), ["kube-system"]);
    }

    #[test]
    fn the_error_is_one_line_and_one_help_line() {
        let all = names(&["default", "shop", "shop-b"]);
        let text = format!("{:#}", not_found("shpo", Source::Flag, Some(&all)));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0], "namespace `shpo` (-n) not found");
        assert!(
            lines[1].starts_with("help: did you mean `shop`? kubectl get namespaces"),
            "{text}"
        );
        let text = format!("{:#}", not_found("gone", Source::Context, None));
        assert!(
            text.contains("the kubeconfig context's namespace"),
            "{text}"
        );
        assert!(
            text.contains("\nhelp: kubectl get namespaces lists them"),
            "{text}"
        );
        let text = format!(
            "{:#}",
            not_found(
                "shop-d",
                Source::Flag,
                Some(&names(&["shop", "shop-b", "shop-c"]))
            )
        );
        assert!(
            text.contains("one of: `shop-b`, `shop-c`, `shop`?"),
            "{text}"
        );
    }
}
