//! Reading tenant records.

use super::{TenantRecord, TenantRef, TenantSettings};
use crate::engine::Rows;
use crate::keyspace::{tenant_key, tenant_name_key, tenant_settings_key, tenants_prefix};
use crate::{codec, Result};

/// A tenant by id.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, tenant_id: &str) -> Result<Option<TenantRecord>> {
    rows.decode("tenant record", &tenant_key(rows.group(), tenant_id))
}

/// A tenant's settings (all unset if it never set one, or does not exist).
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn settings(rows: &impl Rows, tenant_id: &str) -> Result<TenantSettings> {
    Ok(rows
        .decode(
            "tenant settings",
            &tenant_settings_key(rows.group(), tenant_id),
        )?
        .unwrap_or_default())
}

/// A tenant by name or id.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn lookup(rows: &impl Rows, by: &TenantRef) -> Result<Option<TenantRecord>> {
    let id = match by {
        TenantRef::Id(id) => Some(id.clone()),
        TenantRef::Name(name) => rows
            .get(&tenant_name_key(rows.group(), name))?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
    };
    match id {
        Some(id) => get(rows, &id),
        None => Ok(None),
    }
}

/// Every tenant, ordered by id.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn list(rows: &impl Rows) -> Result<Vec<TenantRecord>> {
    rows.scan(&tenants_prefix(rows.group()))?
        .iter()
        .map(|(_, v)| codec::decode("tenant record", v))
        .collect()
}
