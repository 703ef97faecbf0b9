//! Files and images a caller passes to a model tool: absolute paths, opened beneath an allowed root (never
//! through a symlink out of it) and read from the descriptor opened, text only and size-capped, embedded within a
//! token budget.
//!
//! - [`beneath`]: the race-free resolver (`openat2` `RESOLVE_BENEATH`, or an `O_NOFOLLOW` walk).
//! - [`images`]: images as data URLs, capped in count and bytes, each sent once.
//! - [`lists`]: caps on caller-supplied lists and linear de-duplication.

pub mod beneath;
pub mod images;
pub mod lists;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use beneath::{Kind, Opened, Refusal, Root};
pub use images::image_urls;

use crate::config::FilesConfig;
use crate::conversation::estimate_tokens;
use crate::error::ToolError;

/// Longest path accepted, in bytes (Linux's PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;

/// Bytes inspected for NUL when deciding whether a file is binary.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

fn invalid(tool: &str, message: String) -> ToolError {
    ToolError::InvalidArguments {
        tool: tool.to_owned(),
        message,
    }
}

/// Runs blocking file work on tokio's blocking pool, off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ToolError::Internal(format!("file access failed: {e}")))?
}

/// Which file a descriptor is: the same device and inode is the same file, whatever path named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    // `st_dev` and `st_ino` differ in type between platforms.
    #[allow(clippy::unnecessary_cast)]
    fn of(opened: &Opened) -> Self {
        Self {
            dev: opened.stat.st_dev as u64,
            ino: opened.stat.st_ino as u64,
        }
    }
}

/// Where tools may read files from and how much (`files.*` in the config).
#[derive(Debug, Clone)]
pub struct FilePolicy {
    /// Absolute directories; a file is opened beneath one of them or not at all. Empty: every path is refused.
    pub roots: Vec<PathBuf>,
    /// The real path each root had when the configuration was read (`None`: it did not exist then); a root whose
    /// real path is now another (its name swapped for a link elsewhere) admits nothing. Missing entries: `None`.
    pub pinned: Vec<Option<PathBuf>>,
    pub max_file_bytes: u64,
    pub max_images: usize,
    pub max_image_total_bytes: u64,
}

impl FilePolicy {
    pub fn new(config: &FilesConfig) -> Self {
        Self {
            roots: config.allowed_roots.clone(),
            pinned: config.pinned_roots.clone(),
            max_file_bytes: config.max_file_bytes,
            max_images: config.max_images,
            max_image_total_bytes: config.max_image_total_bytes,
        }
    }

    fn roots_text(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether `path` resolves (symlinks followed) inside an allowed root: false when it resolves nowhere. For
    /// places git names (its directories, alternates), which are never read through this policy.
    pub async fn contains(&self, path: &Path) -> bool {
        let (policy, path) = (self.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || {
            let Ok(canonical) = std::fs::canonicalize(&path) else {
                return false;
            };
            policy.current_roots().iter().any(|root| canonical.starts_with(root))
        })
        .await
        .unwrap_or(false)
    }

    /// The roots' real paths now, leaving out any whose name leads elsewhere than at start-up (see [`Self::open`]):
    /// a root swapped for a link to `/` admits nothing here either (blocking).
    pub fn current_roots(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let current = std::fs::canonicalize(r).ok()?;
                let expected = match self.pinned.get(i) {
                    Some(Some(pinned)) => pinned.clone(),
                    _ => beneath::lexical(r),
                };
                (current == expected).then_some(current)
            })
            .collect()
    }

    /// Opens `path` beneath the root it names (blocking). Refusals name the path and the rule, never what lies
    /// outside the roots.
    fn open(&self, tool: &str, path: &str, kind: Kind) -> Result<Opened, ToolError> {
        if self.roots.is_empty() {
            return Err(invalid(
                tool,
                "no directories are allowed for file access: set files.allowed_roots (EXAI_ALLOWED_ROOTS) to the \
                 project directories tools may read (the daemon uses its working directory only when that is not \
                 `/`, the home directory or a system directory)"
                    .into(),
            ));
        }
        // Longer than the system takes (PATH_MAX): refused before any work (the walk would open each of its
        // components) and shown cut, so a huge name is not echoed back whole.
        if path.len() > MAX_PATH_BYTES {
            let shown: String = path.chars().take(80).collect();
            return Err(invalid(
                tool,
                format!(
                    "`{shown}…` is {} bytes long; paths may be at most {MAX_PATH_BYTES} bytes",
                    path.len()
                ),
            ));
        }
        let wanted = Path::new(path);
        if !wanted.is_absolute() {
            return Err(invalid(
                tool,
                format!("files must be absolute paths; `{path}` is relative"),
            ));
        }
        // A root that does not exist admits nothing; nor does one whose name now leads elsewhere than at start-up
        // (a root missing then must be reached with no symbolic link), so nobody can turn a root into `/` or the
        // home directory by creating or swapping a link in its place.
        let roots: Vec<Root> = self
            .roots
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let root = Root::open(r).ok()?;
                let expected = match self.pinned.get(i) {
                    Some(Some(pinned)) => pinned.clone(),
                    _ => beneath::lexical(r),
                };
                (root.canonical == expected).then_some(root)
            })
            .collect();
        let mut refused = None;
        for root in &roots {
            if let Some(rel) = root.relative(wanted) {
                match beneath::open(root, rel, kind) {
                    Ok(opened) => return Ok(opened),
                    Err(r) => {
                        refused.get_or_insert(r);
                    }
                }
            }
        }
        // Climbing out and back (`root/../root/x`): `..` is taken by name, never by asking the filesystem about
        // what lies outside the roots (which would tell whether an outside directory exists), and the result is
        // opened beneath its root again.
        let named = beneath::lexical(wanted);
        if matches!(refused, None | Some(Refusal::Escapes)) && named.as_path() != wanted {
            for root in &roots {
                if let Some(rel) = root.relative(&named)
                    && let Ok(opened) = beneath::open(root, rel, kind)
                {
                    return Ok(opened);
                }
            }
        }
        let add = "add its directory to files.allowed_roots (EXAI_ALLOWED_ROOTS) to allow it";
        Err(invalid(
            tool,
            match refused {
                None => format!("`{path}` is outside the allowed roots ({}); {add}", self.roots_text()),
                Some(Refusal::Escapes) => format!(
                    "`{path}` is outside the allowed roots ({}): it leads out of them through `..` or a symbolic \
                     link, and files are only read beneath a root",
                    self.roots_text()
                ),
                Some(Refusal::TooManyLinks) => format!(
                    "cannot read `{path}`: more than {} symbolic links on the way",
                    beneath::MAX_SYMLINKS
                ),
                Some(Refusal::KernelFs) => {
                    format!("`{path}` is on a kernel filesystem (like /proc or /sys), which tools never read")
                }
                Some(Refusal::Io(e)) => format!("cannot read `{path}`: {e}"),
            },
        ))
    }

    /// Reads the regular file `opened` (named `path`), at most `max` bytes, from its descriptor: the size
    /// `fstat` reports is checked first, then the read itself stops past `max` (files under /proc report 0).
    /// `limit` ends the refusal: the rule and the setting.
    fn read_capped(tool: &str, path: &str, opened: Opened, max: u64, limit: &str) -> Result<Vec<u8>, ToolError> {
        if !rustix::fs::FileType::from_raw_mode(opened.stat.st_mode).is_file() {
            return Err(invalid(tool, format!("`{path}` is not a regular file")));
        }
        let size = opened.stat.st_size as u64;
        if size > max {
            return Err(invalid(tool, format!("`{path}` is {size} bytes; {limit}")));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::fs::File::from(opened.fd)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(tool, format!("cannot read `{path}`: {e}")))?;
        if bytes.len() as u64 > max {
            return Err(invalid(tool, format!("`{path}` is more than {max} bytes; {limit}")));
        }
        Ok(bytes)
    }

    /// Opens and reads `path` as text (blocking): files over `max_file_bytes` and binary files are refused,
    /// naming the file and the limit.
    fn read_text_now(&self, tool: &str, path: &str) -> Result<(FileId, String), ToolError> {
        let opened = self.open(tool, path, Kind::File)?;
        self.read_opened(tool, path, opened)
    }

    /// Reads the opened file `path` as text (see `read_text_now`).
    fn read_opened(&self, tool: &str, path: &str, opened: Opened) -> Result<(FileId, String), ToolError> {
        let id = FileId::of(&opened);
        let max = self.max_file_bytes;
        let limit = format!(
            "files may be at most {max} bytes (files.max_file_bytes, EXAI_MAX_FILE_BYTES); pass an excerpt instead"
        );
        let bytes = Self::read_capped(tool, path, opened, max, &limit)?;
        let binary = bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0);
        let text = (!binary)
            .then(|| String::from_utf8(bytes).ok())
            .flatten()
            .ok_or_else(|| {
                invalid(
                    tool,
                    format!(
                        "`{path}` is a binary file (not UTF-8 text); only text files can be sent, images go in `images`"
                    ),
                )
            })?;
        Ok((id, text))
    }

    /// Reads `path` as text (see `read_text_now`), off the async workers.
    pub async fn read_text(&self, tool: &str, path: &str) -> Result<(FileId, String), ToolError> {
        let (policy, tool, path) = (self.clone(), tool.to_owned(), path.to_owned());
        blocking(move || policy.read_text_now(&tool, &path)).await
    }

    /// Reads each path as text in one blocking task; each path's own outcome, in order. A file already read
    /// under another name (same device and inode: `a/../f`, `./f`, a link) is not read again: its outcome carries
    /// the same [`FileId`] and empty text, so a list of names for one large file cannot multiply its size.
    pub async fn read_texts(
        &self,
        tool: &str,
        paths: Vec<String>,
    ) -> Result<Vec<(String, Result<(FileId, String), ToolError>)>, ToolError> {
        let (policy, tool) = (self.clone(), tool.to_owned());
        blocking(move || {
            let mut seen: HashSet<FileId> = HashSet::new();
            Ok(paths
                .into_iter()
                .map(|p| {
                    let read = policy.open(&tool, &p, Kind::File).and_then(|opened| {
                        let id = FileId::of(&opened);
                        if seen.contains(&id) {
                            return Ok((id, String::new()));
                        }
                        let read = policy.read_opened(&tool, &p, opened)?;
                        seen.insert(id);
                        Ok(read)
                    });
                    (p, read)
                })
                .collect())
        })
        .await
    }

    /// Each path's size (opened beneath its root and `fstat`ed, nothing read), in one blocking task: what a
    /// caller fitting files to a budget needs before it reads any. A regular file's [`FileId`] and size.
    pub async fn sizes(
        &self,
        tool: &str,
        paths: Vec<String>,
    ) -> Result<Vec<(String, Result<(FileId, u64), ToolError>)>, ToolError> {
        let (policy, tool) = (self.clone(), tool.to_owned());
        blocking(move || {
            Ok(paths
                .into_iter()
                .map(|p| {
                    let sized = policy.open(&tool, &p, Kind::File).and_then(|opened| {
                        if !rustix::fs::FileType::from_raw_mode(opened.stat.st_mode).is_file() {
                            return Err(invalid(&tool, format!("`{p}` is not a regular file")));
                        }
                        Ok((FileId::of(&opened), opened.stat.st_size as u64))
                    });
                    (p, sized)
                })
                .collect())
        })
        .await
    }

    /// Checks that each path reads as text (as `read_texts` would), one file in memory at a time: the first
    /// refusal.
    pub async fn check_texts(&self, tool: &str, paths: Vec<String>) -> Result<(), ToolError> {
        let (policy, tool) = (self.clone(), tool.to_owned());
        blocking(move || {
            let mut seen: HashSet<FileId> = HashSet::new();
            for p in lists::unique(&paths) {
                let opened = policy.open(&tool, &p, Kind::File)?;
                if seen.insert(FileId::of(&opened)) {
                    policy.read_opened(&tool, &p, opened)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Checks that `path` is a directory beneath an allowed root and returns its resolved path (the canonical
    /// root joined with the real names walked, no symbolic links in it).
    pub async fn check_dir(&self, tool: &str, path: &str) -> Result<PathBuf, ToolError> {
        self.open_dir(tool, path).await.map(|(path, _)| path)
    }

    /// [`check_dir`](Self::check_dir), and the directory opened: work in it through the descriptor (a program's
    /// working directory set from it), never the path again, which may be swapped for a link meanwhile.
    pub async fn open_dir(&self, tool: &str, path: &str) -> Result<(PathBuf, std::os::fd::OwnedFd), ToolError> {
        let (policy, tool, path) = (self.clone(), tool.to_owned(), path.to_owned());
        blocking(move || {
            let opened = policy.open(&tool, &path, Kind::Dir)?;
            if !rustix::fs::FileType::from_raw_mode(opened.stat.st_mode).is_dir() {
                return Err(invalid(&tool, format!("`{path}` is not a directory")));
            }
            let resolved = opened
                .path
                .ok_or_else(|| ToolError::Internal("a directory was opened without its path".into()))?;
            Ok((resolved, opened.fd))
        })
        .await
    }
}

/// One file as a model sees it.
pub fn block(path: &str, text: &str) -> String {
    format!("\n--- BEGIN FILE: {path} ---\n{text}\n--- END FILE: {path} ---\n")
}

/// The files' contents as one block of text, and its token estimate. Each file must pass `policy`; the whole
/// must fit `budget_tokens` (a file that does not fit is refused with its size). A file named twice (by the same
/// path or another path to the same file) is sent once. Runs off the async workers.
pub async fn embed(
    tool: &str,
    paths: &[String],
    budget_tokens: usize,
    policy: &FilePolicy,
) -> Result<(String, usize), ToolError> {
    let (policy, tool, paths) = (policy.clone(), tool.to_owned(), lists::unique(paths));
    blocking(move || embed_now(&tool, &paths, budget_tokens, &policy)).await
}

fn embed_now(
    tool: &str,
    paths: &[String],
    budget_tokens: usize,
    policy: &FilePolicy,
) -> Result<(String, usize), ToolError> {
    let mut out = String::new();
    let mut used = 0;
    let mut seen: HashSet<FileId> = HashSet::new();
    for path in paths {
        let opened = policy.open(tool, path, Kind::File)?;
        if !seen.insert(FileId::of(&opened)) {
            continue;
        }
        let (_, text) = policy.read_opened(tool, path, opened)?;
        let cost = estimate_tokens(&text);
        if used + cost > budget_tokens {
            return Err(invalid(
                tool,
                format!(
                    "`{path}` is about {cost} tokens ({} KiB) and only {} of the {budget_tokens}-token file budget \
                     is left for this model; pass a smaller file, an excerpt in the prompt, or a model with a \
                     larger context",
                    text.len() / 1024,
                    budget_tokens.saturating_sub(used)
                ),
            ));
        }
        used += cost;
        out.push_str(&block(path, &text));
    }
    Ok((out, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(root: &Path, max: u64) -> FilePolicy {
        FilePolicy {
            roots: vec![root.to_path_buf()],
            pinned: Vec::new(),
            max_file_bytes: max,
            max_images: 8,
            max_image_total_bytes: 1 << 20,
        }
    }

    /// What git names (its directories, alternates) is checked with `contains`, which must honour the pinned roots
    /// as reads do: a root whose name is later swapped for a link elsewhere contains nothing.
    #[tokio::test]
    async fn contains_admits_nothing_through_a_root_swapped_for_a_link() {
        let base = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(base.path()).unwrap();
        let (root, outside) = (base.join("root"), base.join("outside"));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(outside.join("secret")).unwrap();
        let mut policy = policy(&root, 1 << 20);
        policy.pinned = vec![Some(root.clone())];
        assert!(policy.contains(&root.join("sub")).await);
        assert!(!policy.contains(&outside.join("secret")).await);
        std::fs::rename(&root, base.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, &root).unwrap();
        assert!(
            !policy.contains(&outside.join("secret")).await,
            "the swapped root's new target was taken for the root"
        );
        assert!(!policy.contains(&root.join("secret")).await);
        assert!(policy.current_roots().is_empty());
    }

    #[tokio::test]
    async fn embeds_files_within_budget_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let policy = policy(dir.path(), 1 << 20);
        let small = dir.path().join("small.rs");
        let big = dir.path().join("big.rs");
        std::fs::write(&small, "fn main() {}\n").unwrap();
        std::fs::write(&big, "x".repeat(8_000)).unwrap();
        let small = small.to_str().unwrap().to_owned();
        let big = big.to_str().unwrap().to_owned();

        let (text, used) = embed("chat", &[small.clone(), small.clone()], 1_000, &policy)
            .await
            .unwrap();
        assert!(text.contains("BEGIN FILE: ") && text.contains("fn main() {}"), "{text}");
        assert_eq!(text.matches("BEGIN FILE").count(), 1, "a repeated file is sent once");
        assert!(used > 0 && used < 10);

        let err = embed("chat", &[small, big.clone()], 1_000, &policy)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&big) && err.contains("2000 tokens") && err.contains("1000-token"),
            "{err}"
        );

        let err = embed("chat", &["relative.rs".to_owned()], 1_000, &policy)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("absolute paths"), "{err}");
        let missing = dir.path().join("missing.rs").to_str().unwrap().to_owned();
        let err = embed("chat", std::slice::from_ref(&missing), 1_000, &policy)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("cannot read `{missing}`")), "{err}");
        let err = embed("chat", &["/no/such/file.rs".to_owned()], 1_000, &policy)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is outside the allowed roots"), "{err}");
    }

    #[tokio::test]
    async fn outside_roots_symlink_escapes_binary_and_oversize_files_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.txt");
        std::fs::write(&secret, "top secret").unwrap();
        let policy = policy(root.path(), 100);
        let read = |p: PathBuf| {
            let policy = policy.clone();
            async move { policy.read_text("debug", p.to_str().unwrap()).await }
        };

        let err = read(secret.clone()).await.unwrap_err().to_string();
        assert!(
            err.contains("outside the allowed roots") && err.contains("EXAI_ALLOWED_ROOTS"),
            "{err}"
        );

        let traversal = root
            .path()
            .join("..")
            .join(outside.path().file_name().unwrap())
            .join("secret.txt");
        let err = read(traversal).await.unwrap_err().to_string();
        assert!(err.contains("outside the allowed roots"), "{err}");
        let outside_name = outside.path().to_str().unwrap();
        assert!(
            !err.contains("resolves to") && !err.contains(&format!("{outside_name}/")),
            "{err}"
        );

        // A link out of the root is refused without saying where it points.
        let link = root.path().join("link.txt");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let err = read(link).await.unwrap_err().to_string();
        assert!(
            err.contains("outside the allowed roots") && err.contains("symbolic link"),
            "{err}"
        );
        assert!(!err.contains(outside_name) && !err.contains("secret.txt"), "{err}");

        // A missing file outside the roots is refused the same way as an existing one (no existence oracle).
        let missing = outside.path().join("missing.txt");
        let err = read(missing).await.unwrap_err().to_string();
        assert!(
            err.contains("outside the allowed roots") && !err.contains("No such file"),
            "{err}"
        );

        let binary = root.path().join("a.bin");
        std::fs::write(&binary, [0u8, 159, 146, 150]).unwrap();
        let err = read(binary).await.unwrap_err().to_string();
        assert!(err.contains("binary file"), "{err}");

        let big = root.path().join("big.txt");
        std::fs::write(&big, "y".repeat(101)).unwrap();
        let err = read(big).await.unwrap_err().to_string();
        assert!(
            err.contains("is 101 bytes") && err.contains("at most 100 bytes"),
            "{err}"
        );

        let ok = root.path().join("ok.txt");
        std::fs::write(&ok, "fine").unwrap();
        assert_eq!(read(ok).await.unwrap().1, "fine");
    }

    const SECRET: &str = "SECRET-OUTSIDE-THE-ROOT";

    #[tokio::test]
    async fn an_overlong_path_is_refused_at_once_and_not_echoed_whole() {
        let root = tempfile::tempdir().unwrap();
        let policy = policy(root.path(), 1 << 20);
        // 100k components: the walk would open each one (no openat2), the refusal would repeat it all.
        let path = format!("{}/{}x", root.path().display(), "a/..//".repeat(20_000));
        let err = policy.read_text("chat", &path).await.unwrap_err().to_string();
        assert!(
            err.len() < 400 && err.contains("at most 4096 bytes"),
            "{}",
            &err[..err.len().min(400)]
        );
    }

    #[test]
    fn fifos_devices_sockets_and_directories_are_refused_without_blocking_or_reading() {
        use rustix::fs::{FileType, Mode, mknodat};
        let root = tempfile::tempdir().unwrap();
        let dir = rustix::fs::open(root.path(), rustix::fs::OFlags::DIRECTORY, Mode::empty()).unwrap();
        mknodat(&dir, "pipe", FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.path().join("sock")).unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        let mut names = vec!["pipe", "sock", "sub"];
        // A character device like /dev/zero (endless reads) can be made only by root.
        if mknodat(
            &dir,
            "zero",
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o644),
            rustix::fs::makedev(1, 5),
        )
        .is_ok()
        {
            names.push("zero");
        }
        let policy = policy(root.path(), 1 << 20);
        for name in names {
            let path = root.path().join(name).to_str().unwrap().to_owned();
            let (tx, rx) = std::sync::mpsc::channel();
            let (policy, p) = (policy.clone(), path.clone());
            std::thread::spawn(move || tx.send(policy.read_text_now("chat", &p).map(|r| r.1)));
            let read = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("reading {name} blocked"));
            let err = read.unwrap_err().to_string();
            assert!(err.contains(&format!("`{path}`")), "{name}: {err}");
        }
    }

    #[tokio::test]
    async fn a_root_whose_name_later_leads_elsewhere_admits_nothing() {
        use std::os::unix::fs::symlink;
        let base = tempfile::tempdir().unwrap();
        let read = |policy: FilePolicy, p: PathBuf| async move { policy.read_text("chat", p.to_str().unwrap()).await };
        // A root missing at start-up, then created by someone else as a link to `/`.
        let missing = base.path().join("not-yet");
        let later = policy(&missing, 1 << 20);
        symlink("/", &missing).unwrap();
        let err = read(later.clone(), missing.join("etc/passwd"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the allowed roots"), "{err}");
        // ... or as a link to a directory outside it.
        std::fs::remove_file(&missing).unwrap();
        std::fs::create_dir(base.path().join("elsewhere")).unwrap();
        std::fs::write(base.path().join("elsewhere/file.txt"), SECRET).unwrap();
        symlink(base.path().join("elsewhere"), &missing).unwrap();
        assert!(read(later.clone(), missing.join("file.txt")).await.is_err());
        // Created as a plain directory, it is a root like any other.
        std::fs::remove_file(&missing).unwrap();
        std::fs::create_dir(&missing).unwrap();
        std::fs::write(missing.join("file.txt"), "inside").unwrap();
        assert_eq!(read(later, missing.join("file.txt")).await.unwrap().1, "inside");
        // A root reached through a link at start-up keeps that target; the link swapped for another admits nothing.
        let real = base.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("file.txt"), "inside").unwrap();
        let current = base.path().join("current");
        symlink(&real, &current).unwrap();
        let mut pinned = policy(&current, 1 << 20);
        pinned.pinned = vec![Some(std::fs::canonicalize(&current).unwrap())];
        assert_eq!(
            read(pinned.clone(), current.join("file.txt")).await.unwrap().1,
            "inside"
        );
        std::fs::remove_file(&current).unwrap();
        symlink(base.path().join("elsewhere"), &current).unwrap();
        let err = read(pinned, current.join("file.txt")).await.unwrap_err().to_string();
        assert!(
            !err.contains(SECRET) && err.contains("outside the allowed roots"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn climbing_out_and_back_says_nothing_about_what_lies_outside() {
        let (base, root) = fixture();
        let policy = policy(&root, 1 << 20);
        let name = root.file_name().unwrap().to_str().unwrap();
        let via = |dir: &str| format!("{}/{dir}/../{name}/file.txt", base.path().display());
        // `outside` exists, `missing` does not: the outcome is the same, so it tells nothing about either.
        let exists = policy.read_text("chat", &via("outside")).await.map(|r| r.1);
        let missing = policy.read_text("chat", &via("missing")).await.map(|r| r.1);
        assert_eq!(exists.as_deref().ok(), Some("inside one"), "{exists:?}");
        assert_eq!(missing.as_deref().ok(), Some("inside one"), "{missing:?}");
        let back = format!("{}/../{name}/file.txt", root.display());
        assert_eq!(policy.read_text("chat", &back).await.unwrap().1, "inside one");
        let out = format!("{}/../outside/file.txt", root.display());
        assert!(policy.read_text("chat", &out).await.is_err());
    }

    #[tokio::test]
    async fn a_list_naming_one_file_many_ways_reads_it_once() {
        let (_base, root) = fixture();
        let policy = policy(&root, 1 << 20);
        let r = root.display();
        let names = vec![
            format!("{r}/file.txt"),
            format!("{r}/./file.txt"),
            format!("{r}/a/../file.txt"),
            format!("{r}/a/up/file.txt"),
            format!("{r}/a/file.txt"),
        ];
        let texts: Vec<String> = policy
            .read_texts("chat", names.clone())
            .await
            .unwrap()
            .into_iter()
            .map(|(_, read)| read.unwrap().1)
            .collect();
        assert_eq!(texts, ["inside one", "", "", "", "inside two"]);
        policy.check_texts("chat", names).await.unwrap();
        let err = policy
            .check_texts("chat", vec![format!("{r}/file.txt"), format!("{r}/secret_link")])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the allowed roots"), "{err}");
    }

    /// A root with links in and out of it, next to a secret: `base/{secret.txt, outside/file.txt, root/...}`.
    fn fixture() -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::symlink;
        let base = tempfile::tempdir().unwrap();
        let (root, outside) = (base.path().join("root"), base.path().join("outside"));
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(base.path().join("secret.txt"), SECRET).unwrap();
        std::fs::write(outside.join("file.txt"), SECRET).unwrap();
        std::fs::write(root.join("file.txt"), "inside one").unwrap();
        std::fs::write(root.join("a/file.txt"), "inside two").unwrap();
        symlink("../outside", root.join("link_out")).unwrap();
        symlink(&outside, root.join("abs_out")).unwrap();
        symlink("a", root.join("link_in")).unwrap();
        symlink(root.join("a"), root.join("abs_in")).unwrap();
        symlink("..", root.join("a/up")).unwrap();
        symlink("../..", root.join("a/upup")).unwrap();
        symlink("../secret.txt", root.join("secret_link")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        (base, root)
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_during_reads_never_yields_the_outside_file() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let (_base, root) = fixture();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/file.txt"), "inside").unwrap();
        let policy = policy(&root, 1 << 20);
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicUsize::new(0));
        // `d` is the real directory, then a symlink out of the root, as fast as it goes.
        let swapper = {
            let (stop, swaps, root) = (stop.clone(), swaps.clone(), root.clone());
            std::thread::spawn(move || {
                let d = root.join("d");
                while !stop.load(Ordering::Relaxed) {
                    for other in ["real", "link_out"] {
                        std::fs::rename(root.join(other), &d).unwrap();
                        std::fs::rename(&d, root.join(other)).unwrap();
                    }
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        while swaps.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        let path = root.join("d/file.txt").to_str().unwrap().to_owned();
        let rel = Path::new("d/file.txt");
        let opened_root = Root::open(&root).unwrap();
        let (mut tries, mut read, mut escaped) = (0, 0, 0);
        // At least 300 reads, and on until some got through (the swapper shares the cores with everything else).
        while tries < 300 || (read == 0 && tries < 100_000) {
            tries += 1;
            // Both strategies: the policy (openat2 first) and the walk on its own.
            let text = if tries % 2 == 0 {
                policy.read_text_now("chat", &path).ok().map(|(_, t)| t)
            } else {
                beneath::walk(&opened_root, rel, Kind::File).ok().map(|o| {
                    let mut t = String::new();
                    std::fs::File::from(o.fd).read_to_string(&mut t).unwrap();
                    t
                })
            };
            match text.as_deref() {
                Some(SECRET) => escaped += 1,
                Some(_) => read += 1,
                None => {}
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert_eq!(
            escaped, 0,
            "{escaped} of {tries} reads returned the file outside the root"
        );
        assert!(
            read > 0,
            "no read got through in {tries} tries: the race was not exercised"
        );
    }

    /// Random paths (`..`, links in and out, absolute and relative, NUL bytes, long names) against the fixture:
    /// nothing outside the root is ever read, and nothing panics.
    #[test]
    fn the_resolver_never_reads_outside_the_root() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let (base, root) = fixture();
        let policy = policy(&root, 1 << 20);
        let opened_root = Root::open(&root).unwrap();
        let segment = prop_oneof![
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just(String::new()),
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("file.txt".to_owned()),
            Just("secret.txt".to_owned()),
            Just("outside".to_owned()),
            Just("root".to_owned()),
            Just("link_out".to_owned()),
            Just("abs_out".to_owned()),
            Just("link_in".to_owned()),
            Just("abs_in".to_owned()),
            Just("up".to_owned()),
            Just("upup".to_owned()),
            Just("secret_link".to_owned()),
            Just("loop".to_owned()),
            Just("a\0b".to_owned()),
            Just("x".repeat(300)),
            "[a-z.]{1,4}",
        ];
        let prefix = prop_oneof![
            Just(root.to_str().unwrap().to_owned()),
            Just(base.path().to_str().unwrap().to_owned()),
            Just(String::new()),
            Just("/".to_owned()),
        ];
        let paths = (prefix, proptest::collection::vec(segment, 0..8))
            .prop_map(|(prefix, segments)| format!("{prefix}/{}", segments.join("/")));
        let mut runner = TestRunner::new(Config {
            cases: 512,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&paths, |path| {
                if let Ok((_, text)) = policy.read_text_now("chat", &path) {
                    prop_assert!(text.starts_with("inside"), "{path} read {text:?}");
                }
                let rel = path.trim_start_matches('/');
                // Both strategies on their own; a directory may come back (the policy refuses it), a file must
                // be one of the root's.
                type Open = fn(&Root, &Path, Kind) -> Result<Opened, Refusal>;
                for (name, open) in [("walk", beneath::walk as Open), ("open", beneath::open as Open)] {
                    if let Ok(o) = open(&opened_root, Path::new(rel), Kind::File)
                        && rustix::fs::FileType::from_raw_mode(o.stat.st_mode).is_file()
                    {
                        let mut text = String::new();
                        std::fs::File::from(o.fd).read_to_string(&mut text).unwrap();
                        prop_assert!(text.starts_with("inside"), "{name} {rel} read {text:?}");
                    }
                }
                if let Ok(dir) = policy_dir(&policy, &path) {
                    prop_assert!(dir.starts_with(&opened_root.canonical), "{path} -> {}", dir.display());
                }
                Ok(())
            })
            .unwrap();
    }

    fn policy_dir(policy: &FilePolicy, path: &str) -> Result<PathBuf, ToolError> {
        policy
            .open("precommit", path, Kind::Dir)?
            .path
            .ok_or_else(|| ToolError::Internal("no path".into()))
    }
}
