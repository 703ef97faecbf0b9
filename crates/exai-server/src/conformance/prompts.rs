//! Fixture prompts (simple, with arguments, with an embedded resource, with an image, and an MRTR prompt
//! that asks the client for input first) and argument completion for them.

use rmcp::ErrorData;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptRequestParams, GetPromptResponse, GetPromptResult,
    JsonObject, ListPromptsResult, Reference,
};
use serde_json::{Value, json};

use super::content::PNG_1X1;
use super::mrtr;

const WITH_ARGUMENTS: &str = "test_prompt_with_arguments";
const MRTR_PROMPT: &str = "test_input_required_result_prompt";

pub fn list() -> Result<ListPromptsResult, ErrorData> {
    let arg = |name: &str, description: &str| json!({"name": name, "description": description, "required": true});
    let prompts = json!([
        {"name": "test_simple_prompt", "description": "Conformance fixture: a fixed user message."},
        {"name": WITH_ARGUMENTS, "description": "Conformance fixture: a message quoting both arguments.",
         "arguments": [arg("arg1", "First argument"), arg("arg2", "Second argument")]},
        {"name": "test_prompt_with_embedded_resource", "description": "Conformance fixture: embeds a resource.",
         "arguments": [arg("resourceUri", "URI of the resource to embed")]},
        {"name": "test_prompt_with_image", "description": "Conformance fixture: a message with an image."},
        {"name": MRTR_PROMPT, "description": "Conformance fixture: asks the client for context first (2026 MRTR)."}
    ]);
    Ok(ListPromptsResult::with_all_items(parse!(prompts)?))
}

pub fn get(request: GetPromptRequestParams) -> Result<GetPromptResponse, ErrorData> {
    let args = request.arguments.clone().unwrap_or_default();
    let messages = match request.name.as_str() {
        "test_simple_prompt" => json!([user_text("This is a simple prompt for testing.")]),
        WITH_ARGUMENTS => {
            let (a1, a2) = (arg(&args, "arg1")?, arg(&args, "arg2")?);
            json!([user_text(&format!("Prompt with arguments: arg1='{a1}', arg2='{a2}'"))])
        }
        "test_prompt_with_embedded_resource" => {
            let uri = arg(&args, "resourceUri")?;
            json!([
                {"role": "user", "content": {"type": "resource", "resource": {
                    "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                user_text("Please process the embedded resource above.")
            ])
        }
        "test_prompt_with_image" => json!([
            {"role": "user", "content": {"type": "image", "data": PNG_1X1, "mimeType": "image/png"}},
            user_text("Please analyze the image above.")
        ]),
        MRTR_PROMPT => match mrtr::prompt_context(&request)? {
            Ok(context) => json!([user_text(&format!("Use this context: {context}"))]),
            Err(input_required) => return Ok(input_required.into()),
        },
        other => {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt `{other}`"),
                Some(json!({ "name": other })),
            ));
        }
    };
    let result: GetPromptResult = parse!(json!({"resultType": "complete", "messages": messages}))?;
    Ok(result.into())
}

/// Completes prompt arguments from a fixed candidate list; anything else completes to no values.
pub fn complete(request: CompleteRequestParams) -> Result<CompleteResult, ErrorData> {
    let candidates: &[&str] = match &request.r#ref {
        Reference::Prompt(p) if p.name == WITH_ARGUMENTS => &["test1", "test2", "testValue1", "testValue2", "other"],
        _ => &[],
    };
    let prefix = request.argument.value.as_str();
    let values = candidates
        .iter()
        .filter(|c| c.starts_with(prefix))
        .map(|c| c.to_string())
        .collect();
    let info = CompletionInfo::new(values).map_err(|e| ErrorData::internal_error(e, None))?;
    Ok(CompleteResult::new(info))
}

fn user_text(text: &str) -> Value {
    json!({"role": "user", "content": {"type": "text", "text": text}})
}

fn arg(args: &JsonObject, name: &str) -> Result<String, ErrorData> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(ErrorData::invalid_params(
            format!("missing required string argument `{name}`"),
            Some(json!({ "argument": name })),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_json(name: &str, args: Value) -> Value {
        let mut request = GetPromptRequestParams::new(name);
        request.arguments = args.as_object().cloned();
        match get(request).unwrap() {
            GetPromptResponse::Complete(r) => serde_json::to_value(r).unwrap(),
            _ => panic!("{name} is not complete"),
        }
    }

    #[test]
    fn fixed_prompts_render() {
        let args = get_json(WITH_ARGUMENTS, json!({"arg1": "testValue1", "arg2": "testValue2"}));
        let text = args["messages"][0]["content"]["text"].as_str().unwrap();
        assert!(text.contains("testValue1") && text.contains("testValue2"));
        let embedded = get_json(
            "test_prompt_with_embedded_resource",
            json!({"resourceUri": "test://example-resource"}),
        );
        assert_eq!(
            embedded["messages"][0]["content"]["resource"]["uri"],
            "test://example-resource"
        );
        assert_eq!(
            get_json("test_prompt_with_image", json!({}))["messages"][0]["content"]["type"],
            "image"
        );
        assert!(
            get(GetPromptRequestParams::new(WITH_ARGUMENTS)).is_err(),
            "missing arguments"
        );
    }

    #[test]
    fn completion_filters_by_prefix() {
        let request = |name: &str, value: &str| {
            CompleteRequestParams::new(
                Reference::for_prompt(name),
                rmcp::model::ArgumentInfo::new("arg1", value),
            )
        };
        let values = complete(request(WITH_ARGUMENTS, "test")).unwrap().completion.values;
        assert_eq!(values, ["test1", "test2", "testValue1", "testValue2"]);
        assert!(complete(request("nope", "")).unwrap().completion.values.is_empty());
    }
}
