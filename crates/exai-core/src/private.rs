//! What exai keeps in its data directory is for this user only: the database holds conversations (prompts, file
//! contents, answers), the log what was asked of the daemon, `ws-token` the WebSocket secret. A directory exai
//! creates is 0700 and the files it keeps there 0600, also inside a directory that others can enter (one made by an
//! older version, or chosen with `EXAI_DATA_DIR`).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, each with mode 0700; an existing directory keeps its mode.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Why the existing directory `dir` cannot hold exai's data: it belongs to another user, or other users can write
/// to it (and so replace its database or token file with their own, or a link to theirs). `Ok` when it is this
/// user's and only this user writes to it, or when it does not exist yet ([`create_dir`] makes it private).
pub fn check_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot inspect the data directory {}: {e}", dir.display())),
        };
        let uid = rustix::process::geteuid().as_raw();
        let mode = meta.mode() & 0o7777;
        let why = if meta.uid() != uid {
            format!("it belongs to user {}, not to this user ({uid})", meta.uid())
        } else if mode & 0o022 != 0 {
            format!("other users can write to it (mode {mode:o})")
        } else {
            return Ok(());
        };
        Err(format!(
            "refusing the data directory {}: {why}, so they could replace its database or token file. Use a \
             directory of your own (EXAI_DATA_DIR / --data-dir), or `chmod go-w` this one",
            dir.display()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Takes the group and other permissions off the file `path` (not following a symbolic link); nothing when there is
/// no such file.
pub fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_file() && mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates the file `path` empty with mode 0600 when there is none (an existing one is left as it is).
pub fn ensure_file(path: &Path) -> io::Result<()> {
    match private_options().create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens `path` for appending: created with mode 0600, or [`restrict`]ed when it exists.
pub fn append(path: &Path) -> io::Result<File> {
    let file = private_options().create(true).append(true).open(path)?;
    restrict(path)?;
    Ok(file)
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_made_private_and_exposed_ones_restricted() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b");
        create_dir(&dir).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&dir)), (0o700, 0o700));
        let db = dir.join("db");
        ensure_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o664)).unwrap();
        ensure_file(&db).unwrap();
        assert_eq!(mode(&db), 0o664, "an existing file is left as it is");
        restrict(&db).unwrap();
        assert_eq!(mode(&db), 0o600, "an existing file others could read");
        let log = dir.join("log");
        drop(append(&log).unwrap());
        assert_eq!(mode(&log), 0o600);
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(append(&log).unwrap());
        assert_eq!(mode(&log), 0o600);
        restrict(&dir.join("absent")).unwrap();
    }

    #[test]
    fn a_data_directory_others_can_write_to_is_refused() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(check_dir(&root.path().join("absent")), Ok(()));
        assert_eq!(check_dir(root.path()), Ok(()));
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_dir(root.path()), Ok(()), "others may enter, not write");
        for mode in [0o777, 0o775, 0o1777] {
            std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let err = check_dir(root.path()).unwrap_err();
            assert!(
                err.contains("other users can write") && err.contains("EXAI_DATA_DIR"),
                "{err}"
            );
        }
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // Only root can give a directory away: the ownership check runs where the tests run as root.
        if rustix::process::geteuid().is_root() {
            let theirs = root.path().join("theirs");
            create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            let err = check_dir(&theirs).unwrap_err();
            assert!(err.contains("belongs to user 65534"), "{err}");
        }
    }
}
