//! Tenant API keys: issued (shown once, only the hash is stored) and revoked by
//! the operator. Authenticating a key is `core`'s (it makes the `Caller`).

use cairn_cluster_config::META_GROUP;
use cairn_storage::sm::api_keys::{AddApiKey, AddApiKeyOutcome, RevokeApiKey, RevokeApiKeyOutcome};

use super::core::{new_api_key, Call, Core, Scope};
use crate::error::ServiceError;

/// A new API key, shown once.
pub struct IssuedApiKey {
    pub id: String,
    pub api_key: String,
    pub scopes: Vec<Scope>,
    pub created_at: u64,
}

impl std::fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("id", &self.id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Scope names as given by a caller: validated, sorted, deduplicated.
///
/// # Errors
/// Empty, or an unknown scope name.
pub fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, ServiceError> {
    if names.is_empty() {
        return Err(ServiceError::InvalidRequest(
            "scopes must name at least one of read, write, manage, delete, client_info".to_owned(),
        ));
    }
    let mut scopes = names
        .iter()
        .map(|n| {
            Scope::parse(n).ok_or_else(|| {
                ServiceError::InvalidRequest(format!(
                    "unknown scope {n:?}; scopes are read, write, manage, delete, client_info"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// The operator's API key administration.
#[derive(Clone)]
pub struct ApiKeyService {
    core: Core,
}

impl ApiKeyService {
    #[must_use]
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    /// Issues a new API key for tenant `tenant_id` (operator).
    ///
    /// # Errors
    /// Not the operator, unknown tenant, bad scopes, `meta` unavailable.
    pub async fn create(
        &self,
        call: &Call,
        tenant_id: &str,
        scopes: &[String],
    ) -> Result<IssuedApiKey, ServiceError> {
        call.operator()?;
        let scopes = parse_scopes(scopes)?;
        for _ in 0..3 {
            let (key, record) = new_api_key(tenant_id, &scopes);
            let created_at = record.created_at;
            match self.core.write(call, META_GROUP, AddApiKey(record)).await? {
                AddApiKeyOutcome::ApiKeyAdded => {
                    tracing::info!(tenant_id, key_id = key.id(), "api key issued");
                    return Ok(IssuedApiKey {
                        id: key.id().to_owned(),
                        api_key: key.encode().to_string(),
                        scopes,
                        created_at,
                    });
                }
                AddApiKeyOutcome::TenantNotFound => return Err(ServiceError::TenantNotFound),
                AddApiKeyOutcome::IdCollision => {}
            }
        }
        Err(ServiceError::Internal)
    }

    /// Revokes an API key of tenant `tenant_id` (operator).
    ///
    /// # Errors
    /// Not the operator, no such key for this tenant, `meta` unavailable.
    pub async fn revoke(
        &self,
        call: &Call,
        tenant_id: &str,
        key_id: &str,
    ) -> Result<(), ServiceError> {
        call.operator()?;
        let cmd = RevokeApiKey {
            tenant_id: tenant_id.to_owned(),
            key_id: key_id.to_owned(),
        };
        match self.core.write(call, META_GROUP, cmd).await? {
            RevokeApiKeyOutcome::ApiKeyRevoked => {
                tracing::info!(tenant_id, key_id, "api key revoked");
                Ok(())
            }
            RevokeApiKeyOutcome::ApiKeyNotFound => Err(ServiceError::ApiKeyNotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_sorted_and_deduplicated() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_scopes(&names(&["write", "read", "write"])).expect("valid"),
            vec![Scope::Read, Scope::Write]
        );
        assert!(parse_scopes(&[]).is_err());
        assert!(parse_scopes(&names(&["read", "admin"])).is_err());
    }
}
