//! Errors that say what failed, about which object, and what to do next.

/// Wraps a kube error with the action, the object, and a `help:` line that
/// fits the failure (RBAC, unreachable apiserver, bad credentials).
pub fn api_error(err: kube::Error, action: &str, object: String) -> anyhow::Error {
    let help = match &err {
        kube::Error::Api(s) if s.code == 403 => format!(
            "help: your identity may not {action} {object}; ask for that permission (kubectl auth can-i {} ...) or run with an identity that has it",
            action.split_whitespace().next().unwrap_or(action)
        ),
        kube::Error::Api(s) if s.code == 401 => {
            "help: the cluster rejected your credentials; refresh them (log in again, or check the kubeconfig user)".to_string()
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            "help: the API server is unreachable; check the cluster address in your kubeconfig, your VPN and --request-timeout".to_string()
        }
        _ => String::new(),
    };
    let base = format!("{action} {object}: {}", describe(&err));
    if help.is_empty() {
        anyhow::anyhow!(base)
    } else {
        anyhow::anyhow!("{base}\n{help}")
    }
}

/// One line for a kube error, without repeating nested sources.
pub fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => chain(other),
    }
}

/// True for a 403 from the API server.
pub fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 403)
}

/// An error and its sources on one line, without repeats.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}
