//! Password hashing with Argon2id (RFC 9106), stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
//!
//! Parameters are the OWASP Password Storage Cheat Sheet's minimum for Argon2id:
//! 19 MiB of memory, 2 passes, 1 lane. They are written into every PHC string, so
//! raising them later needs no migration: old hashes keep verifying under the
//! parameters they were made with, and can be re-hashed on the next good login.
//!
//! Only Argon2id version 0x13 is accepted on verification: an `argon2i`/`argon2d`
//! string, a bcrypt or scrypt hash, or anything unparsable is simply a mismatch.
//! Parameters read from a stored string are capped so a corrupted record cannot make
//! one login allocate gigabytes.
//!
//! Hashing and verifying are deliberately slow (tens of milliseconds of CPU and
//! 19 MiB of memory each): async callers must run them on a blocking thread
//! (`tokio::task::spawn_blocking`), never on a runtime worker, and should bound how
//! many run at once. A server keeps one [`Workspace`] per concurrent hash and
//! reuses it: allocating 19 MiB per call made the allocator keep a copy in every
//! thread's arena (gigabytes of resident memory under a sign-in load). The
//! workspace is zeroized after every use, since it holds password-derived state.
//! To avoid revealing which accounts exist, a login for an unknown account
//! verifies against [`dummy_hash`] so it costs the same as a wrong password.

use std::sync::OnceLock;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore as _;
use zeroize::{Zeroize, Zeroizing};

/// Memory cost in KiB (19 MiB).
pub const ARGON2_M_KIB: u32 = 19_456;
/// Number of passes (time cost).
pub const ARGON2_T: u32 = 2;
/// Degree of parallelism (lanes).
pub const ARGON2_P: u32 = 1;

/// Largest parameters accepted from a stored hash: generous headroom for future
/// upgrades, but a bound on the work one verification can demand.
const MAX_VERIFY_M_KIB: u32 = 262_144;
const MAX_VERIFY_T: u32 = 16;
const MAX_VERIFY_P: u32 = 8;

/// Why a password could not be hashed. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed")]
    HashingFailed,
}

/// The parameters in use, for logs and `cairn status`: `Argon2id m=19456 KiB, t=2, p=1`.
#[must_use]
pub fn params_description() -> String {
    format!("Argon2id m={ARGON2_M_KIB} KiB, t={ARGON2_T}, p={ARGON2_P}")
}

fn current_params() -> Result<Params, PasswordError> {
    Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).map_err(|_| PasswordError::HashingFailed)
}

/// Argon2 working memory (19 MiB for the current parameters), reused across calls
/// and zeroized after each. Not `Clone`: one per concurrent hash.
pub struct Workspace {
    blocks: Vec<Block>,
}

impl Workspace {
    /// Allocates the memory the current parameters need.
    #[must_use]
    pub fn new() -> Self {
        let blocks = current_params().map_or(0, |p| p.block_count());
        Self {
            blocks: vec![Block::default(); blocks],
        }
    }

    /// Hashes `password` with Argon2id under a fresh random 16-byte salt and
    /// returns the PHC string to store. CPU- and memory-heavy: run it on a
    /// blocking thread.
    ///
    /// # Errors
    /// [`PasswordError::HashingFailed`] if Argon2 refuses the input (a password
    /// over 4 GiB) or cannot run.
    pub fn hash(&mut self, password: &[u8]) -> Result<String, PasswordError> {
        let params = current_params()?;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_raw = salt
            .as_salt()
            .decode_b64(&mut salt_bytes)
            .map_err(|_| PasswordError::HashingFailed)?;
        let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
        self.run(&params, password, salt_raw, out.as_mut())
            .map_err(|_| PasswordError::HashingFailed)?;
        let hash = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|_| PasswordError::HashingFailed)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(out.as_ref()).map_err(|_| PasswordError::HashingFailed)?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` matches the stored PHC string `phc`. `false` for a
    /// mismatch and for anything that is not an Argon2id v19 hash within sane
    /// parameters; the final comparison is constant-time. CPU- and memory-heavy:
    /// run it on a blocking thread.
    #[must_use]
    pub fn verify(&mut self, password: &[u8], phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        if hash.algorithm != argon2::ARGON2ID_IDENT || hash.version != Some(Version::V0x13.into()) {
            return false;
        }
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
            return false;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return false;
        };
        if params.m_cost() > MAX_VERIFY_M_KIB
            || params.t_cost() > MAX_VERIFY_T
            || params.p_cost() > MAX_VERIFY_P
        {
            return false;
        }
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        if self.run(&params, password, salt, &mut out).is_err() {
            return false;
        }
        crate::constant_time_eq(&out, expected.as_bytes())
    }

    /// One Argon2id v19 computation into `out`, in this workspace's memory (grown
    /// if a stored hash's parameters need more), which is zeroized afterwards.
    fn run(
        &mut self,
        params: &Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        if self.blocks.len() < params.block_count() {
            self.blocks.resize(params.block_count(), Block::default());
        }
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let result = argon.hash_password_into_with_memory(password, salt, out, &mut self.blocks);
        self.wipe();
        // Memory grown for an unusual stored hash is given back.
        let normal = current_params().map_or(0, |p| p.block_count());
        if self.blocks.len() > normal {
            self.blocks.truncate(normal);
            self.blocks.shrink_to_fit();
        }
        result
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    fn wipe(&mut self) {
        self.blocks.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// [`Workspace::hash`] in a workspace of its own (allocated for this call).
///
/// # Errors
/// As [`Workspace::hash`].
pub fn hash_password(password: &[u8]) -> Result<String, PasswordError> {
    Workspace::new().hash(password)
}

/// [`Workspace::verify`] in a workspace of its own (allocated for this call).
#[must_use]
pub fn verify_password(password: &[u8], phc: &str) -> bool {
    Workspace::new().verify(password, phc)
}

/// A valid hash, with the current parameters, of a random password nobody knows.
/// Verifying against it when an account does not exist costs the same as a wrong
/// password, so response times do not reveal which accounts exist. Computed once.
#[must_use]
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut password = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(password.as_mut());
        hash_password(password.as_ref())
            .expect("constant, valid parameters and a 32-byte password always hash")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    const PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

    #[test]
    fn hash_then_verify() {
        let phc = hash_password(b"correct horse battery staple").expect("hash");
        assert!(phc.starts_with(PREFIX), "{phc}");
        assert!(verify_password(b"correct horse battery staple", &phc));
        assert!(!verify_password(b"correct horse battery stapl", &phc));
        assert!(!verify_password(b"Correct horse battery staple", &phc));
        assert!(!verify_password(b"", &phc));
    }

    #[test]
    fn salts_are_random_and_16_bytes() {
        let a = hash_password(b"same").expect("hash");
        let b = hash_password(b"same").expect("hash");
        assert_ne!(a, b);
        assert!(verify_password(b"same", &a) && verify_password(b"same", &b));
        let salt = a
            .trim_start_matches(PREFIX)
            .split('$')
            .next()
            .expect("salt");
        // 16 bytes in unpadded base64.
        assert_eq!(salt.len(), 22, "{a}");
    }

    #[test]
    fn empty_and_binary_passwords_hash() {
        let phc = hash_password(b"").expect("hash");
        assert!(verify_password(b"", &phc));
        let binary = [0u8, 255, 1, 254];
        let phc = hash_password(&binary).expect("hash");
        assert!(verify_password(&binary, &phc));
        assert!(!verify_password(&binary[..3], &phc));
    }

    #[test]
    fn garbage_and_other_schemes_are_mismatches() {
        for phc in [
            "",
            "$",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
        ] {
            assert!(!verify_password(b"password", phc), "{phc}");
        }
    }

    #[test]
    fn only_argon2id_v19_is_accepted() {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).expect("params");
        for (algorithm, version) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2d, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
        ] {
            // A genuine hash of the right password, in a scheme we do not accept.
            let phc = Argon2::new(algorithm, version, params.clone())
                .hash_password(b"password", &salt)
                .expect("hash")
                .to_string();
            assert!(!verify_password(b"password", &phc), "{phc}");
        }
    }

    #[test]
    fn excessive_stored_parameters_are_refused_without_running() {
        let phc = hash_password(b"pw").expect("hash");
        let rest = phc.trim_start_matches(PREFIX);
        for params in [
            "m=4194304,t=2,p=1",
            "m=19456,t=1000,p=1",
            "m=19456,t=2,p=64",
        ] {
            let forged = format!("$argon2id$v=19${params}${rest}");
            assert!(!verify_password(b"pw", &forged), "{forged}");
        }
        // Weaker-but-sane parameters still verify (a hash made with them).
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).expect("params"),
        )
        .hash_password(b"pw", &SaltString::generate(&mut rand::rngs::OsRng))
        .expect("hash")
        .to_string();
        assert!(verify_password(b"pw", &weak));
    }

    #[test]
    fn dummy_hash_is_stable_current_and_matches_nothing() {
        let dummy = dummy_hash();
        assert!(dummy.starts_with(PREFIX), "{dummy}");
        assert!(std::ptr::eq(dummy, dummy_hash()), "computed once");
        for guess in [&b""[..], b"password", b"dummy", dummy.as_bytes()] {
            assert!(!verify_password(guess, dummy));
        }
    }

    #[test]
    fn one_workspace_serves_many_calls_and_is_wiped_after_each() {
        let mut ws = Workspace::new();
        let normal = ws.blocks.len();
        assert_eq!(normal, 19_456, "one 1 KiB block per KiB of memory cost");
        let a = ws.hash(b"first").expect("hash");
        let b = ws.hash(b"second").expect("hash");
        assert!(ws.verify(b"first", &a) && ws.verify(b"second", &b));
        assert!(!ws.verify(b"second", &a) && !ws.verify(b"first", &b));
        // The library's own verifier accepts our hashes, and we accept its.
        let library = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            current_params().expect("params"),
        );
        let parsed = PasswordHash::new(&a).expect("phc");
        assert!(library.verify_password(b"first", &parsed).is_ok());
        let theirs = library
            .hash_password(b"third", &SaltString::generate(&mut rand::rngs::OsRng))
            .expect("hash")
            .to_string();
        assert!(ws.verify(b"third", &theirs));
        // A stored hash with more memory than today's parameters verifies; the
        // extra memory is given back afterwards.
        let bigger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32_768, 1, 1, None).expect("params"),
        )
        .hash_password(b"bigger", &SaltString::generate(&mut rand::rngs::OsRng))
        .expect("hash")
        .to_string();
        assert!(ws.verify(b"bigger", &bigger));
        assert_eq!(ws.blocks.len(), normal);
        // Nothing password-derived stays in the workspace between calls.
        let zero = Block::default();
        assert!(ws.blocks.iter().all(|b| b.as_ref() == zero.as_ref()));
    }

    #[test]
    fn description_names_the_parameters() {
        assert_eq!(params_description(), "Argon2id m=19456 KiB, t=2, p=1");
    }
}
