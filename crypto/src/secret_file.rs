//! Reading secret files: refuse files that group or others can read, and never
//! put file contents in an error.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{path}: cannot read secret file: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: secret file is accessible by group or others (mode {mode:o}); \
         run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Longest secret file read: keys and tokens are tens of bytes, so a larger file is
/// a mistake (e.g. a device named by accident), refused without reading it all.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Reads a whole secret file after checking that its mode is 0600 or stricter.
///
/// # Errors
/// The file is missing or unreadable, group/others have any access to it, or it is
/// larger than 4 KiB.
pub fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mode = file.metadata().map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Permissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretFileError::Invalid {
            path: path.to_path_buf(),
            reason: format!("secret file is larger than {MAX_SECRET_FILE_BYTES} bytes"),
        });
    }
    Ok(buf)
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    pub fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}
