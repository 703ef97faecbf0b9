//! Files and images a caller passes to a model tool: absolute paths only, file text embedded within a
//! token budget (an oversize file is refused with its size), images turned into data URLs for vision models.

use std::path::Path;

use base64::Engine;

use crate::conversation::estimate_tokens;
use crate::error::ToolError;

/// Largest image accepted, before base64.
const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;

fn invalid(tool: &str, message: String) -> ToolError {
    ToolError::InvalidArguments {
        tool: tool.to_owned(),
        message,
    }
}

/// The files' contents as one block of text, and its token estimate. Each file must be an absolute path
/// to a readable text file; the whole must fit `budget_tokens`.
pub async fn embed(tool: &str, paths: &[String], budget_tokens: usize) -> Result<(String, usize), ToolError> {
    let mut out = String::new();
    let mut used = 0;
    for path in paths {
        if !Path::new(path).is_absolute() {
            return Err(invalid(
                tool,
                format!("files must be absolute paths; `{path}` is relative"),
            ));
        }
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| invalid(tool, format!("cannot read `{path}`: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            invalid(
                tool,
                format!("`{path}` is not UTF-8 text; pass images in `images` instead"),
            )
        })?;
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
        out.push_str(&format!(
            "\n--- BEGIN FILE: {path} ---\n{text}\n--- END FILE: {path} ---\n"
        ));
    }
    Ok((out, used))
}

/// Each image as a URL a vision model accepts: `data:`/`https:` URLs pass through, paths become data URLs.
pub async fn image_urls(tool: &str, images: &[String]) -> Result<Vec<String>, ToolError> {
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
        let meta = tokio::fs::metadata(image)
            .await
            .map_err(|e| invalid(tool, format!("cannot read `{image}`: {e}")))?;
        if meta.len() > MAX_IMAGE_BYTES {
            return Err(invalid(
                tool,
                format!("`{image}` is {} bytes; images may be at most 10 MiB", meta.len()),
            ));
        }
        let bytes = tokio::fs::read(image)
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

    #[tokio::test]
    async fn embeds_files_within_budget_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.rs");
        let big = dir.path().join("big.rs");
        std::fs::write(&small, "fn main() {}\n").unwrap();
        std::fs::write(&big, "x".repeat(8_000)).unwrap();
        let small = small.to_str().unwrap().to_owned();
        let big = big.to_str().unwrap().to_owned();

        let (text, used) = embed("chat", std::slice::from_ref(&small), 1_000).await.unwrap();
        assert!(text.contains("BEGIN FILE: ") && text.contains("fn main() {}"), "{text}");
        assert!(used > 0 && used < 10);

        let err = embed("chat", &[small, big.clone()], 1_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&big) && err.contains("2000 tokens") && err.contains("1000-token"),
            "{err}"
        );

        let err = embed("chat", &["relative.rs".to_owned()], 1_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("absolute paths"), "{err}");
        let err = embed("chat", &["/no/such/file.rs".to_owned()], 1_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read `/no/such/file.rs`"), "{err}");
    }

    #[tokio::test]
    async fn images_become_data_urls() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("a.png");
        std::fs::write(&png, [0x89, b'P', b'N', b'G']).unwrap();
        let urls = image_urls(
            "chat",
            &[png.to_str().unwrap().to_owned(), "data:image/png;base64,AAAA".into()],
        )
        .await
        .unwrap();
        assert_eq!(urls[0], "data:image/png;base64,iVBORw==");
        assert_eq!(urls[1], "data:image/png;base64,AAAA");
        let err = image_urls("chat", &["/x/a.bmp".into()]).await.unwrap_err().to_string();
        assert!(err.contains("not a png"), "{err}");
    }
}
