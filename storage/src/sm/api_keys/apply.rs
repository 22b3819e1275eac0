//! Applying API key commands.

use super::{read, AddApiKey, AddApiKeyOutcome, ApiKeyRecord, RevokeApiKey, RevokeApiKeyOutcome};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{api_key_key, tenant_api_key_key, tenant_key};
use crate::sm::events::{Action, Applied, Event};
use crate::Result;

/// Stores `key` and its tenant index row (the caller checked tenant and id).
///
/// # Errors
/// The record cannot be encoded (a missing column family).
pub fn put(batch: &mut ApplyBatch<'_>, key: &ApiKeyRecord) -> Result<()> {
    let group = batch.group();
    batch.put_record("api key", api_key_key(group, key.id.as_bytes()), key)?;
    batch.put(
        tenant_api_key_key(group, &key.tenant_id, &key.id),
        Vec::new(),
    )
}

/// Applies an [`AddApiKey`].
///
/// # Errors
/// Reading current state failed.
pub fn add(batch: &mut ApplyBatch<'_>, cmd: &AddApiKey) -> Result<Applied<AddApiKeyOutcome>> {
    let record = &cmd.0;
    if !batch.contains(&tenant_key(batch.group(), &record.tenant_id))? {
        return Ok(Applied::quiet(AddApiKeyOutcome::TenantNotFound));
    }
    if read::exists(batch, &record.id)? {
        return Ok(Applied::quiet(AddApiKeyOutcome::IdCollision));
    }
    put(batch, record)?;
    let event = Event::new(Action::ApiKeyCreated, &record.tenant_id)
        .at(record.created_at)
        .key(&record.id);
    Ok(Applied::with(AddApiKeyOutcome::ApiKeyAdded, event))
}

/// Applies a [`RevokeApiKey`]: another tenant's key is "not found" for this one.
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn revoke(
    batch: &mut ApplyBatch<'_>,
    cmd: &RevokeApiKey,
) -> Result<Applied<RevokeApiKeyOutcome>> {
    let group = batch.group();
    match read::get(batch, &cmd.key_id)? {
        Some(k) if k.tenant_id == cmd.tenant_id => {
            batch.delete(api_key_key(group, cmd.key_id.as_bytes()))?;
            batch.delete(tenant_api_key_key(group, &cmd.tenant_id, &cmd.key_id))?;
            let event = Event::new(Action::ApiKeyRevoked, &cmd.tenant_id).key(&cmd.key_id);
            Ok(Applied::with(RevokeApiKeyOutcome::ApiKeyRevoked, event))
        }
        _ => Ok(Applied::quiet(RevokeApiKeyOutcome::ApiKeyNotFound)),
    }
}
