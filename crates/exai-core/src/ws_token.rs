//! The WebSocket daemon's own token, for when `EXAI_WS_TOKEN` is unset: `exai serve` creates `<data_dir>/ws-token`
//! (32 random bytes from the OS, hex; mode 0600) at its first start and requires it; `exai shim` and `exai loadtest`
//! read it from there, so a local set-up needs no configuration and a web page, which cannot read the file, is out.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::config::Secret;

/// The token file's name inside the data directory.
pub const FILE_NAME: &str = "ws-token";

/// Random bytes in a created token (64 hex characters).
const TOKEN_BYTES: usize = 32;

/// Shortest token a file may hold (a shorter one was not made by exai: refused rather than trusted).
const MIN_CHARS: usize = 32;

/// Why the token file cannot be used; each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error(
        "cannot {action} the WebSocket token file {path}: {source} (set EXAI_WS_TOKEN, or EXAI_DATA_DIR to a \
         directory this user can write)"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the WebSocket token file {path} can be read by other users (mode {mode:o}): delete it (a new one is made at \
         the next start) or `chmod 600` it, or set EXAI_WS_TOKEN"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error(
        "the WebSocket token file {path} belongs to user {owner}, not to this user ({uid}): delete it or set \
         EXAI_WS_TOKEN"
    )]
    NotOwned { path: PathBuf, owner: u32, uid: u32 },
    #[error("the WebSocket token file {path} is not a regular file: remove it or set EXAI_WS_TOKEN")]
    NotAFile { path: PathBuf },
    #[error(
        "the WebSocket token file {path} holds no usable token (fewer than {MIN_CHARS} characters): delete it (a new \
         one is made at the next start) or set EXAI_WS_TOKEN"
    )]
    Unusable { path: PathBuf },
    #[error("cannot draw random bytes for the WebSocket token: {0}")]
    Random(String),
}

/// Where the token file of data directory `data_dir` lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The daemon's side: the token in `data_dir`'s file, created (with the directory) when there is none yet.
pub fn load_or_create(data_dir: &Path) -> Result<Secret, TokenFileError> {
    if let Some(token) = read(data_dir)? {
        return Ok(token);
    }
    create_dir(data_dir)?;
    let token = new_token()?;
    let file = path(data_dir);
    // Written in full under a name of its own, then linked into place: link(2) fails when the file exists, so a
    // reader never sees a half-written token and two daemons starting at once agree on the first one.
    let staging = data_dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let io = |action, source| TokenFileError::Io {
        action,
        path: file.clone(),
        source,
    };
    let _ = std::fs::remove_file(&staging);
    let mut out = private_options().open(&staging).map_err(|e| io("create", e))?;
    let written = out.write_all(token.expose().as_bytes()).and_then(|()| out.sync_all());
    drop(out);
    let linked = written.and_then(|()| std::fs::hard_link(&staging, &file));
    let _ = std::fs::remove_file(&staging);
    match linked {
        Ok(()) => Ok(token),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(data_dir)?.ok_or_else(|| TokenFileError::Unusable { path: file.clone() })
        }
        Err(e) => Err(io("create", e)),
    }
}

/// The clients' side: the token in `data_dir`'s file; `None` when there is no file (no daemon started there yet).
/// A file other users can read, owned by another user or not a regular file is refused.
pub fn read(data_dir: &Path) -> Result<Option<Secret>, TokenFileError> {
    let file = path(data_dir);
    let opened = match open_no_follow(&file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // A symbolic link in place of the file fails to open (ELOOP): say what it is rather than the errno.
            return match std::fs::symlink_metadata(&file) {
                Ok(meta) if !meta.is_file() => Err(TokenFileError::NotAFile { path: file }),
                _ => Err(TokenFileError::Io {
                    action: "open",
                    path: file,
                    source: e,
                }),
            };
        }
    };
    let meta = opened.metadata().map_err(|e| TokenFileError::Io {
        action: "inspect",
        path: file.clone(),
        source: e,
    })?;
    if !meta.is_file() {
        return Err(TokenFileError::NotAFile { path: file });
    }
    check_private(&file, &meta)?;
    let mut text = String::new();
    opened
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| TokenFileError::Io {
            action: "read",
            path: file.clone(),
            source: e,
        })?;
    let token = text.trim();
    if token.len() < MIN_CHARS || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenFileError::Unusable { path: file });
    }
    Ok(Some(Secret::new(token)))
}

fn new_token() -> Result<Secret, TokenFileError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| TokenFileError::Random(e.to_string()))?;
    Ok(Secret::new(
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    ))
}

#[cfg(unix)]
fn private_options() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    options
}

#[cfg(not(unix))]
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    options
}

#[cfg(unix)]
fn open_no_follow(file: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(file)
}

#[cfg(not(unix))]
fn open_no_follow(file: &Path) -> std::io::Result<File> {
    File::open(file)
}

fn create_dir(dir: &Path) -> Result<(), TokenFileError> {
    crate::private::create_dir(dir).map_err(|e| TokenFileError::Io {
        action: "create the directory of",
        path: path(dir),
        source: e,
    })
}

/// Only this user may read the file: no group or other permission bits, and owned by this process's user.
#[cfg(unix)]
fn check_private(file: &Path, meta: &std::fs::Metadata) -> Result<(), TokenFileError> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TokenFileError::Exposed {
            path: file.to_owned(),
            mode,
        });
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(TokenFileError::NotOwned {
            path: file.to_owned(),
            owner: meta.uid(),
            uid,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &Path, _meta: &std::fs::Metadata) -> Result<(), TokenFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_start_creates_a_private_token_and_later_starts_reuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested").join("data");
        assert!(read(&data).unwrap().is_none(), "no file yet");
        let token = load_or_create(&data).unwrap();
        assert_eq!(token.expose().len(), 2 * TOKEN_BYTES);
        assert!(token.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(load_or_create(&data).unwrap().expose(), token.expose(), "reused");
        assert_eq!(read(&data).unwrap().unwrap().expose(), token.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let mode = std::fs::metadata(path(&data)).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [FILE_NAME], "no staging file is left behind");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap().expose(), token.expose());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_a_link_or_a_short_token_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path()).unwrap();
        let file = path(dir.path());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, TokenFileError::Exposed { mode: 0o644, .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(read(dir.path()).is_err(), "clients refuse it too");

        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&file, path(linked.path())).unwrap();
        let err = read(linked.path()).unwrap_err();
        assert!(matches!(err, TokenFileError::NotAFile { .. }), "{err}");

        // Only root can give a file away: the ownership check runs where the tests run as root (as in CI here).
        if rustix::process::geteuid().is_root() {
            let theirs = tempfile::tempdir().unwrap();
            load_or_create(theirs.path()).unwrap();
            std::os::unix::fs::chown(path(theirs.path()), Some(65534), None).unwrap();
            let err = read(theirs.path()).unwrap_err();
            assert!(matches!(err, TokenFileError::NotOwned { owner: 65534, .. }), "{err}");
        }

        let short = tempfile::tempdir().unwrap();
        let mut f = private_options().open(path(short.path())).unwrap();
        f.write_all(b"guessable").unwrap();
        let err = load_or_create(short.path()).unwrap_err();
        assert!(matches!(err, TokenFileError::Unusable { .. }), "{err}");
    }
}
