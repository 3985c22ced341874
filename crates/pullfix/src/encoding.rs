//! Encodings used in more than one place, each written once: percent
//! encoding for URLs and forms (the `percent-encoding` crate), SHA-256
//! digests in the registry's `sha256:<hex>` form, and Go's names for JSON
//! kinds (the kubelet's and the API server's error messages).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment or query value (`type=a/b` →
/// `type%3Da%2Fb`), uppercase hex.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Decodes `%XX` escapes; malformed escapes stay as written and bytes that
/// are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Decodes an `application/x-www-form-urlencoded` value or a query string
/// value: `+` is a space, then `%XX` escapes (so `%2B` stays a `+`).
pub fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// SHA-256 as lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A content digest as registries write it: `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Go's name for a JSON value's kind, as `encoding/json` and the API
/// server write it in errors (`json: cannot unmarshal array into …`).
pub fn go_json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!(
            percent_encode("type=kubernetes.io/dockerconfigjson"),
            "type%3Dkubernetes.io%2Fdockerconfigjson"
        );
        assert_eq!(percent_encode("a b~c_d-e"), "a%20b~c_d-e");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(form_decode("a+b%2Bc"), "a b+c");
        assert_eq!(form_decode("%+1"), "% 1");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn digests() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha256_hex(b"abc").len(), 64);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn percent_round_trips(s in "\\PC{0,60}") {
                let enc = percent_encode(&s);
                prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
                prop_assert_eq!(percent_decode(&enc), s.clone());
                prop_assert_eq!(form_decode(&enc), s);
            }

            #[test]
            fn decoding_never_panics(s in "[%+0-9a-fA-FzZ\\PC]{0,60}") {
                let _ = percent_decode(&s);
                let _ = form_decode(&s);
            }
        }
    }
}
