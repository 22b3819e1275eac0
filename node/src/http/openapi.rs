//! The OpenAPI 3.1 document of the HTTP API, derived from the handlers'
//! `#[utoipa::path]` attributes and their DTOs, and checked in as
//! `docs/openapi.json` (the tests below keep the two, and the route table,
//! in step).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api_keys, cluster, kv, master_key, problem, sessions, signing_keys, tenants, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cairn",
        description = "A clustered, encrypted identity store: tenants, users, sessions, \
                       tokens and tenant key-value, over HTTP (this document) and gRPC \
                       (`proto/cairn/v1`). Errors are `application/problem+json` with a \
                       stable `code`; every answer carries `x-request-id`."
    ),
    paths(
        cluster::healthz,
        cluster::readyz,
        cluster::status,
        cluster::init,
        cluster::compact,
        cluster::set_wire_version,
        cluster::partition,
        tenants::list,
        tenants::create,
        tenants::get,
        tenants::update,
        tenants::delete,
        tenants::rotate_key,
        api_keys::create,
        api_keys::revoke,
        signing_keys::rotate,
        signing_keys::jwks,
        master_key::view,
        master_key::stage,
        master_key::rotate,
        users::create,
        users::get,
        users::lookup,
        users::list,
        users::update,
        users::delete,
        sessions::list,
        sessions::sign_in,
        sessions::refresh,
        sessions::revoke,
        sessions::revoke_all,
        sessions::introspect,
        kv::get,
        kv::put,
        kv::delete,
    ),
    components(schemas(problem::Problem)),
    modifiers(&Credentials)
)]
struct ApiDoc;

/// The two kinds of bearer credentials.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(what))
                    .build(),
            )
        };
        components.add_security_scheme(
            "operator",
            bearer("The cluster's admin token (`admin_token_file`)."),
        );
        components.add_security_scheme(
            "api_key",
            bearer("A tenant API key (`ck_…`): it names the tenant and carries scopes."),
        );
    }
}

/// The document as checked in: pretty JSON, one trailing newline.
#[must_use]
pub fn openapi_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `docs/openapi.json` of this checkout: the runtime `CARGO_MANIFEST_DIR`
    /// (cargo sets it for test runs), so a binary built from another checkout
    /// sharing the target dir still reads this one.
    fn checked_in() -> std::path::PathBuf {
        std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(
                || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
                std::path::PathBuf::from,
            )
            .join("../docs/openapi.json")
    }

    /// `docs/openapi.json` is what the code generates. After a change to the
    /// API, regenerate it with `CAIRN_OPENAPI_BLESS=1 cargo test --workspace
    /// --lib openapi` and review the diff.
    #[test]
    fn the_checked_in_document_is_the_generated_one() {
        let generated = openapi_json();
        assert!(generated.contains("\"openapi\": \"3.1.0\""), "{generated}");
        if std::env::var_os("CAIRN_OPENAPI_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(checked_in(), &generated).expect("write docs/openapi.json");
            return;
        }
        let checked_in = std::fs::read_to_string(checked_in()).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/openapi.json differs from the generated document: regenerate it with \
             CAIRN_OPENAPI_BLESS=1 cargo test --workspace --lib openapi"
        );
    }

    /// Every route in the route table has a documented operation, and every
    /// documented operation a route.
    #[test]
    fn every_route_is_documented_and_every_documented_operation_is_routed() {
        let routed: BTreeSet<(String, String)> = crate::http::routes()
            .iter()
            .map(|r| (r.method.as_str().to_owned(), r.path.replace("{*", "{")))
            .collect();
        let doc = ApiDoc::openapi();
        let mut documented = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ] {
                if op.is_some() {
                    documented.insert((method.to_owned(), path.clone()));
                }
            }
        }
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routes without a documented operation: {undocumented:?}; \
             documented operations without a route: {unrouted:?}"
        );
        assert_eq!(routed.len(), crate::http::routes().len(), "a route twice");
    }
}
