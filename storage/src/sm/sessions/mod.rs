//! Sessions in a region's data group, and refresh token rotation with reuse
//! detection.
//!
//! IP and user agent arrive sealed by the node. The fields the state machine must
//! decide on — ids, timestamps, the refresh token generation and the keyed hashes
//! of the current and previous refresh token, revocation — are stored in the
//! clear; none of them is personal data or a usable secret.
//!
//! Refresh tokens form a forward chain per session (see `cairn_crypto::token`):
//! token `g + 1` is derived from token `g` under the tenant's token-MAC key, and
//! only keyed hashes are stored. Applying a [`Refresh`] decides, on every replica
//! alike and at one log position (the rule is [`rules::refresh_decision`]):
//! - the current token (generation `g`) rotates: `g + 1` becomes current, `g`
//!   previous;
//! - the previous token (`g - 1`), whose successor `g` has by definition not been
//!   used yet, is a lost-answer retry within the tenant's retry grace of the
//!   rotation ([`RefreshWithin`]): the same successor is answered again and
//!   nothing changes. After the grace it is reuse, as below: whoever refreshed
//!   first (a thief, say) holds the only live token, and the other holder's
//!   next refresh ends the family;
//! - an older genuine token (`< g - 1`) is reuse: the session (the whole token
//!   family) is revoked and `session.compromised` recorded, in the same entry.
//!   "Genuine" is proven by the proposer walking the presented token forward to
//!   generation `g` and presenting that token's hash, which only a holder of a
//!   real token of this session and of the tenant's key can produce; without a
//!   matching proof the answer is [`RefreshOutcome::NeedProof`], so a forged old
//!   token can never revoke anyone's session.

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;
pub mod rules;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at: u64,
    /// `revoked` (by the API), `refresh_token_reused`.
    pub reason: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: u64,
    /// When the current refresh token was issued (sign-in or last rotation).
    pub last_refreshed_at: u64,
    /// Absolute end of the session, whatever its use.
    pub expires_at: u64,
    /// The session ends after this long without a refresh.
    pub idle_timeout_secs: u64,
    /// Authentication methods (`pwd`, …), as the access token's `amr` claim.
    pub amr: Vec<String>,
    /// The signing key (`kid`) of the access token issued with the current
    /// refresh token: a retried refresh re-signs the same token with it.
    pub kid: String,
    /// Generation of the current refresh token.
    pub generation: u64,
    /// Keyed hash of the current refresh token.
    pub current_hash: Vec<u8>,
    /// Keyed hash of the previous one (`None` before the first rotation).
    pub previous_hash: Option<Vec<u8>>,
    pub revoked: Option<Revocation>,
    /// IP and user agent at sign-in, sealed by the node.
    pub sealed_details: Vec<u8>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("generation", &self.generation)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// Starts a session for an existing user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSession {
    pub tenant: String,
    pub session: SessionRecord,
}

/// Presents refresh token `generation` of `session_id` (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    pub tenant: String,
    pub session_id: String,
    pub generation: u64,
    /// Keyed hash of the presented token.
    pub presented_hash: Vec<u8>,
    /// Keyed hash of its successor (generation + 1).
    pub successor_hash: Vec<u8>,
    /// For an older token: (generation, keyed hash) of the token the presented
    /// one walks forward to.
    pub proof: Option<(u64, Vec<u8>)>,
    /// The signing key the proposer will sign the new access token with.
    pub kid: String,
    pub at: u64,
    pub request_id: Option<String>,
}

/// A [`Refresh`] whose lost-answer retry is bounded (wire version 3): the
/// previous token retries only within `retry_grace_secs` of the rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshWithin {
    pub refresh: Refresh,
    pub retry_grace_secs: u64,
}

/// Revokes every live session of a user but `except` (wire version 3): signing
/// out everywhere, or a password change that keeps the session making it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeUserSessions {
    pub tenant: String,
    pub user_id: String,
    pub except: Option<String>,
    pub at: u64,
    pub reason: String,
}

/// What [`RevokeUserSessions`] did: how many sessions it revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSessionsRevoked {
    pub revoked: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeSession {
    pub tenant: String,
    pub session_id: String,
    pub at: u64,
    pub reason: String,
}

/// Reads a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSession {
    pub tenant: String,
    pub session_id: String,
}

/// Reads every session of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListUserSessions {
    pub tenant: String,
    pub user_id: String,
}

/// What a [`Refresh`] decided (also a wire type: the `Refresh` outcome).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefreshOutcome {
    /// The presented token was current; the session now holds its successor.
    Rotated(SessionRecord),
    /// The presented token was the previous one and its successor is unused: the
    /// same successor is the answer again. Nothing changed.
    Retried(SessionRecord),
    /// A retired token was presented: the session is revoked (in this entry).
    Reused,
    /// No such session, or the token does not match it.
    Invalid,
    Revoked,
    Expired,
    /// An older token needs a proof for generation `current`; nothing changed.
    NeedProof {
        current: u64,
    },
}

/// What [`CreateSession`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateSessionOutcome {
    SessionCreated,
    UserNotFound,
    /// A random id collided with an existing one; nothing changed.
    IdCollision,
}

/// What [`RevokeSession`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeSessionOutcome {
    SessionRevoked { already: bool },
    SessionNotFound,
}
