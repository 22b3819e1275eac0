//! Ids of records that live in a data group: `<prefix>_<group>_<128-bit hex>`,
//! so any node routes a request for one without a lookup (see `routing`).

use cairn_cluster_config::GroupId;

/// A new id for a record living in `group`.
#[must_use]
pub fn new_id(prefix: &str, group: GroupId) -> String {
    format!("{prefix}_{}_{}", group.0, cairn_crypto::random_hex(16))
}
