//! Images for vision models: `data:`/`https:` URLs pass through, paths (opened beneath an allowed root) become
//! data URLs. One request lists at most `files.max_images` images and sends at most
//! `files.max_image_total_bytes` (data URLs count too); a repeated image is sent once.

use std::collections::HashSet;
use std::path::Path;

use base64::Engine;

use super::beneath::Kind;
use super::{FileId, FilePolicy, blocking, invalid};
use crate::error::ToolError;

/// What to do with each image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Check the count, the paths and the sizes (fstat only).
    Check,
    /// ... and read each file into a data URL.
    Encode,
}

/// Each distinct image as a URL a vision model accepts. Runs off the async workers.
pub async fn image_urls(tool: &str, images: &[String], policy: &FilePolicy) -> Result<Vec<String>, ToolError> {
    run(tool, images, policy, Mode::Encode).await
}

/// Checks `images` as [`image_urls`] would send them, without reading the files.
pub async fn check(tool: &str, images: &[String], policy: &FilePolicy) -> Result<(), ToolError> {
    run(tool, images, policy, Mode::Check).await.map(drop)
}

async fn run(tool: &str, images: &[String], policy: &FilePolicy, mode: Mode) -> Result<Vec<String>, ToolError> {
    // The count first, before anything is copied: a list of a thousand copies is refused at once.
    if images.len() > policy.max_images {
        return Err(invalid(
            tool,
            format!(
                "`images` holds {} entries; at most {} images are accepted in one request (files.max_images, \
                 EXAI_MAX_IMAGES)",
                images.len(),
                policy.max_images
            ),
        ));
    }
    let (policy, tool, images) = (policy.clone(), tool.to_owned(), images.to_vec());
    blocking(move || urls(&tool, &images, &policy, mode)).await
}

fn mime(path: &str) -> Option<&'static str> {
    match Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => Some("image/png"),
        Some("jpg" | "jpeg") => Some("image/jpeg"),
        Some("gif") => Some("image/gif"),
        Some("webp") => Some("image/webp"),
        _ => None,
    }
}

fn urls(tool: &str, images: &[String], policy: &FilePolicy, mode: Mode) -> Result<Vec<String>, ToolError> {
    let max = policy.max_image_total_bytes;
    let over = |at: &str, total: u64| {
        invalid(
            tool,
            format!(
                "the images add up to {total} bytes at {at}; at most {max} image bytes are accepted in one request \
                 (files.max_image_total_bytes, EXAI_MAX_IMAGE_TOTAL_BYTES); send fewer or smaller images"
            ),
        )
    };
    let mut sent: HashSet<&str> = HashSet::new();
    let mut files: HashSet<FileId> = HashSet::new();
    let mut total = 0u64;
    let mut out = Vec::new();
    for (i, image) in images.iter().enumerate() {
        if !sent.insert(image) {
            continue;
        }
        if image.starts_with("https://") {
            out.push(image.clone());
            continue;
        }
        if let Some(rest) = image.strip_prefix("data:image/") {
            // What the image weighs decoded: 3 bytes for every 4 base64 characters.
            let payload = rest.split_once(',').map_or(rest.len(), |(_, data)| data.len());
            total += payload as u64 / 4 * 3;
            if total > max {
                return Err(over(&format!("images[{i}] (a data: URL)"), total));
            }
            out.push(image.clone());
            continue;
        }
        if !Path::new(image).is_absolute() {
            let shown: String = image.chars().take(80).collect();
            let cut = if shown.len() < image.len() { "…" } else { "" };
            return Err(invalid(
                tool,
                format!("images must be absolute paths or data:image/ URLs; `{shown}{cut}` is neither"),
            ));
        }
        let Some(mime) = mime(image) else {
            return Err(invalid(
                tool,
                format!("`{image}` is not a png, jpeg, gif or webp image"),
            ));
        };
        let opened = policy.open(tool, image, Kind::File)?;
        if !files.insert(FileId::of(&opened)) {
            continue;
        }
        let size = opened.stat.st_size as u64;
        if total + size > max {
            return Err(over(&format!("`{image}`"), total + size));
        }
        if mode == Mode::Check {
            total += size;
            continue;
        }
        let limit = format!(
            "with the images before it that is over {max} image bytes (files.max_image_total_bytes, \
             EXAI_MAX_IMAGE_TOTAL_BYTES)"
        );
        let bytes = FilePolicy::read_capped(tool, image, opened, max - total, &limit)?;
        total += bytes.len() as u64;
        out.push(format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(root: &Path) -> FilePolicy {
        FilePolicy {
            roots: vec![root.to_path_buf()],
            max_file_bytes: 1 << 20,
            max_images: 4,
            max_image_total_bytes: 100,
        }
    }

    fn s(p: &Path) -> String {
        p.to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn images_become_data_urls_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("a.png");
        std::fs::write(&png, [0x89, b'P', b'N', b'G']).unwrap();
        let link = dir.path().join("same.png");
        std::os::unix::fs::symlink(&png, &link).unwrap();
        let data = "data:image/png;base64,AAAA".to_owned();
        let urls = image_urls(
            "chat",
            &[s(&png), data.clone(), s(&link), data.clone()],
            &policy(dir.path()),
        )
        .await
        .unwrap();
        assert_eq!(urls, ["data:image/png;base64,iVBORw==", "data:image/png;base64,AAAA"]);
        let err = image_urls("chat", &["/x/a.bmp".into()], &policy(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a png"), "{err}");
    }

    #[tokio::test]
    async fn count_and_total_bytes_are_capped_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let copies = vec!["data:image/png;base64,AAAA".to_owned(); 1_000];
        let err = image_urls("chat", &copies, &policy(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`images` holds 1000 entries; at most 4 images") && err.contains("EXAI_MAX_IMAGES"),
            "{err}"
        );
        let big = dir.path().join("big.png");
        std::fs::write(&big, [7u8; 80]).unwrap();
        let other = dir.path().join("other.png");
        std::fs::write(&other, [8u8; 30]).unwrap();
        let images = [s(&big), s(&other)];
        for check_only in [false, true] {
            let err = if check_only {
                check("chat", &images, &policy(dir.path())).await
            } else {
                image_urls("chat", &images, &policy(dir.path())).await.map(drop)
            }
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("add up to 110 bytes") && err.contains("files.max_image_total_bytes"),
                "{err}"
            );
        }
        let data = format!("data:image/png;base64,{}", "A".repeat(200));
        let err = image_urls("chat", &[data], &policy(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("images[0] (a data: URL)") && err.contains("at most 100"),
            "{err}"
        );
    }
}
