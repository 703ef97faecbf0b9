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
    pub max_file_bytes: u64,
    pub max_images: usize,
    pub max_image_total_bytes: u64,
}

impl FilePolicy {
    pub fn new(config: &FilesConfig) -> Self {
        Self {
            roots: config.allowed_roots.clone(),
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
        let Ok(canonical) = tokio::fs::canonicalize(path).await else {
            return false;
        };
        for root in &self.roots {
            if let Ok(root) = tokio::fs::canonicalize(root).await
                && canonical.starts_with(&root)
            {
                return true;
            }
        }
        false
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
        let wanted = Path::new(path);
        if !wanted.is_absolute() {
            return Err(invalid(
                tool,
                format!("files must be absolute paths; `{path}` is relative"),
            ));
        }
        // A root that does not exist admits nothing.
        let roots: Vec<Root> = self.roots.iter().filter_map(|r| Root::open(r).ok()).collect();
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
        // Named outside every root, or climbing out and back (`root/../root/x`): the path may still reach a root
        // through links the system resolves; whatever it resolves to is then opened beneath that root again, so
        // nothing outside is ever read.
        if matches!(refused, None | Some(Refusal::Escapes))
            && let Ok(real) = std::fs::canonicalize(wanted)
        {
            for root in &roots {
                if let Some(rel) = root.relative(&real)
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

    /// Reads each path as text in one blocking task; each path's own outcome, in order.
    pub async fn read_texts(
        &self,
        tool: &str,
        paths: Vec<String>,
    ) -> Result<Vec<(String, Result<(FileId, String), ToolError>)>, ToolError> {
        let (policy, tool) = (self.clone(), tool.to_owned());
        blocking(move || {
            Ok(paths
                .into_iter()
                .map(|p| {
                    let read = policy.read_text_now(&tool, &p);
                    (p, read)
                })
                .collect())
        })
        .await
    }

    /// Checks that `path` is a directory beneath an allowed root and returns its resolved path (the canonical
    /// root joined with the real names walked, no symbolic links in it).
    pub async fn check_dir(&self, tool: &str, path: &str) -> Result<PathBuf, ToolError> {
        let (policy, tool, path) = (self.clone(), tool.to_owned(), path.to_owned());
        blocking(move || {
            let opened = policy.open(&tool, &path, Kind::Dir)?;
            if !rustix::fs::FileType::from_raw_mode(opened.stat.st_mode).is_dir() {
                return Err(invalid(&tool, format!("`{path}` is not a directory")));
            }
            opened
                .path
                .ok_or_else(|| ToolError::Internal("a directory was opened without its path".into()))
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
        let (id, text) = policy.read_text_now(tool, path)?;
        if !seen.insert(id) {
            continue;
        }
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
            max_file_bytes: max,
            max_images: 8,
            max_image_total_bytes: 1 << 20,
        }
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
