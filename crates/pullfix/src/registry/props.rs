//! Property tests: the registry parsers take text from pods, secrets and
//! registries nobody here controls, so no input may panic them, and what
//! they accept must come back the same when printed and parsed again.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use super::client::parse_challenge;
use super::keyring::{
    Credential, DOCKERCFG, DOCKERCONFIGJSON, Keyring, decode_auth, dockerconfigjson, normalize_key,
    parse_pull_secret, urls_match,
};
use super::reference::ImageRef;

/// Text shaped like image references: hosts, ports, paths, tags, digests
/// and the characters that break naive splitting.
fn reference_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        "[a-zA-Z0-9.:/@_\\-\\[\\]]{0,80}",
        (
            "([a-z0-9.-]{1,20}(:[0-9]{0,6})?/)?",
            "[a-zA-Z0-9._/-]{1,40}",
            "(:[a-zA-Z0-9_.-]{0,130})?",
            "(@[a-z0-9+._-]{0,10}:[0-9a-fA-F]{0,70})?",
        )
            .prop_map(|(d, r, t, g)| format!("{d}{r}{t}{g}")),
    ]
}

/// JSON values of any shape, including the wrong ones (`[1,2]`,
/// `{"auths": 3}`), with odd strings where `auth` goes.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::from),
        "[A-Za-z0-9+/=_-]{0,200}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("auths".to_string()),
                    Just("auth".to_string()),
                    Just("username".to_string()),
                    Just("password".to_string()),
                    "\\PC{0,20}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn references_never_panic_and_round_trip(s in reference_like()) {
        if let Ok(r) = ImageRef::parse(&s) {
            let _ = (r.api_host(), r.manifest_reference(), r.name(), r.is_docker_hub());
            // The normalized form parses to the same reference.
            let again = ImageRef::parse(&r.to_string());
            prop_assert!(again.is_ok(), "{s:?} -> {} fails", r);
            let again = again.unwrap();
            prop_assert_eq!(&again.domain, &r.domain);
            prop_assert_eq!(&again.repository, &r.repository);
            prop_assert_eq!(&again.digest, &r.digest);
        }
    }

    #[test]
    fn pull_secrets_of_any_shape_never_panic(v in json_value(), dockercfg in any::<bool>()) {
        let (ty, key) = if dockercfg { (DOCKERCFG, ".dockercfg") } else { (DOCKERCONFIGJSON, ".dockerconfigjson") };
        for doc in [v.clone(), serde_json::json!({ "auths": v.clone() }), serde_json::json!({ "auths": { "r.example": v.clone() } })] {
            let data = BTreeMap::from([(key.to_string(), doc.to_string().into_bytes())]);
            if let Ok(entries) = parse_pull_secret(ty, &data) {
                let mut ring = Keyring::default();
                ring.add("s", &entries);
                let _ = ring.lookup("docker.io/library/nginx");
                let _ = ring.lookup("r.example/team/app");
            }
        }
    }

    #[test]
    fn secret_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..512), ty in prop_oneof![Just(DOCKERCONFIGJSON), Just(DOCKERCFG), Just("Opaque")]) {
        for key in [".dockerconfigjson", ".dockercfg", "other"] {
            let data = BTreeMap::from([(key.to_string(), raw.clone())]);
            let _ = parse_pull_secret(ty, &data);
        }
    }

    #[test]
    fn auth_values_never_panic(s in prop_oneof!["\\PC{0,300}", "[A-Za-z0-9+/=_\\-\\s]{0,300}"], bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_auth(&s);
        let _ = decode_auth(&STANDARD.encode(&bytes));
    }

    #[test]
    fn credentials_round_trip_through_dockerconfigjson(
        server in "[a-z0-9.-]{1,30}(:[0-9]{1,5})?",
        username in "[^:\\x00]{0,40}",
        password in "\\PC{0,60}",
    ) {
        let cred = Credential::new(username, password);
        let json = dockerconfigjson(&server, &cred);
        let data = BTreeMap::from([(".dockerconfigjson".to_string(), json.into_bytes())]);
        let entries = parse_pull_secret(DOCKERCONFIGJSON, &data).unwrap();
        prop_assert_eq!(entries.len(), 1);
        prop_assert_eq!(entries[0].credential.as_ref(), Some(&cred));
        prop_assert!(!entries[0].auth_disagrees);
    }

    #[test]
    fn keys_and_globs_never_panic(key in "\\PC{0,60}", glob in "[a-z*?\\[\\]^.:/0-9-]{0,40}", target in "[a-z.:/0-9-]{0,40}") {
        let _ = normalize_key(&key);
        let _ = urls_match(&glob, &target);
        let _ = urls_match(&key, &target);
    }

    #[test]
    fn www_authenticate_never_panics(s in prop_oneof![
        "\\PC{0,200}",
        "(Bearer|Basic|bearer)? ?([a-z]{1,8}=(\"[^\"]{0,20}\"?|[^,]{0,20}),? ?){0,6}",
    ]) {
        let c = parse_challenge(&s);
        prop_assert_eq!(c.scheme.clone(), c.scheme.to_ascii_lowercase());
    }
}

#[test]
fn odd_pull_secrets_are_problems_not_panics() {
    let data = |s: &str| BTreeMap::from([(".dockerconfigjson".to_string(), s.as_bytes().to_vec())]);
    for doc in [
        "[1,2]",
        "{\"auths\": 3}",
        "{\"auths\": []}",
        "null",
        "\"auths\"",
        "",
        "{",
    ] {
        let _ = parse_pull_secret(DOCKERCONFIGJSON, &data(doc));
    }
    assert!(parse_pull_secret(DOCKERCONFIGJSON, &data("[1,2]")).is_err());
    assert!(parse_pull_secret(DOCKERCONFIGJSON, &data("{\"auths\": 3}")).is_err());
    // A huge `auth` that is not base64 is no credential, not a crash.
    let huge = format!(
        "{{\"auths\":{{\"r.example\":{{\"auth\":\"{}\"}}}}}}",
        "%".repeat(1 << 20)
    );
    let entries = parse_pull_secret(DOCKERCONFIGJSON, &data(&huge)).unwrap();
    assert_eq!(entries[0].credential, None);
    // Valid base64 of bytes that are not UTF-8, or with no `:`.
    assert_eq!(decode_auth(&STANDARD.encode([0xff, 0xfe, b':'])), None);
    assert_eq!(decode_auth(&STANDARD.encode("nocolon")), None);
}
