//! Opening a path beneath a root directory without ever leaving it, race-free: `openat2` with `RESOLVE_BENEATH`
//! where the kernel has it, else (and for what it refuses) a component-by-component `O_NOFOLLOW` walk.
//!
//! The walk holds a descriptor for every directory it has entered and opens each next component relative to it,
//! never following a symbolic link by name: a link is read (`readlinkat`) and its target resolved by hand,
//! `..` pops the walked chain and may not climb above the root, an absolute target counts only when it names a
//! place inside the root. So whatever another process swaps in meanwhile, the descriptor returned lies beneath
//! the root; callers `fstat` it and read it, never the path again.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, Stat};
use rustix::io::Errno;

/// Most symbolic links followed while resolving one path (Linux's own limit).
pub const MAX_SYMLINKS: usize = 40;

/// An allowed root, opened: the directory named in the configuration and its canonical form.
#[derive(Debug)]
pub struct Root {
    pub configured: PathBuf,
    pub canonical: PathBuf,
    dir: OwnedFd,
}

impl Root {
    /// Opens `configured` (the root itself may be reached through symlinks: it is trusted configuration).
    pub fn open(configured: &Path) -> std::io::Result<Self> {
        let canonical = std::fs::canonicalize(configured)?;
        let dir = rustix::fs::open(
            &canonical,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            configured: configured.to_path_buf(),
            canonical,
            dir,
        })
    }

    /// `path` relative to this root, if it lies lexically under the root's configured or canonical name.
    pub fn relative<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        path.strip_prefix(&self.canonical)
            .or_else(|_| path.strip_prefix(&self.configured))
            .ok()
    }
}

/// What the caller wants at the end of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// An opened file or directory beneath a root.
#[derive(Debug)]
pub struct Opened {
    pub fd: OwnedFd,
    pub stat: Stat,
    /// The resolved path (the canonical root joined with the real names walked), for directories only.
    pub path: Option<PathBuf>,
}

/// Why a path was not opened.
#[derive(Debug)]
pub enum Refusal {
    /// It leads out of the root (`..` above it, or a symbolic link whose target lies outside).
    Escapes,
    /// More than [`MAX_SYMLINKS`] symbolic links.
    TooManyLinks,
    /// It lies on a kernel filesystem (procfs, sysfs, ...), which is never read.
    KernelFs,
    /// The system refused (not found, not a directory, permission, invalid name, ...).
    Io(std::io::Error),
}

impl From<Errno> for Refusal {
    fn from(e: Errno) -> Self {
        Refusal::Io(e.into())
    }
}

/// Opens `rel` (a path relative to `root`) beneath `root`. A [`Kind::File`] is opened for reading (non-blocking,
/// so a FIFO cannot hang the caller); a [`Kind::Dir`] comes with its resolved path.
pub fn open(root: &Root, rel: &Path, kind: Kind) -> Result<Opened, Refusal> {
    #[cfg(target_os = "linux")]
    if kind == Kind::File
        && !rel.as_os_str().is_empty()
        && let Some(done) = kernel::open_file(root, rel)
    {
        return done;
    }
    walk(root, rel, kind)
}

fn file_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC
}

/// The walked result, once a descriptor is in hand: its `fstat`, and never a kernel filesystem.
fn finish(fd: OwnedFd, path: Option<PathBuf>) -> Result<Opened, Refusal> {
    #[cfg(target_os = "linux")]
    if kernel::is_kernel_fs(fd.as_fd())? {
        return Err(Refusal::KernelFs);
    }
    let stat = rustix::fs::fstat(&fd)?;
    Ok(Opened { fd, stat, path })
}

/// The components of a relative path (or link target) still to walk; `.` dropped, `..` kept.
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// The component-by-component walk (see the module docs); also the authority when `openat2` refuses.
pub fn walk(root: &Root, rel: &Path, kind: Kind) -> Result<Opened, Refusal> {
    if rel.is_absolute() {
        return Err(Refusal::Escapes);
    }
    let mut pending = components(rel);
    // The directories entered below the root, with their names.
    let mut entered: Vec<(OwnedFd, OsString)> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            if entered.pop().is_none() {
                return Err(Refusal::Escapes);
            }
            continue;
        }
        let last = pending.is_empty();
        let dir: BorrowedFd<'_> = entered.last().map_or(root.dir.as_fd(), |(fd, _)| fd.as_fd());
        let flags = if last && kind == Kind::File {
            file_flags() | OFlags::NOFOLLOW
        } else {
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        let error = match rustix::fs::openat(dir, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) if last && kind == Kind::File => return finish(fd, None),
            Ok(fd) => {
                entered.push((fd, name));
                continue;
            }
            Err(e) => e,
        };
        // ELOOP (or ENOTDIR with O_DIRECTORY, EMLINK on the BSDs) may mean a symbolic link: read the link itself.
        if !matches!(error, Errno::LOOP | Errno::NOTDIR | Errno::MLINK) {
            return Err(error.into());
        }
        let target = match rustix::fs::readlinkat(dir, name.as_os_str(), Vec::new()) {
            Ok(target) => PathBuf::from(OsString::from_vec(target.into_bytes())),
            // Not a link (a file where a directory was needed), or swapped meanwhile: the open's own error.
            Err(_) => return Err(error.into()),
        };
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(Refusal::TooManyLinks);
        }
        let mut next = if target.is_absolute() {
            let inside = root.relative(&target).ok_or(Refusal::Escapes)?;
            entered.clear();
            components(inside)
        } else {
            components(&target)
        };
        next.extend(pending);
        pending = next;
    }
    if kind == Kind::File {
        return Err(Refusal::Io(Errno::ISDIR.into()));
    }
    let mut path = root.canonical.clone();
    path.extend(entered.iter().map(|(_, name)| name));
    let fd = match entered.pop() {
        Some((fd, _)) => fd,
        None => rustix::fs::openat(
            &root.dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?,
    };
    finish(fd, Some(path))
}

/// Linux only: `openat2(RESOLVE_BENEATH)` and the kernel-filesystem check.
#[cfg(target_os = "linux")]
mod kernel {
    use std::os::fd::{AsFd, BorrowedFd};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    use rustix::fs::{Mode, ResolveFlags};
    use rustix::io::Errno;

    use super::{Opened, Refusal, Root, file_flags, finish};

    /// Set once the kernel answers ENOSYS (before 5.6, or a seccomp filter): the walk does everything after.
    static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

    /// Filesystems whose files are never read: procfs, sysfs, debugfs, tracefs, securityfs, cgroup (1 and 2),
    /// efivarfs, bpffs, devpts.
    const KERNEL_FS: [u32; 10] = [
        0x9fa0,
        0x6265_6572,
        0x6462_6720,
        0x7472_6163,
        0x7363_6673,
        0x0027_e0eb,
        0x6367_7270,
        0xde5e_81e4,
        0xcafe_4a11,
        0x1cd1,
    ];

    pub(super) fn is_kernel_fs(fd: BorrowedFd<'_>) -> Result<bool, Refusal> {
        let stat = rustix::fs::fstatfs(fd)?;
        // Magic numbers are 32-bit; `f_type` is a signed long on most targets.
        Ok(KERNEL_FS.contains(&(stat.f_type as u32)))
    }

    /// The file opened by the kernel beneath the root, or `None` when the walk must decide (no `openat2`, or
    /// it refused something the walk resolves by hand: an absolute link inside the root, a rename race).
    pub(super) fn open_file(root: &Root, rel: &Path) -> Option<Result<Opened, Refusal>> {
        if UNAVAILABLE.load(Ordering::Relaxed) {
            return None;
        }
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(root.dir.as_fd(), rel, file_flags(), Mode::empty(), resolve) {
            Ok(fd) => Some(finish(fd, None)),
            Err(Errno::NOSYS) => {
                UNAVAILABLE.store(true, Ordering::Relaxed);
                None
            }
            // EPERM: a seccomp filter that refuses unknown syscalls that way (older container runtimes).
            Err(Errno::XDEV | Errno::LOOP | Errno::AGAIN | Errno::PERM) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read(o: Opened) -> String {
        let mut s = String::new();
        std::fs::File::from(o.fd).read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn links_inside_the_root_resolve_and_links_out_are_refused_by_both_strategies() {
        let base = tempfile::tempdir().unwrap();
        let root_dir = base.path().join("root");
        std::fs::create_dir_all(root_dir.join("sub")).unwrap();
        std::fs::write(root_dir.join("sub/a.txt"), "inside").unwrap();
        std::fs::write(base.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink("sub/a.txt", root_dir.join("rel")).unwrap();
        std::os::unix::fs::symlink(root_dir.join("sub"), root_dir.join("abs")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", root_dir.join("out")).unwrap();
        std::os::unix::fs::symlink(base.path().join("secret.txt"), root_dir.join("out_abs")).unwrap();
        std::os::unix::fs::symlink("loop", root_dir.join("loop")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        type Open = fn(&Root, &Path, Kind) -> Result<Opened, Refusal>;
        for (name, open) in [("open", open as Open), ("walk", walk as Open)] {
            let get = |p: &str| open(&root, Path::new(p), Kind::File);
            assert_eq!(read(get("sub/a.txt").unwrap()), "inside", "{name}");
            assert_eq!(read(get("rel").unwrap()), "inside", "{name}");
            assert_eq!(read(get("abs/a.txt").unwrap()), "inside", "{name}");
            assert_eq!(read(get("sub/../sub/./a.txt").unwrap()), "inside", "{name}");
            for escape in ["out", "out_abs", "../secret.txt", "sub/../../secret.txt"] {
                assert!(matches!(get(escape), Err(Refusal::Escapes)), "{name}: {escape}");
            }
            assert!(
                matches!(get("loop"), Err(Refusal::TooManyLinks | Refusal::Io(_))),
                "{name}"
            );
            assert!(matches!(get("sub/a.txt/x"), Err(Refusal::Io(_))), "{name}");
            let not_a_file =
                get("sub").map_or(true, |o| !rustix::fs::FileType::from_raw_mode(o.stat.st_mode).is_file());
            assert!(not_a_file, "{name}: a directory is not a file");
        }
        let dir = walk(&root, Path::new("abs"), Kind::Dir).unwrap();
        assert_eq!(dir.path.unwrap(), root.canonical.join("sub"));
        assert!(matches!(
            walk(&root, Path::new("out"), Kind::Dir),
            Err(Refusal::Escapes)
        ));
        assert_eq!(
            walk(&root, Path::new(""), Kind::Dir).unwrap().path.unwrap(),
            root.canonical
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_filesystems_are_refused_even_inside_a_root() {
        let root = Root::open(Path::new("/proc")).unwrap();
        assert!(matches!(
            open(&root, Path::new("self/status"), Kind::File),
            Err(Refusal::KernelFs)
        ));
        assert!(matches!(
            walk(&root, Path::new("self/status"), Kind::File),
            Err(Refusal::KernelFs)
        ));
        assert!(matches!(walk(&root, Path::new(""), Kind::Dir), Err(Refusal::KernelFs)));
    }
}
