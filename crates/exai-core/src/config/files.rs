//! The file settings (`files.*`): the allowed roots and what may never be one (`/`, the home directory or a
//! parent of it, kernel filesystems), the safe default when none is set, and the file and image size caps.

use std::path::{Path, PathBuf};

use super::validate::Reader;

/// Highest `files.max_images`; the tools' schemas advertise it as `images`' `maxItems`.
pub const MAX_IMAGES_CEILING: usize = 64;

/// `files.*`.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Absolute directories; a file must resolve inside one of them. Empty: file tools refuse every path.
    pub allowed_roots: Vec<PathBuf>,
    /// How the roots were chosen, for the start-up log (e.g. "EXAI_ALLOWED_ROOTS" or why none are in force).
    pub roots_origin: String,
    pub max_file_bytes: u64,
    /// Most images one request may list (`files.max_images`).
    pub max_images: usize,
    /// Most image bytes one request may send, data URLs included (`files.max_image_total_bytes`).
    pub max_image_total_bytes: u64,
}

/// Directories below which nothing is ever a root: the kernel's own filesystems.
const KERNEL_DIRS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Directories that are never the default root (the daemon was started from a system place, not a project):
/// these themselves and everything below them.
const SYSTEM_TREES: [&str; 10] = [
    "/etc", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/run",
];

/// ... and these themselves only (a project below `/srv` or `/var/lib` is fine).
const SYSTEM_DIRS: [&str; 10] = [
    "/var", "/tmp", "/opt", "/srv", "/mnt", "/media", "/home", "/root", "/snap", "/var/lib",
];

/// Why `root` can never be an allowed root, if it cannot. `home` is the user's home directory.
pub fn never_a_root(root: &Path, home: Option<&Path>) -> Option<String> {
    // Judge the directory itself: `/home/me/..` or a symlink to `/` is still `/`.
    let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if real == Path::new("/") {
        return Some("`/` (the whole filesystem) is never an allowed root".into());
    }
    if let Some(home) = home.map(|h| std::fs::canonicalize(h).unwrap_or_else(|_| h.to_path_buf()))
        && home.starts_with(&real)
    {
        let what = if real == home {
            "is the home directory"
        } else {
            "contains the home directory"
        };
        return Some(format!(
            "`{}` {what}, which is never an allowed root (a project directory below it is fine)",
            root.display()
        ));
    }
    if KERNEL_DIRS.iter().any(|k| real.starts_with(k)) {
        return Some(format!(
            "`{}` is a kernel filesystem (/proc, /sys, /dev), which is never readable",
            root.display()
        ));
    }
    None
}

/// The roots in force when `files.allowed_roots` is not set: the working directory when it is a plausible
/// project (not `/`, the home directory, a parent of it or a system directory), else none. The text says which.
pub fn default_roots(cwd: Option<&Path>, home: Option<&Path>) -> (Vec<PathBuf>, String) {
    let Some(cwd) = cwd else {
        return (Vec::new(), "none: the working directory is unknown".into());
    };
    let real = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    let system = SYSTEM_TREES.iter().any(|t| real.starts_with(t)) || SYSTEM_DIRS.iter().any(|d| real == Path::new(d));
    let why = match never_a_root(cwd, home) {
        Some(why) => Some(why),
        None if system => Some(format!("`{}` is a system directory", cwd.display())),
        None => None,
    };
    match why {
        None => (
            vec![cwd.to_path_buf()],
            "the working directory (EXAI_ALLOWED_ROOTS not set)".into(),
        ),
        Some(why) => (
            Vec::new(),
            format!(
                "none: EXAI_ALLOWED_ROOTS is not set and the working directory is not used ({why}); file tools \
                 refuse every path until files.allowed_roots (EXAI_ALLOWED_ROOTS) names the project directories"
            ),
        ),
    }
}

pub(super) fn read(r: &mut Reader<'_>) -> Option<FilesConfig> {
    let home = dirs::home_dir();
    let configured: Vec<PathBuf> = r.list("files.allowed_roots").into_iter().map(PathBuf::from).collect();
    let mut ok = true;
    if configured.iter().any(|p| !p.is_absolute()) {
        r.problem("files.allowed_roots", "expected a comma list of absolute directories");
        ok = false;
    }
    for root in configured.iter().filter(|p| p.is_absolute()) {
        if let Some(why) = never_a_root(root, home.as_deref()) {
            r.problem(
                "files.allowed_roots",
                format!("{why}; name the project directories tools may read instead"),
            );
            ok = false;
        }
    }
    let (allowed_roots, roots_origin) = if configured.is_empty() {
        let cwd = std::env::current_dir().ok();
        default_roots(cwd.as_deref(), home.as_deref())
    } else {
        (configured, "files.allowed_roots (EXAI_ALLOWED_ROOTS)".into())
    };
    let max_file_bytes: Option<u64> = r.parse("files.max_file_bytes", "a byte count from 1 up");
    let max_file_bytes = max_file_bytes.filter(|b| {
        (*b >= 1) || {
            r.problem("files.max_file_bytes", "expected a byte count from 1 up");
            false
        }
    });
    let expected = format!("a whole number from 1 to {MAX_IMAGES_CEILING}");
    let max_images: Option<usize> = r.parse("files.max_images", &expected);
    let max_images = max_images.filter(|n| {
        (1..=MAX_IMAGES_CEILING).contains(n) || {
            r.problem("files.max_images", format!("expected {expected}"));
            false
        }
    });
    let max_image_total_bytes: Option<u64> = r.parse("files.max_image_total_bytes", "a byte count from 1 up");
    let max_image_total_bytes = max_image_total_bytes.filter(|b| {
        (*b >= 1) || {
            r.problem("files.max_image_total_bytes", "expected a byte count from 1 up");
            false
        }
    });
    ok.then_some(())?;
    Some(FilesConfig {
        allowed_roots,
        roots_origin,
        max_file_bytes: max_file_bytes?,
        max_images: max_images?,
        max_image_total_bytes: max_image_total_bytes?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_home_parents_of_home_and_kernel_dirs_are_never_roots() {
        let home = Path::new("/home/dev");
        assert!(
            never_a_root(Path::new("/"), Some(home))
                .unwrap()
                .contains("whole filesystem")
        );
        assert!(
            never_a_root(Path::new("/home/dev"), Some(home))
                .unwrap()
                .contains("is the home directory")
        );
        assert!(
            never_a_root(Path::new("/home"), Some(home))
                .unwrap()
                .contains("contains the home directory")
        );
        assert!(
            never_a_root(Path::new("/proc/self"), Some(home))
                .unwrap()
                .contains("kernel filesystem")
        );
        assert!(never_a_root(Path::new("/dev"), Some(home)).is_some());
        assert!(never_a_root(Path::new("/home/dev/src/app"), Some(home)).is_none());
        assert!(never_a_root(Path::new("/srv/app"), Some(home)).is_none());
    }

    #[test]
    fn the_working_directory_is_the_default_only_when_it_is_a_project() {
        let home = Path::new("/home/dev");
        let (roots, why) = default_roots(Some(Path::new("/home/dev/src/app")), Some(home));
        assert_eq!(roots, vec![PathBuf::from("/home/dev/src/app")]);
        assert!(why.contains("working directory"), "{why}");
        for cwd in ["/", "/home/dev", "/home", "/etc", "/usr/lib", "/tmp", "/var", "/proc/1"] {
            let (roots, why) = default_roots(Some(Path::new(cwd)), Some(home));
            assert!(roots.is_empty(), "{cwd}");
            assert!(why.starts_with("none:") && why.contains("EXAI_ALLOWED_ROOTS"), "{why}");
        }
        assert!(default_roots(None, Some(home)).0.is_empty());
    }
}
