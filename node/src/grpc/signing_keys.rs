//! The `signing_keys` rpcs of `cairn.v1.TenantAdmin` (`RotateSigningKey`,
//! `GetJwks`; the service is served by `tenants`).

use tonic::Request;

use super::{answer, call, proto, Rpc};
use crate::service::signing_keys::Jwks;
use crate::service::{Access, Services};

/// A JWKS from its JSON keys (`cairn_crypto::jwt::jwk`).
impl From<Jwks> for proto::Jwks {
    fn from(j: Jwks) -> Self {
        let field =
            |k: &serde_json::Value, name: &str| k[name].as_str().unwrap_or_default().to_owned();
        Self {
            keys: j
                .keys
                .iter()
                .map(|k| proto::Jwk {
                    kty: field(k, "kty"),
                    crv: field(k, "crv"),
                    x: field(k, "x"),
                    kid: field(k, "kid"),
                    alg: field(k, "alg"),
                    r#use: field(k, "use"),
                })
                .collect(),
        }
    }
}

pub(super) async fn rotate(
    services: &Services,
    req: Request<proto::RotateSigningKeyRequest>,
) -> Rpc<proto::Jwks> {
    let call = call(services, &req, Access::Operator).await?;
    let r = req.into_inner();
    answer(
        services.signing_keys.rotate(&call, &r.tenant_id).await,
        Into::into,
    )
}

pub(super) async fn jwks(
    services: &Services,
    req: Request<proto::GetJwksRequest>,
) -> Rpc<proto::Jwks> {
    let call = call(services, &req, Access::Public).await?;
    let r = req.into_inner();
    answer(
        services.signing_keys.jwks(&call, &r.tenant_id).await,
        Into::into,
    )
}
