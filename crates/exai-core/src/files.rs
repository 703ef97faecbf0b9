//! Files and images a caller passes to a model tool: absolute paths only, canonicalised and checked against the
//! allowed roots (symlink escapes refused), text only and size-capped, embedded within a token budget.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::config::FilesConfig;
use crate::conversation::estimate_tokens;
use crate::error::ToolError;

/// Largest image accepted, before base64.
const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;

/// Bytes inspected for NUL when deciding whether a file is binary.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

fn invalid(tool: &str, message: String) -> ToolError {
    ToolError::InvalidArguments {
        tool: tool.to_owned(),
        message,
    }
}

/// Where tools may read files from and how large a file may be (`files.*` in the config).
#[derive(Debug, Clone)]
pub struct FilePolicy {
    /// Absolute directories; a file must resolve (symlinks followed) to a path inside one of them.
    pub roots: Vec<PathBuf>,
    pub max_file_bytes: u64,
}

impl FilePolicy {
    pub fn new(config: &FilesConfig) -> Self {
        Self {
            roots: config.allowed_roots.clone(),
            max_file_bytes: config.max_file_bytes,
        }
    }

    /// Checks `path` and returns its canonical form: absolute, resolving inside an allowed root, a regular
    /// file. Refusals name the path and the rule.
    pub async fn check(&self, tool: &str, path: &str) -> Result<PathBuf, ToolError> {
        let canonical = self.inside(tool, path).await?;
        let meta = tokio::fs::metadata(&canonical)
            .await
            .map_err(|e| invalid(tool, format!("cannot read `{path}`: {e}")))?;
        if !meta.is_file() {
            return Err(invalid(tool, format!("`{path}` is not a regular file")));
        }
        Ok(canonical)
    }

    /// Like [`FilePolicy::check`], for a directory.
    pub async fn check_dir(&self, tool: &str, path: &str) -> Result<PathBuf, ToolError> {
        let canonical = self.inside(tool, path).await?;
        if !tokio::fs::metadata(&canonical).await.is_ok_and(|m| m.is_dir()) {
            return Err(invalid(tool, format!("`{path}` is not a directory")));
        }
        Ok(canonical)
    }

    /// Whether `path` resolves (symlinks followed) inside an allowed root: false when it resolves nowhere.
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

    /// `path`'s canonical form, if it is absolute and resolves inside an allowed root.
    async fn inside(&self, tool: &str, path: &str) -> Result<PathBuf, ToolError> {
        if !Path::new(path).is_absolute() {
            return Err(invalid(
                tool,
                format!("files must be absolute paths; `{path}` is relative"),
            ));
        }
        let canonical = tokio::fs::canonicalize(path)
            .await
            .map_err(|e| invalid(tool, format!("cannot read `{path}`: {e}")))?;
        let mut inside = false;
        for root in &self.roots {
            // A root that does not exist admits nothing; one reached through a symlink counts as its target.
            if let Ok(root) = tokio::fs::canonicalize(root).await
                && canonical.starts_with(&root)
            {
                inside = true;
                break;
            }
        }
        if !inside {
            let roots = self
                .roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let resolved = if canonical == Path::new(path) {
                String::new()
            } else {
                format!(" resolves to `{}`, which", canonical.display())
            };
            return Err(invalid(
                tool,
                format!(
                    "`{path}`{resolved} is outside the allowed roots ({roots}); add its directory to \
                     files.allowed_roots (EXAI_ALLOWED_ROOTS) to allow it"
                ),
            ));
        }
        Ok(canonical)
    }

    /// Checks `path` (see [`FilePolicy::check`]) and reads it as text: files over `max_file_bytes` and binary
    /// files are refused, naming the file and the limit.
    pub async fn read_text(&self, tool: &str, path: &str) -> Result<(PathBuf, String), ToolError> {
        let canonical = self.check(tool, path).await?;
        let size = tokio::fs::metadata(&canonical)
            .await
            .map_err(|e| invalid(tool, format!("cannot read `{path}`: {e}")))?
            .len();
        if size > self.max_file_bytes {
            return Err(invalid(
                tool,
                format!(
                    "`{path}` is {size} bytes; files may be at most {} bytes (files.max_file_bytes, \
                     EXAI_MAX_FILE_BYTES); pass an excerpt instead",
                    self.max_file_bytes
                ),
            ));
        }
        let bytes = tokio::fs::read(&canonical)
            .await
            .map_err(|e| invalid(tool, format!("cannot read `{path}`: {e}")))?;
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
        Ok((canonical, text))
    }
}

/// One file as a model sees it.
pub fn block(path: &str, text: &str) -> String {
    format!("\n--- BEGIN FILE: {path} ---\n{text}\n--- END FILE: {path} ---\n")
}

/// The files' contents as one block of text, and its token estimate. Each file must pass `policy`; the whole
/// must fit `budget_tokens` (a file that does not fit is refused with its size).
pub async fn embed(
    tool: &str,
    paths: &[String],
    budget_tokens: usize,
    policy: &FilePolicy,
) -> Result<(String, usize), ToolError> {
    let mut out = String::new();
    let mut used = 0;
    let mut seen: Vec<PathBuf> = Vec::new();
    for path in paths {
        let (canonical, text) = policy.read_text(tool, path).await?;
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
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

/// Each image as a URL a vision model accepts: `data:`/`https:` URLs pass through, paths (checked against
/// `policy`'s roots) become data URLs.
pub async fn image_urls(tool: &str, images: &[String], policy: &FilePolicy) -> Result<Vec<String>, ToolError> {
    let mut urls = Vec::with_capacity(images.len());
    for image in images {
        if image.starts_with("data:image/") || image.starts_with("https://") {
            urls.push(image.clone());
            continue;
        }
        if !Path::new(image).is_absolute() {
            return Err(invalid(
                tool,
                format!("images must be absolute paths or data URLs; `{image}` is neither"),
            ));
        }
        let mime = match Path::new(image)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "png" => "image/png",
            Some(e) if e == "jpg" || e == "jpeg" => "image/jpeg",
            Some(e) if e == "gif" => "image/gif",
            Some(e) if e == "webp" => "image/webp",
            _ => {
                return Err(invalid(
                    tool,
                    format!("`{image}` is not a png, jpeg, gif or webp image"),
                ));
            }
        };
        let canonical = policy.check(tool, image).await?;
        let meta = tokio::fs::metadata(&canonical)
            .await
            .map_err(|e| invalid(tool, format!("cannot read `{image}`: {e}")))?;
        if meta.len() > MAX_IMAGE_BYTES {
            return Err(invalid(
                tool,
                format!("`{image}` is {} bytes; images may be at most 10 MiB", meta.len()),
            ));
        }
        let bytes = tokio::fs::read(&canonical)
            .await
            .map_err(|e| invalid(tool, format!("cannot read `{image}`: {e}")))?;
        urls.push(format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ));
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(root: &Path, max: u64) -> FilePolicy {
        FilePolicy {
            roots: vec![root.to_path_buf()],
            max_file_bytes: max,
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
        let err = embed("chat", &["/no/such/file.rs".to_owned()], 1_000, &policy)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read `/no/such/file.rs`"), "{err}");
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
        assert!(
            err.contains("resolves to") && err.contains("outside the allowed roots"),
            "{err}"
        );

        let link = root.path().join("link.txt");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let err = read(link).await.unwrap_err().to_string();
        assert!(
            err.contains("resolves to") && err.contains("outside the allowed roots"),
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

    #[tokio::test]
    async fn images_become_data_urls() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("a.png");
        std::fs::write(&png, [0x89, b'P', b'N', b'G']).unwrap();
        let urls = image_urls(
            "chat",
            &[png.to_str().unwrap().to_owned(), "data:image/png;base64,AAAA".into()],
            &policy(dir.path(), 1 << 20),
        )
        .await
        .unwrap();
        assert_eq!(urls[0], "data:image/png;base64,iVBORw==");
        assert_eq!(urls[1], "data:image/png;base64,AAAA");
        let err = image_urls("chat", &["/x/a.bmp".into()], &policy(dir.path(), 1 << 20))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a png"), "{err}");
    }
}
