//! Fuzz target `request_body`: every HTTP route's JSON request body, decoded by
//! the node's own extractor (`cairn_node::fuzzing::decode_request_body`: the
//! router's body limit, then `StrictJson`), on any bytes.
//!
//! Input: the first byte picks the route body type (modulo [`ROUTES`]), the
//! rest is the body.
//!
//! Properties:
//! - Decoding never panics, and a refusal is a problem document with 413
//!   `payload_too_large` exactly when the body exceeds `MAX_BODY_BYTES`, else
//!   400 `invalid_request` (never a 5xx).
//! - An accepted body is at most `MAX_BODY_BYTES`, UTF-8, and one JSON object
//!   whose fields are all the route's (the DTOs use `deny_unknown_fields`).
//! - Re-serialised from its `serde_json::Value`, an accepted body is the same
//!   value and is accepted again; with one field no DTO has added, refused.

use cairn_node::fuzzing::{decode_request_body, RequestBody, MAX_BODY_BYTES};
use serde_json::Value;

/// One route's body type: the route (for seed names), the fields its DTO
/// has (restated from `node/src/http/<feature>.rs`, as the oracle for unknown
/// fields), and a valid body naming every one of them.
pub struct Route {
    pub body: RequestBody,
    pub name: &'static str,
    pub fields: &'static [&'static str],
    pub example: &'static str,
}

/// Every route that takes a JSON body.
pub const ROUTES: &[Route] = &[
    Route {
        body: RequestBody::CreateTenant,
        name: "tenants_create",
        fields: &[
            "name",
            "region",
            "session_idle_timeout_secs",
            "session_absolute_timeout_secs",
        ],
        example: r#"{"name":"acme-1.eu_west","region":"eu","session_idle_timeout_secs":3600,"session_absolute_timeout_secs":86400}"#,
    },
    Route {
        body: RequestBody::UpdateTenant,
        name: "tenants_update",
        fields: &["session_idle_timeout_secs", "session_absolute_timeout_secs"],
        example: r#"{"session_idle_timeout_secs":600,"session_absolute_timeout_secs":null}"#,
    },
    Route {
        body: RequestBody::RotateTenantKey,
        name: "tenants_rotate_key",
        fields: &["tenant"],
        example: r#"{"tenant":"acme"}"#,
    },
    Route {
        body: RequestBody::CreateApiKey,
        name: "api_keys_create",
        fields: &["scopes"],
        example: r#"{"scopes":["read","write","manage","delete"]}"#,
    },
    Route {
        body: RequestBody::CreateUser,
        name: "users_create",
        fields: &["email", "password", "region"],
        example: r#"{"email":"ada@example.com","password":"correct horse battery","region":"eu"}"#,
    },
    Route {
        body: RequestBody::UpdateUser,
        name: "users_update",
        fields: &["email", "password"],
        example: r#"{"email":"ada.l@example.com","password":"\u00e9t\u00e9 2024 !"}"#,
    },
    Route {
        body: RequestBody::SignIn,
        name: "sessions_sign_in",
        fields: &["email", "password"],
        example: r#"{"email":"ada@example.com","password":"correct horse battery"}"#,
    },
    Route {
        body: RequestBody::Refresh,
        name: "sessions_refresh",
        fields: &["refresh_token"],
        example: r#"{"refresh_token":"crt_0123456789abcdef0123456789abcdef_B0bB0bB0bB0bB0bB0bB0bB0bB0bB0bB0bB0bB0bB0bB"}"#,
    },
    Route {
        body: RequestBody::Introspect,
        name: "sessions_introspect",
        fields: &["token", "token_type_hint"],
        example: r#"{"token":"eyJhbGciOiJFZERTQSJ9.e30.c2ln","token_type_hint":"access_token"}"#,
    },
    Route {
        body: RequestBody::KvPut,
        name: "kv_put",
        fields: &["value", "expected_revision"],
        example: r#"{"value":"hello\n\"world\"","expected_revision":0}"#,
    },
    Route {
        body: RequestBody::StageMasterKey,
        name: "master_key_stage",
        fields: &["key_file"],
        example: r#"{"key_file":"/etc/cairn/master-2.key"}"#,
    },
    Route {
        body: RequestBody::RotateMasterKey,
        name: "master_key_rotate",
        fields: &["fingerprint"],
        example: r#"{"fingerprint":"sha256:0f1e2d3c4b5a6978"}"#,
    },
    Route {
        body: RequestBody::Partition,
        name: "cluster_partition",
        fields: &["blocked"],
        example: r#"{"blocked":[2,3]}"#,
    },
];

/// A field no route's DTO has.
const UNKNOWN_FIELD: &str = "cairn_fuzz_unknown";

/// Checks every property for one input; panics on the first that fails.
///
/// # Panics
/// When a property fails (that is the finding).
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    check(&ROUTES[usize::from(selector) % ROUTES.len()], body);
}

/// The properties for one route and body.
///
/// # Panics
/// When a property fails.
pub fn check(route: &Route, body: &[u8]) {
    let name = route.name;
    if let Err(refusal) = decode_request_body(route.body, body.to_vec()) {
        let want = if body.len() > MAX_BODY_BYTES {
            (413, "payload_too_large")
        } else {
            (400, "invalid_request")
        };
        assert_eq!(
            (refusal.0, refusal.1.as_str()),
            want,
            "{name}: refused with another problem"
        );
        return;
    }
    assert!(
        body.len() <= MAX_BODY_BYTES,
        "{name}: an oversized body accepted"
    );
    assert!(
        std::str::from_utf8(body).is_ok(),
        "{name}: a body that is not UTF-8 accepted"
    );
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{name}: an accepted body is not JSON: {e}"));
    let Value::Object(object) = &value else {
        panic!("{name}: a body that is not a JSON object accepted");
    };
    for field in object.keys() {
        assert!(
            route.fields.contains(&field.as_str()),
            "{name}: the unknown field {field:?} accepted"
        );
    }

    let again = serde_json::to_vec(&value).expect("a JSON value serialises");
    assert_eq!(
        serde_json::from_slice::<Value>(&again).ok().as_ref(),
        Some(&value),
        "{name}: re-serialised, another value"
    );
    assert_eq!(
        decode_request_body(route.body, again),
        Ok(()),
        "{name}: re-serialised, refused"
    );

    let mut extra = object.clone();
    extra.insert(UNKNOWN_FIELD.to_owned(), Value::Null);
    let extra = serde_json::to_vec(&Value::Object(extra)).expect("a JSON value serialises");
    assert_eq!(
        decode_request_body(route.body, extra),
        Err((400, "invalid_request".to_owned())),
        "{name}: an unknown field not refused"
    );
}

/// The JSON syntax and every route's field names, for libFuzzer's dictionary.
#[must_use]
pub fn dict() -> Vec<Vec<u8>> {
    let mut words: Vec<String> = ["{", "}", "[", "]", ":", ",", "null", "true", "false", "\\u"]
        .iter()
        .map(|&w| w.to_owned())
        .collect();
    for route in ROUTES {
        for field in route.fields {
            let word = format!("\"{field}\"");
            if !words.contains(&word) {
                words.push(word);
            }
        }
    }
    words.into_iter().map(String::into_bytes).collect()
}

/// One valid body per route (every field named), behind its selector byte.
#[must_use]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    ROUTES
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let selector = u8::try_from(i).expect("fewer than 256 routes");
            let mut data = vec![selector];
            data.extend_from_slice(route.example.as_bytes());
            (route.name.to_owned(), data)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(route: &Route, body: Vec<u8>) -> (u16, String) {
        decode_request_body(route.body, body).expect_err(route.name)
    }

    #[test]
    fn every_route_body_is_listed_once_with_an_example_of_every_field() {
        for kind in RequestBody::ALL {
            assert_eq!(
                ROUTES.iter().filter(|r| r.body == kind).count(),
                1,
                "{kind:?}"
            );
        }
        for route in ROUTES {
            assert_eq!(
                decode_request_body(route.body, route.example.as_bytes().to_vec()),
                Ok(()),
                "{}",
                route.name
            );
            // Each listed field is one the DTO has: the example names them
            // all and is accepted, and refuses a field the DTO lacks.
            let example: Value = serde_json::from_str(route.example).expect(route.name);
            let mut named: Vec<&str> = example
                .as_object()
                .expect(route.name)
                .keys()
                .map(String::as_str)
                .collect();
            named.sort_unstable();
            let mut fields = route.fields.to_vec();
            fields.sort_unstable();
            assert_eq!(named, fields, "{}", route.name);
        }
    }

    #[test]
    fn the_body_limit_is_the_servers_and_over_it_is_413() {
        for route in ROUTES {
            let padded = |len: usize| {
                let mut body = route.example.as_bytes().to_vec();
                body.resize(len, b' ');
                body
            };
            assert_eq!(
                decode_request_body(route.body, padded(MAX_BODY_BYTES)),
                Ok(()),
                "{}: a body of exactly the limit",
                route.name
            );
            assert_eq!(
                refused(route, padded(MAX_BODY_BYTES + 1)),
                (413, "payload_too_large".to_owned()),
                "{}",
                route.name
            );
            check(route, &padded(MAX_BODY_BYTES + 1));
        }
    }

    #[test]
    fn non_utf8_non_objects_and_unknown_fields_are_400() {
        let bad = (400, "invalid_request".to_owned());
        for route in ROUTES {
            let example: Value = serde_json::from_str(route.example).expect(route.name);
            let object = example.as_object().expect(route.name);
            // The example's values in field order: what serde's derived
            // `Deserialize` would take from a JSON array.
            let array = Value::Array(object.values().cloned().collect());
            let mut non_utf8 = route.example.as_bytes().to_vec();
            let quote = non_utf8.iter().rposition(|&b| b == b'"').expect("a string");
            non_utf8.insert(quote, 0xff);
            let mut unknown = object.clone();
            unknown.insert(UNKNOWN_FIELD.to_owned(), Value::Bool(true));
            for body in [
                serde_json::to_vec(&array).expect("serialises"),
                b"null".to_vec(),
                b"\"text\"".to_vec(),
                b"7".to_vec(),
                Vec::new(),
                non_utf8,
                serde_json::to_vec(&unknown).expect("serialises"),
                format!("{} {{}}", route.example).into_bytes(),
            ] {
                assert_eq!(refused(route, body.clone()), bad, "{}", route.name);
                check(route, &body);
            }
        }
    }
}
