//! Every row tag and key builder, in one table (drawn in `docs/on-disk-layout.md`).
//! All integers are big-endian so that RocksDB's bytewise order is numeric order
//! and each group's rows form one contiguous range. The state machine's features
//! find each other's rows here (a tenant's deletion removes its API keys' rows),
//! never through each other's modules.
//!
//! ```text
//! cf raft_log   [group u64][index u64]                      -> entry (bincode)
//! cf raft_state [group u64][tag u8]                         -> vote | committed | purged
//! cf sm         [group u64][0x01]                           -> applied state (bincode)
//!               [group u64][0x10][len u16][tenant id][key]  -> KvRecord (bincode)
//!               [group u64][0x20][tenant id]                -> TenantRecord (meta)
//!               [group u64][0x21][tenant name]              -> tenant id (meta)
//!               [group u64][0x22]                           -> MasterKeyState (meta)
//!               [group u64][0x23][api key id]               -> ApiKeyRecord (meta)
//!               [group u64][0x24][t][api key id]            -> () tenant's API keys (meta)
//!               [group u64][0x25][t][email blind index]     -> EmailEntry (meta)
//!               [group u64][0x26][t]                        -> SigningKeys (meta)
//!               [group u64][0x27]                           -> cluster wire version u32 (meta)
//!               [group u64][0x28][tenant id]                -> TenantSettings (meta, wire v3)
//!               [group u64][0x29][t][email index][user id]  -> EmailEntry: another holder (meta, wire v4)
//!               [group u64][0x2a][t][group u64]             -> () emails re-indexed in that group (meta, wire v4)
//!               [group u64][0x30][t][user id]               -> UserRecord (data)
//!               [group u64][0x31][t][session id]            -> SessionRecord (data)
//!               [group u64][0x32][t][user id][session id]   -> () user's sessions (data)
//!               [group u64][0x33][t][sequence u64][n u32]   -> AuditEvent (data, wire v1)
//!               [group u64][0x34][t][sequence u64][n u32]   -> EventRecord (meta + data, wire v2)
//!               [group u64][0x35][t][bucket kind u8][id]    -> rate limit state u64 (data, wire v3)
//!               [group u64][0x36][expires u64][0x35 row]    -> () rate limit expiry (data, wire v3)
//!               [group u64][0x37][t][user id]               -> FailedSignIns (data, wire v3)
//!   where [t] = [len u16][tenant id], and every part but the last is length-prefixed
//! cf snapshot   [group u64]                                 -> current snapshot (meta + data)
//! cf node       "identity"                                  -> NodeIdentity (bincode)
//!               "staged-master-key-file"                    -> [path] (bincode)
//!               "admission", "admission-aware"              -> cluster id, marker
//! ```

pub const CF_LOG: &str = "raft_log";
pub const CF_STATE: &str = "raft_state";
pub const CF_SM: &str = "sm";
pub const CF_SNAPSHOT: &str = "snapshot";
pub const CF_NODE: &str = "node";
pub const ALL_CFS: [&str; 5] = [CF_LOG, CF_STATE, CF_SM, CF_SNAPSHOT, CF_NODE];

/// `node` column family: who the data dir belongs to.
pub const IDENTITY_KEY: &[u8] = b"identity";
/// `node` column family: master key files staged by rotations (paths only).
pub const STAGED_KEK_KEY: &[u8] = b"staged-master-key-file";
/// `node` column family: the cluster id `cairn init` admitted the data dir with.
pub const ADMISSION_KEY: &[u8] = b"admission";
/// `node` column family: marks a data dir created by a version that records
/// admissions.
pub const ADMISSION_AWARE_KEY: &[u8] = b"admission-aware";

pub const SM_APPLIED: u8 = 0x01;
pub const SM_KV: u8 = 0x10;
/// `meta` group: tenant id -> tenant record (name, wrapped data keys).
pub const SM_TENANT: u8 = 0x20;
/// `meta` group: tenant name -> tenant id.
pub const SM_TENANT_NAME: u8 = 0x21;
/// `meta` group: the current master key and its history.
pub const SM_MASTER: u8 = 0x22;

/// `meta` group: API key id -> API key record (hash, scopes, tenant).
pub const SM_API_KEY: u8 = 0x23;
/// `meta` group: (tenant, API key id) -> () — a tenant's keys, for deletion.
pub const SM_TENANT_API_KEY: u8 = 0x24;
/// `meta` group: (tenant, blind index of an email) -> user id and region.
pub const SM_EMAIL: u8 = 0x25;
/// `meta` group: tenant -> its token signing keys.
pub const SM_SIGNING: u8 = 0x26;
/// `meta` group: the wire version the cluster speaks (absent: 1).
pub const SM_WIRE_VERSION: u8 = 0x27;
/// `meta` group: tenant id -> its settings (beyond session lifetimes).
pub const SM_TENANT_SETTINGS: u8 = 0x28;
/// `meta` group: (tenant, email blind index, user id) -> where that user lives:
/// a further holder of an email that two users held apart under the earlier
/// email rules (the email is ambiguous while there is one).
pub const SM_EMAIL_OTHER: u8 = 0x29;
/// `meta` group: (tenant, data group) -> () — that group's users of the tenant
/// are indexed under the current email rules.
pub const SM_EMAILS_REINDEXED: u8 = 0x2a;
/// Data groups: (tenant, bucket kind, bucket id) -> the bucket's state, 8 bytes.
pub const SM_RATE: u8 = 0x35;
/// Data groups: (expiry, rate row) -> () — rate rows in the order they expire.
pub const SM_RATE_EXPIRY: u8 = 0x36;
/// Data groups: (tenant, user id) -> the user's failed sign-ins.
pub const SM_FAILED_SIGN_IN: u8 = 0x37;
/// Data groups: (tenant, user id) -> user record.
pub const SM_USER: u8 = 0x30;
/// Data groups: (tenant, session id) -> session record.
pub const SM_SESSION: u8 = 0x31;
/// Data groups: (tenant, user id, session id) -> () — a user's sessions.
pub const SM_USER_SESSION: u8 = 0x32;
/// Data groups: (tenant, command sequence number, n) -> audit event of an
/// untraced command (wire version 1).
pub const SM_AUDIT: u8 = 0x33;
/// Every group: (tenant, command sequence number, n) -> the event record of a
/// traced command (wire version 2): actor, request id, client IP.
pub const SM_EVENT: u8 = 0x34;

/// Longest tenant name the KV keyspace can encode (length is a u16).
pub const MAX_TENANT_LEN: usize = u16::MAX as usize;

#[must_use]
pub fn group_prefix(group: u64) -> [u8; 8] {
    group.to_be_bytes()
}

#[must_use]
pub fn log_key(group: u64, index: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&group.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

/// A key greater than every `[group][index u64]` log key of `group` and smaller
/// than any key of the next group: the exclusive end of the group's log range.
#[must_use]
pub fn log_end(group: u64) -> Vec<u8> {
    let mut k = log_key(group, u64::MAX).to_vec();
    k.push(0);
    k
}

/// Decodes the index of a `raft_log` key.
#[must_use]
pub fn log_index(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

#[must_use]
pub fn state_key(group: u64, tag: u8) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&group.to_be_bytes());
    k[8] = tag;
    k
}

/// First key of a group's state machine rows.
#[must_use]
pub fn sm_start(group: u64) -> Vec<u8> {
    group_prefix(group).to_vec()
}

/// One past the last key of a group's state machine rows (next group's prefix, or
/// the prefix followed by 0xff.. for the largest group id).
#[must_use]
pub fn sm_end(group: u64) -> Vec<u8> {
    match group.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => {
            let mut k = group.to_be_bytes().to_vec();
            k.extend_from_slice(&[0xff; 8]);
            k
        }
    }
}

/// A state machine row key: `[group][tag][suffix]`.
#[must_use]
pub fn row_key(group: u64, tag: u8, suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + suffix.len());
    k.extend_from_slice(&group.to_be_bytes());
    k.push(tag);
    k.extend_from_slice(suffix);
    k
}

/// The smallest key greater than every key starting with `prefix` (`None` if the
/// prefix is all 0xff: no upper bound).
#[must_use]
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Tenant KV key: the tenant's namespace is length-prefixed, so no tenant's keys
/// can be a prefix-extension of another tenant's.
///
/// # Panics
/// Never for tenants of at most [`MAX_TENANT_LEN`] bytes, which callers validate.
#[must_use]
pub fn kv_key(group: u64, tenant: &str, key: &[u8]) -> Vec<u8> {
    let len = u16::try_from(tenant.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(8 + 1 + 2 + tenant.len() + key.len());
    k.extend_from_slice(&group.to_be_bytes());
    k.push(SM_KV);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(&tenant.as_bytes()[..usize::from(len)]);
    k.extend_from_slice(key);
    k
}

/// A tenant-scoped row key: `[group][tag][len u16][tenant][parts…]`, every part but
/// the last prefixed with its u16 length, so no tenant's or part's rows can be a
/// prefix-extension of another's. With `parts` empty: the prefix of all of the
/// tenant's rows under `tag`.
#[must_use]
pub fn tenant_row(group: u64, tag: u8, tenant: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(
        8 + 1 + 2 + tenant.len() + parts.iter().map(|p| 2 + p.len()).sum::<usize>(),
    );
    k.extend_from_slice(&group.to_be_bytes());
    k.push(tag);
    push_part(&mut k, tenant.as_bytes());
    if let Some((last, init)) = parts.split_last() {
        for p in init {
            push_part(&mut k, p);
        }
        k.extend_from_slice(last);
    }
    k
}

fn push_part(k: &mut Vec<u8>, part: &[u8]) {
    let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(&part[..usize::from(len)]);
}

// The rows of each feature: one builder per row kind.

/// `meta`: tenant id -> tenant record.
#[must_use]
pub fn tenant_key(group: u64, tenant_id: &str) -> Vec<u8> {
    row_key(group, SM_TENANT, tenant_id.as_bytes())
}

/// `meta`: the prefix of every tenant record.
#[must_use]
pub fn tenants_prefix(group: u64) -> Vec<u8> {
    row_key(group, SM_TENANT, b"")
}

/// `meta`: tenant name -> tenant id.
#[must_use]
pub fn tenant_name_key(group: u64, name: &str) -> Vec<u8> {
    row_key(group, SM_TENANT_NAME, name.as_bytes())
}

/// `meta`: the master key state.
#[must_use]
pub fn master_key(group: u64) -> Vec<u8> {
    row_key(group, SM_MASTER, b"")
}

/// `meta`: API key id -> API key record.
#[must_use]
pub fn api_key_key(group: u64, key_id: &[u8]) -> Vec<u8> {
    row_key(group, SM_API_KEY, key_id)
}

/// `meta`: (tenant, API key id) -> () — the index of a tenant's API keys.
#[must_use]
pub fn tenant_api_key_key(group: u64, tenant_id: &str, key_id: &str) -> Vec<u8> {
    tenant_row(group, SM_TENANT_API_KEY, tenant_id, &[key_id.as_bytes()])
}

/// `meta`: the prefix of a tenant's API key index rows (the key id follows it).
#[must_use]
pub fn tenant_api_keys_prefix(group: u64, tenant_id: &str) -> Vec<u8> {
    tenant_row(group, SM_TENANT_API_KEY, tenant_id, &[])
}

/// `meta`: (tenant, email blind index) -> email entry.
#[must_use]
pub fn email_key(group: u64, tenant_id: &str, index: &[u8]) -> Vec<u8> {
    tenant_row(group, SM_EMAIL, tenant_id, &[index])
}

/// `meta`: a further holder of an email's blind index.
#[must_use]
pub fn email_other_key(group: u64, tenant_id: &str, index: &[u8], user_id: &str) -> Vec<u8> {
    tenant_row(
        group,
        SM_EMAIL_OTHER,
        tenant_id,
        &[index, user_id.as_bytes()],
    )
}

/// `meta`: the prefix of the further holders of an email's blind index.
#[must_use]
pub fn email_others_prefix(group: u64, tenant_id: &str, index: &[u8]) -> Vec<u8> {
    tenant_row(group, SM_EMAIL_OTHER, tenant_id, &[index, b""])
}

/// `meta`: the prefixes of a tenant's email rows (the index, further holders,
/// re-indexed groups), which its deletion removes.
#[must_use]
pub fn tenant_email_prefixes(group: u64, tenant_id: &str) -> [Vec<u8>; 3] {
    [
        tenant_row(group, SM_EMAIL, tenant_id, &[]),
        tenant_row(group, SM_EMAIL_OTHER, tenant_id, &[]),
        tenant_row(group, SM_EMAILS_REINDEXED, tenant_id, &[]),
    ]
}

/// `meta`: marks a data group's users of a tenant as indexed under the current
/// email rules.
#[must_use]
pub fn emails_reindexed_key(group: u64, tenant_id: &str, data_group: u64) -> Vec<u8> {
    tenant_row(
        group,
        SM_EMAILS_REINDEXED,
        tenant_id,
        &[&data_group.to_be_bytes()],
    )
}

/// `meta`: the prefix of a tenant's re-indexed markers.
#[must_use]
pub fn emails_reindexed_prefix(group: u64, tenant_id: &str) -> Vec<u8> {
    tenant_row(group, SM_EMAILS_REINDEXED, tenant_id, &[])
}

/// `meta`: a tenant's signing keys.
#[must_use]
pub fn signing_key(group: u64, tenant_id: &str) -> Vec<u8> {
    tenant_row(group, SM_SIGNING, tenant_id, &[])
}

/// Data groups: (tenant, user id) -> user record.
#[must_use]
pub fn user_key(group: u64, tenant: &str, user_id: &str) -> Vec<u8> {
    tenant_row(group, SM_USER, tenant, &[user_id.as_bytes()])
}

/// Data groups: (tenant, session id) -> session record.
#[must_use]
pub fn session_key(group: u64, tenant: &str, session_id: &[u8]) -> Vec<u8> {
    tenant_row(group, SM_SESSION, tenant, &[session_id])
}

/// Data groups: (tenant, user id, session id) -> () — a user's sessions.
#[must_use]
pub fn user_session_key(group: u64, tenant: &str, user_id: &str, session_id: &str) -> Vec<u8> {
    tenant_row(
        group,
        SM_USER_SESSION,
        tenant,
        &[user_id.as_bytes(), session_id.as_bytes()],
    )
}

/// Data groups: the prefix of a user's session index rows (the session id
/// follows it).
#[must_use]
pub fn user_sessions_prefix(group: u64, tenant: &str, user_id: &str) -> Vec<u8> {
    tenant_row(group, SM_USER_SESSION, tenant, &[user_id.as_bytes(), b""])
}

/// Data groups: the prefix of a tenant's audit events.
#[must_use]
pub fn audit_prefix(group: u64, tenant: &str) -> Vec<u8> {
    tenant_row(group, SM_AUDIT, tenant, &[])
}

/// Data groups: audit event `n` of the command with sequence number `seq`: keyed
/// by sequence so events sort in log order.
#[must_use]
pub fn audit_key(group: u64, tenant: &str, seq: u64, n: u32) -> Vec<u8> {
    let mut key = audit_prefix(group, tenant);
    key.extend_from_slice(&seq.to_be_bytes());
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// The prefix of a tenant's event records in `group`.
#[must_use]
pub fn event_prefix(group: u64, tenant: &str) -> Vec<u8> {
    tenant_row(group, SM_EVENT, tenant, &[])
}

/// Event record `n` of the command with sequence number `seq` (as
/// [`audit_key`]).
#[must_use]
pub fn event_key(group: u64, tenant: &str, seq: u64, n: u32) -> Vec<u8> {
    let mut key = event_prefix(group, tenant);
    key.extend_from_slice(&seq.to_be_bytes());
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// `meta` group: a tenant's settings.
#[must_use]
pub fn tenant_settings_key(group: u64, tenant_id: &str) -> Vec<u8> {
    row_key(group, SM_TENANT_SETTINGS, tenant_id.as_bytes())
}

/// Data groups: a rate limit row of `tenant`: bucket `kind`, bucket `id`.
#[must_use]
pub fn rate_key(group: u64, tenant: &str, kind: u8, id: &[u8]) -> Vec<u8> {
    tenant_row(group, SM_RATE, tenant, &[&[kind], id])
}

/// Data groups: the expiry index entry of the rate row `row` (a full key).
#[must_use]
pub fn rate_expiry_key(group: u64, expires: u64, row: &[u8]) -> Vec<u8> {
    let mut suffix = Vec::with_capacity(8 + row.len());
    suffix.extend_from_slice(&expires.to_be_bytes());
    suffix.extend_from_slice(row);
    row_key(group, SM_RATE_EXPIRY, &suffix)
}

/// Data groups: the prefix of every rate expiry entry.
#[must_use]
pub fn rate_expiry_prefix(group: u64) -> Vec<u8> {
    row_key(group, SM_RATE_EXPIRY, &[])
}

/// Data groups: a user's failed sign-ins.
#[must_use]
pub fn failed_sign_in_key(group: u64, tenant: &str, user_id: &str) -> Vec<u8> {
    tenant_row(group, SM_FAILED_SIGN_IN, tenant, &[user_id.as_bytes()])
}

/// `meta` group: the cluster's wire version.
#[must_use]
pub fn wire_version_key(group: u64) -> Vec<u8> {
    row_key(group, SM_WIRE_VERSION, &[])
}

/// Every row prefix of a tenant in a data group (what purging a deleted tenant
/// removes): users, sessions, the session index, audit events and event
/// records, KV, rate limit state and failed sign-ins (their expiry entries go
/// as they expire).
#[must_use]
pub fn tenant_data_prefixes(group: u64, tenant: &str) -> [Vec<u8>; 8] {
    [
        tenant_row(group, SM_RATE, tenant, &[]),
        tenant_row(group, SM_FAILED_SIGN_IN, tenant, &[]),
        tenant_row(group, SM_USER, tenant, &[]),
        tenant_row(group, SM_SESSION, tenant, &[]),
        tenant_row(group, SM_USER_SESSION, tenant, &[]),
        audit_prefix(group, tenant),
        event_prefix(group, tenant),
        kv_key(group, tenant, b""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_numerically_and_stay_inside_their_group() {
        let mut keys = [
            log_key(1, 256),
            log_key(1, 1),
            log_key(0, u64::MAX),
            log_key(2, 0),
            log_key(1, 255),
        ];
        keys.sort();
        let decoded: Vec<_> = keys
            .iter()
            .map(|k| (k[..8].to_vec(), log_index(k)))
            .collect();
        assert_eq!(decoded[0].1, Some(u64::MAX));
        assert_eq!(decoded[1].1, Some(1));
        assert_eq!(decoded[2].1, Some(255));
        assert_eq!(decoded[3].1, Some(256));
        assert!(log_end(1).as_slice() > log_key(1, u64::MAX).as_slice());
        assert!(log_end(1).as_slice() < log_key(2, 0).as_slice());
    }

    #[test]
    fn prefix_end_bounds_exactly_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        let p = row_key(0, SM_TENANT, b"");
        let end = prefix_end(&p).expect("bounded");
        assert!(row_key(0, SM_TENANT, &[0xff; 40]) < end);
        assert!(row_key(0, SM_TENANT_NAME, b"") >= end);
    }

    #[test]
    fn tenant_rows_cannot_overlap() {
        assert_ne!(
            tenant_row(1, SM_USER, "ab", &[b"c"]),
            tenant_row(1, SM_USER, "a", &[b"bc"])
        );
        assert_ne!(
            tenant_row(1, SM_USER_SESSION, "t", &[b"u1", b"s"]),
            tenant_row(1, SM_USER_SESSION, "t", &[b"u", b"1s"])
        );
        let all = tenant_row(1, SM_USER_SESSION, "t", &[]);
        let user = tenant_row(1, SM_USER_SESSION, "t", &[b"u", b""]);
        assert!(user.starts_with(&all));
        assert!(tenant_row(1, SM_USER_SESSION, "t", &[b"u", b"s"]).starts_with(&user));
        assert!(!tenant_row(1, SM_USER_SESSION, "t", &[b"uu", b"s"]).starts_with(&user));
    }

    #[test]
    fn tenant_namespaces_cannot_overlap() {
        // "ab" + key "c" must differ from "a" + key "bc".
        assert_ne!(kv_key(1, "ab", b"c"), kv_key(1, "a", b"bc"));
        let k = kv_key(1, "t", b"k");
        assert!(k.as_slice() >= sm_start(1).as_slice() && k.as_slice() < sm_end(1).as_slice());
        assert!(sm_end(u64::MAX).as_slice() > kv_key(u64::MAX, "t", b"k").as_slice());
    }
}
