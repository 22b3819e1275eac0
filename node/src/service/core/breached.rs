//! The breached-password check (optional, per tenant): the k-anonymity range
//! protocol. Only the first five hex digits of the password's SHA-1 leave the
//! node (`GET {range_url}/range/{prefix}`, with `Add-Padding: true` so the
//! answer's size says nothing either); the rest of the hash is compared here,
//! in constant time, against every suffix the service returns.

use std::time::Duration;

use cairn_cluster_config::BreachedPasswords;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Core;
use crate::error::ServiceError;

/// The most of a range answer read (a padded range is some 40 KB).
const MAX_RANGE_BYTES: usize = 1 << 20;

/// The range service client, if the config names one.
pub(super) struct BreachedCheck {
    client: reqwest::Client,
    cfg: BreachedPasswords,
}

impl BreachedCheck {
    /// `None` without a `range_url`.
    ///
    /// # Errors
    /// The CA file cannot be read or holds no certificate.
    pub(super) fn new(cfg: &BreachedPasswords) -> anyhow::Result<Option<Self>> {
        if cfg.range_url.is_none() {
            return Ok(None);
        }
        let builder = match &cfg.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)?;
                let mut b = reqwest::Client::builder()
                    .use_rustls_tls()
                    .tls_built_in_root_certs(false);
                for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
                    b = b.add_root_certificate(cert);
                }
                b
            }
            None => reqwest::Client::builder(),
        };
        let client = builder
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Self {
            client,
            cfg: cfg.clone(),
        }))
    }

    /// Whether `password` is in a breach the service knows of.
    async fn breached(&self, password: &str) -> Result<bool, String> {
        let digest = Sha1::digest(password.as_bytes());
        let mut hex = Zeroizing::new(String::with_capacity(40));
        for b in digest {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02X}");
        }
        let (prefix, suffix) = hex.split_at(5);
        let base = self.cfg.range_url.as_deref().unwrap_or_default();
        let url = format!("{}/range/{prefix}", base.trim_end_matches('/'));
        let resp = self
            .client
            .get(&url)
            .header("Add-Padding", "true")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_RANGE_BYTES {
            return Err("answer too large".to_owned());
        }
        let text = String::from_utf8_lossy(&body);
        let mut found = false;
        for line in text.lines() {
            let Some((s, count)) = line.trim().split_once(':') else {
                continue;
            };
            let hit = s.len() == suffix.len()
                && bool::from(s.to_ascii_uppercase().as_bytes().ct_eq(suffix.as_bytes()));
            // Padding entries have a count of 0.
            found |= hit && count.trim().parse::<u64>().is_ok_and(|n| n > 0);
        }
        Ok(found)
    }
}

impl Core {
    /// Refuses a new password the range service knows from a breach, when the
    /// tenant asks for the check. A service that fails refuses the password
    /// only with `fail_closed`.
    ///
    /// # Errors
    /// `password_breached` (400); `unavailable` when the service fails and
    /// the config says `fail_closed`.
    pub async fn check_breached(
        &self,
        tenant_id: &str,
        password: &str,
    ) -> Result<(), ServiceError> {
        let Some(check) = &self.inner.breached else {
            return Ok(());
        };
        if !self.settings(tenant_id).await?.breached_password_check {
            return Ok(());
        }
        match check.breached(password).await {
            Ok(false) => Ok(()),
            Ok(true) => Err(ServiceError::PasswordBreached),
            Err(e) if check.cfg.fail_closed => {
                tracing::warn!(error = %e, "breached-password service failed; refusing (fail_closed)");
                Err(ServiceError::Unavailable(
                    "the breached-password check is unavailable; retry".to_owned(),
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "breached-password service failed; password accepted");
                Ok(())
            }
        }
    }
}
