//! Fixture resources: two static resources, a watched one to subscribe to, and the template
//! `test://template/{id}/data`; unknown URIs are a `Resource not found` error, never empty contents.

use rmcp::ErrorData;
use rmcp::model::{ListResourceTemplatesResult, ListResourcesResult, ReadResourceResponse, ReadResourceResult};
use serde_json::{Value, json};

use super::content::PNG_1X1;

const STATIC_TEXT: &str = "test://static-text";
const STATIC_BINARY: &str = "test://static-binary";
const WATCHED: &str = "test://watched-resource";
const TEMPLATE: &str = "test://template/{id}/data";

/// `resources/list`, `test://static-text` first (the 2026 `caching` scenario reads the first one back).
pub fn list() -> Result<ListResourcesResult, ErrorData> {
    let resources = json!([
        {"uri": STATIC_TEXT, "name": "static-text", "title": "Static text",
         "description": "A fixed text resource.", "mimeType": "text/plain"},
        {"uri": STATIC_BINARY, "name": "static-binary", "title": "Static binary",
         "description": "A fixed 1x1 PNG.", "mimeType": "image/png"},
        {"uri": WATCHED, "name": "watched-resource", "title": "Watched resource",
         "description": "A resource clients may subscribe to.", "mimeType": "text/plain"}
    ]);
    Ok(ListResourcesResult::with_all_items(parse!(resources)?))
}

pub fn templates() -> Result<ListResourceTemplatesResult, ErrorData> {
    let templates = json!([{"uriTemplate": TEMPLATE, "name": "template", "title": "Template",
                            "description": "JSON data for any id.", "mimeType": "application/json"}]);
    Ok(ListResourceTemplatesResult::with_all_items(parse!(templates)?))
}

pub fn read(uri: &str) -> Result<ReadResourceResponse, ErrorData> {
    let contents = contents(uri).ok_or_else(|| not_found(uri))?;
    let result: ReadResourceResult = parse!(json!({"resultType": "complete", "contents": [contents]}))?;
    Ok(result.into())
}

/// `resources/subscribe` and `resources/unsubscribe` accept any readable URI.
pub fn check_known(uri: &str) -> Result<(), ErrorData> {
    contents(uri).map(|_| ()).ok_or_else(|| not_found(uri))
}

fn contents(uri: &str) -> Option<Value> {
    let text = |mime: &str, text: &str| json!({"uri": uri, "mimeType": mime, "text": text});
    match uri {
        STATIC_TEXT => Some(text("text/plain", "This is the content of the static text resource.")),
        STATIC_BINARY => Some(json!({"uri": uri, "mimeType": "image/png", "blob": PNG_1X1})),
        WATCHED => Some(text("text/plain", "Watched resource content")),
        _ => {
            let id = template_id(uri)?;
            let data = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            Some(text("application/json", &data.to_string()))
        }
    }
}

/// The `{id}` of a `test://template/{id}/data` URI (one non-empty path segment).
fn template_id(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix("test://template/")?.strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// rmcp sends this as -32602 to 2026 peers and -32002 to older ones.
fn not_found(uri: &str) -> ErrorData {
    ErrorData::resource_not_found("Resource not found", Some(json!({ "uri": uri })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_json(uri: &str) -> Value {
        match read(uri).unwrap() {
            ReadResourceResponse::Complete(r) => serde_json::to_value(r).unwrap(),
            _ => panic!("not complete"),
        }
    }

    #[test]
    fn every_listed_resource_is_readable_and_static_text_is_first() {
        let listed = list().unwrap();
        assert_eq!(listed.resources[0].uri, STATIC_TEXT);
        for r in &listed.resources {
            assert_eq!(read_json(&r.uri)["contents"][0]["uri"], json!(r.uri));
        }
        assert_eq!(read_json(STATIC_BINARY)["contents"][0]["blob"], json!(PNG_1X1));
    }

    #[test]
    fn template_reads_echo_the_id_and_unknown_uris_are_errors() {
        let text = read_json("test://template/123/data")["contents"][0]["text"].clone();
        let data: Value = serde_json::from_str(text.as_str().unwrap()).unwrap();
        assert_eq!(
            data,
            json!({"id": "123", "templateTest": true, "data": "Data for ID: 123"})
        );
        for uri in [
            "test://nonexistent",
            "test://template//data",
            "test://template/a/b/data",
        ] {
            let err = read(uri).unwrap_err();
            assert_eq!(err.data, Some(json!({ "uri": uri })), "{uri}");
        }
    }
}
