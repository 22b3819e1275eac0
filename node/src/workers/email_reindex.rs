//! Re-indexes the email index under the email identity rules
//! (`service::core::email`). Users created before wire version 4 are held under
//! the earlier key of their address; the leader of each data group walks its
//! users of every tenant, moves each one's index entry to the current key
//! (`ReindexEmail`, which shares a key another user already holds rather than
//! take it: the email becomes ambiguous), then marks the (tenant, group) done
//! (`MarkEmailsReindexed`). Lookups try both keys meanwhile. Addresses are read
//! and opened only in the user's own region (on the group's leader); only blind
//! indexes go to `meta`.

use std::collections::HashSet;
use std::time::Duration;

use cairn_cluster_config::{GroupId, META_GROUP};
use cairn_storage::sm::email_index::{GetEmailsReindexed, MarkEmailsReindexed, ReindexEmail};
use cairn_storage::sm::users::ListUsers;
use cairn_storage::EmailEntry;
use tokio::sync::watch;

use crate::error::ServiceError;
use crate::service::core::{email_index, unix_now, By, Core, Email, TenantKeys};

/// Between passes: how soon a new tenant's (or a new group's) marker is
/// written, and how soon work a failure interrupted is taken up again.
const PASS_INTERVAL: Duration = Duration::from_secs(5);
/// Users read per page.
const PAGE: u32 = 200;

/// Runs passes until `stop`.
pub async fn run(core: Core, mut stop: watch::Receiver<bool>) {
    let mut done = HashSet::new();
    let mut first = true;
    loop {
        let wait = if first {
            Duration::from_millis(500)
        } else {
            PASS_INTERVAL
        };
        first = false;
        if !super::pause(&mut stop, wait).await {
            return;
        }
        if let Err(e) = pass(&core, &mut done, &stop).await {
            tracing::warn!(error = %e, "email re-index pass stopped; retrying");
        }
    }
}

/// One pass: every (tenant, data group this node leads) not yet marked.
/// `done` remembers the pairs seen marked (a marker is removed only with its
/// tenant).
async fn pass(
    core: &Core,
    done: &mut HashSet<(String, u64)>,
    stop: &watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    if !core.speaks(4) {
        return Ok(());
    }
    let led: Vec<GroupId> = core
        .config()
        .groups()
        .iter()
        .map(|g| g.id)
        .filter(|g| *g != META_GROUP && core.raft().leads(*g))
        .collect();
    if led.is_empty() {
        return Ok(());
    }
    let (tenants, _) = core.read_tenants().await?;
    for tenant in tenants {
        let pending: Vec<GroupId> = led
            .iter()
            .copied()
            .filter(|g| !done.contains(&(tenant.id.clone(), g.0)))
            .collect();
        if pending.is_empty() {
            continue;
        }
        let query = GetEmailsReindexed {
            tenant_id: tenant.id.clone(),
        };
        let marked = core.raft().read(META_GROUP, query).await?;
        let (already, unmarked): (Vec<GroupId>, Vec<GroupId>) =
            pending.into_iter().partition(|g| marked.contains(&g.0));
        done.extend(already.into_iter().map(|g| (tenant.id.clone(), g.0)));
        if unmarked.is_empty() {
            continue;
        }
        // The tenant's keys only where there are users to open.
        let Some(keys) = core.tenant_keys_by_id(&tenant.id).await? else {
            continue;
        };
        for group in unmarked {
            if *stop.borrow() {
                return Ok(());
            }
            let moved = reindex_group(core, &keys, group).await?;
            let cmd = MarkEmailsReindexed {
                tenant_id: tenant.id.clone(),
                group: group.0,
            };
            core.write(By::System, META_GROUP, cmd).await?;
            tracing::info!(
                tenant_id = %tenant.id,
                group = group.0,
                moved,
                "email index re-indexed"
            );
            done.insert((tenant.id.clone(), group.0));
        }
    }
    Ok(())
}

/// Moves every user of `keys`' tenant in `group` held under an earlier key;
/// returns how many moved.
async fn reindex_group(
    core: &Core,
    keys: &TenantKeys,
    group: GroupId,
) -> Result<usize, ServiceError> {
    let region = core
        .config()
        .group(group)
        .and_then(|g| g.region.clone())
        .unwrap_or_default();
    let mut after = None;
    let mut moved = 0;
    loop {
        let query = ListUsers {
            tenant: keys.id().to_owned(),
            after: after.take(),
            limit: PAGE,
        };
        let page = core.raft().read(group, query).await?;
        let full = page.len() >= PAGE as usize;
        let last = page.last().map(|u| u.id.clone());
        for record in page {
            let user_id = record.id.clone();
            let user = Core::open_user(keys, group, region.clone(), record)?;
            // An address the current rules refuse keeps its earlier entry: it
            // is still found by the earlier key.
            let Ok(email) = Email::parse(&user.plain.email) else {
                continue;
            };
            let earlier = email.earlier_key();
            if earlier == email.key() {
                continue;
            }
            let cmd = ReindexEmail {
                tenant_id: keys.id().to_owned(),
                from: email_index(keys, &earlier),
                to: email_index(keys, email.key()),
                entry: EmailEntry {
                    user_id: user_id.clone(),
                    region: region.clone(),
                    reserved_at: unix_now(),
                },
            };
            let outcome = core.write(By::System, META_GROUP, cmd).await?;
            if outcome.ambiguous {
                tracing::warn!(
                    tenant_id = keys.id(),
                    user_id,
                    "two users now share an email: lookups by it answer email_ambiguous"
                );
            }
            moved += usize::from(outcome.moved);
        }
        match last {
            Some(id) if full => after = Some(id),
            _ => return Ok(moved),
        }
    }
}
