//! 2026-07-28 fixtures that need client input: tools (and a prompt) answering with `InputRequiredResult`
//! (SEP-2322 MRTR) until the retry carries the answers, with an integrity-checked `requestState`.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, GetPromptRequestParams, InputRequest,
    InputRequiredResult, InputResponses, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::{no_args, stateless, text_result, tool};

/// What a fixture does with one round: finish, or ask for input (with an optional state to echo back).
enum Round {
    Done(String),
    Ask(Vec<(&'static str, Value)>, Option<String>),
}

const TOOLS: [(&str, &str); 10] = [
    (
        "test_missing_capability",
        "Conformance fixture: needs the client's sampling capability.",
    ),
    (
        "test_streaming_elicitation",
        "Conformance fixture: asks for input without a server-to-client request.",
    ),
    (
        "test_input_required_result_elicitation",
        "Conformance fixture: asks the user's name (MRTR elicitation).",
    ),
    (
        "test_input_required_result_sampling",
        "Conformance fixture: asks the client's model (MRTR sampling).",
    ),
    (
        "test_input_required_result_list_roots",
        "Conformance fixture: asks for the client's roots (MRTR).",
    ),
    (
        "test_input_required_result_request_state",
        "Conformance fixture: MRTR with an echoed requestState.",
    ),
    (
        "test_input_required_result_multiple_inputs",
        "Conformance fixture: three MRTR input requests at once.",
    ),
    (
        "test_input_required_result_multi_round",
        "Conformance fixture: two MRTR rounds before completing.",
    ),
    (
        "test_input_required_result_tampered_state",
        "Conformance fixture: rejects a tampered requestState.",
    ),
    (
        "test_input_required_result_capabilities",
        "Conformance fixture: asks only for what the client supports.",
    ),
];

pub fn tools() -> Vec<Tool> {
    TOOLS
        .iter()
        .map(|(name, description)| tool(name, description, no_args()))
        .collect()
}

pub fn call(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Option<Result<CallToolResponse, ErrorData>> {
    let name = request.name.as_ref();
    if !TOOLS.iter().any(|(n, _)| *n == name) {
        return None;
    }
    let caps = declared(context.client_capabilities());
    if name == "test_missing_capability" && !caps.contains(&"sampling") {
        let sampling: Result<ClientCapabilities, _> = parse!(json!({"sampling": {}}));
        return Some(sampling.and_then(|c| Err(ErrorData::missing_required_client_capability(c))));
    }
    if !stateless(context) {
        return Some(text_result(format!(
            "{name} needs protocol 2026-07-28 (input_required results); nothing to do in this session"
        )));
    }
    let empty = InputResponses::new();
    let responses = request.input_responses.as_ref().unwrap_or(&empty);
    let state = request.request_state.as_deref();
    Some(round(name, responses, state, &caps).and_then(|r| respond(r, text_result)))
}

/// The MRTR prompt: `Ok(context)` once the client answered, else the input request to send.
pub fn prompt_context(request: &GetPromptRequestParams) -> Result<Result<String, InputRequiredResult>, ErrorData> {
    let empty = InputResponses::new();
    let responses = request.input_responses.as_ref().unwrap_or(&empty);
    match elicited(responses, "user_context", "context")? {
        Some(context) => Ok(Ok(context)),
        None => {
            let ask = elicitation("What context should the prompt use?", "context", "string");
            Ok(Err(input_required(vec![("user_context", ask)], None)?))
        }
    }
}

fn round(name: &str, responses: &InputResponses, state: Option<&str>, caps: &[&str]) -> Result<Round, ErrorData> {
    let name_request = || elicitation("What is your name?", "name", "string");
    let confirm = || elicitation("Please confirm", "ok", "boolean");
    Ok(match name {
        "test_missing_capability" => match sampled(responses, "answer")? {
            Some(text) => Round::Done(format!("Sampling answered: {text}")),
            None => Round::Ask(vec![("answer", sampling("Say hello", 50))], None),
        },
        "test_streaming_elicitation" => match elicited(responses, "user_input", "name")? {
            Some(name) => Round::Done(format!("Received: {name}")),
            None => Round::Ask(vec![("user_input", name_request())], None),
        },
        "test_input_required_result_elicitation" => match elicited(responses, "user_name", "name")? {
            Some(name) => Round::Done(format!("Hello, {name}!")),
            None => Round::Ask(vec![("user_name", name_request())], None),
        },
        "test_input_required_result_sampling" => match sampled(responses, "capital_question")? {
            Some(text) => Round::Done(format!("The model answered: {text}")),
            None => Round::Ask(
                vec![("capital_question", sampling("What is the capital of France?", 100))],
                None,
            ),
        },
        "test_input_required_result_list_roots" => match listed_roots(responses, "client_roots")? {
            Some(roots) => Round::Done(format!("Client roots: {roots}")),
            None => Round::Ask(vec![("client_roots", roots_request())], None),
        },
        "test_input_required_result_request_state" | "test_input_required_result_tampered_state" => {
            match elicited(responses, "confirm", "ok")? {
                Some(ok) => {
                    open(state, name)?;
                    Round::Done(format!("state-ok: confirmed={ok}"))
                }
                None => Round::Ask(vec![("confirm", confirm())], Some(seal(name))),
            }
        }
        "test_input_required_result_multiple_inputs" => {
            let user = elicited(responses, "user_name", "name")?;
            let greeting = sampled(responses, "greeting")?;
            let roots = listed_roots(responses, "client_roots")?;
            match (user, greeting, roots) {
                (Some(user), Some(greeting), Some(roots)) => {
                    open(state, name)?;
                    Round::Done(format!("state-ok: {greeting} {user} (roots: {roots})"))
                }
                _ => Round::Ask(
                    vec![
                        ("user_name", name_request()),
                        ("greeting", sampling("Generate a greeting", 50)),
                        ("client_roots", roots_request()),
                    ],
                    Some(seal(name)),
                ),
            }
        }
        "test_input_required_result_multi_round" => multi_round(responses, state)?,
        "test_input_required_result_capabilities" => {
            if let Some(text) = sampled(responses, "summary")? {
                Round::Done(format!("Summary: {text}"))
            } else {
                let mut asks = Vec::new();
                if caps.contains(&"sampling") {
                    asks.push(("summary", sampling("Summarize the capabilities check", 50)));
                }
                if caps.contains(&"elicitation") {
                    asks.push(("user_name", name_request()));
                }
                if caps.contains(&"roots") {
                    asks.push(("client_roots", roots_request()));
                }
                if asks.is_empty() {
                    Round::Done("The client declared no capability to ask through".into())
                } else {
                    Round::Ask(asks, None)
                }
            }
        }
        _ => unreachable!("checked against TOOLS"),
    })
}

/// Round 1 asks a name; round 2 (state r1) asks a colour with a new state carrying the name; round 3 completes.
fn multi_round(responses: &InputResponses, state: Option<&str>) -> Result<Round, ErrorData> {
    const TOOL: &str = "test_input_required_result_multi_round";
    if let Some(color) = elicited(responses, "step2", "color")? {
        let name = open(state, TOOL)?;
        let name = name
            .strip_prefix("r2:")
            .ok_or_else(|| bad_state("requestState is not from round 2"))?;
        return Ok(Round::Done(format!("Hello {name}, your favorite color is {color}")));
    }
    if let Some(name) = elicited(responses, "step1", "name")? {
        if open(state, TOOL)? != "r1" {
            return Err(bad_state("requestState is not from round 1"));
        }
        let ask = elicitation("Step 2: What is your favorite color?", "color", "string");
        return Ok(Round::Ask(
            vec![("step2", ask)],
            Some(seal(&format!("{TOOL}|r2:{name}"))),
        ));
    }
    let ask = elicitation("Step 1: What is your name?", "name", "string");
    Ok(Round::Ask(vec![("step1", ask)], Some(seal(&format!("{TOOL}|r1")))))
}

fn respond<T: From<InputRequiredResult>>(
    round: Round,
    done: impl FnOnce(String) -> Result<T, ErrorData>,
) -> Result<T, ErrorData> {
    match round {
        Round::Done(text) => done(text),
        Round::Ask(asks, state) => Ok(input_required(asks, state)?.into()),
    }
}

pub(super) fn input_required(
    asks: Vec<(&'static str, Value)>,
    state: Option<String>,
) -> Result<InputRequiredResult, ErrorData> {
    let mut requests = BTreeMap::new();
    for (key, ask) in asks {
        let ask: InputRequest = parse!(ask)?;
        requests.insert(key.to_owned(), ask);
    }
    Ok(InputRequiredResult::new(Some(requests), state))
}

/// The top-level capabilities a request declares (`sampling`, `elicitation`, `roots`, ...).
fn declared(caps: Option<ClientCapabilities>) -> Vec<&'static str> {
    let caps = caps.and_then(|c| serde_json::to_value(c).ok()).unwrap_or_default();
    ["sampling", "elicitation", "roots"]
        .into_iter()
        .filter(|k| caps.get(k).is_some())
        .collect()
}

pub(super) fn elicitation(message: &str, field: &str, kind: &str) -> Value {
    json!({"method": "elicitation/create", "params": {"message": message, "requestedSchema": {
        "type": "object", "properties": {field: {"type": kind}}, "required": [field]}}})
}

fn sampling(prompt: &str, max_tokens: u32) -> Value {
    json!({"method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": max_tokens}})
}

fn roots_request() -> Value {
    json!({"method": "roots/list", "params": {}})
}

/// The answer to an elicitation: `None` when not answered yet, the field (or `declined`) when it was, and an
/// error when the answer is malformed.
pub(super) fn elicited(responses: &InputResponses, key: &str, field: &str) -> Result<Option<String>, ErrorData> {
    let Some(answer) = responses.get(key) else {
        return Ok(None);
    };
    match answer.get("action").and_then(Value::as_str) {
        Some("accept") => match answer.get("content").and_then(|c| c.get(field)) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Bool(_) | Value::Number(_))) => Ok(Some(v.to_string())),
            _ => Err(malformed(key, &format!("accepted content lacks `{field}`"))),
        },
        Some("decline" | "cancel") => Ok(Some("declined".into())),
        _ => Err(malformed(key, "expected an elicitation result with an `action`")),
    }
}

fn sampled(responses: &InputResponses, key: &str) -> Result<Option<String>, ErrorData> {
    let Some(answer) = responses.get(key) else {
        return Ok(None);
    };
    match answer
        .get("content")
        .and_then(|c| c.get("text"))
        .and_then(Value::as_str)
    {
        Some(text) => Ok(Some(text.to_owned())),
        None => Err(malformed(key, "expected a sampling result with text content")),
    }
}

fn listed_roots(responses: &InputResponses, key: &str) -> Result<Option<String>, ErrorData> {
    let Some(answer) = responses.get(key) else {
        return Ok(None);
    };
    let Some(roots) = answer.get("roots").and_then(Value::as_array) else {
        return Err(malformed(key, "expected a roots/list result"));
    };
    let uris: Vec<_> = roots
        .iter()
        .filter_map(|r| r.get("uri").and_then(Value::as_str))
        .collect();
    Ok(Some(uris.join(", ")))
}

fn malformed(key: &str, problem: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("inputResponses.{key}: {problem}"),
        Some(json!({ "inputResponse": key })),
    )
}

fn bad_state(message: &str) -> ErrorData {
    ErrorData::invalid_params(message.to_owned(), None)
}

/// A per-process key: states only verify in the process that sealed them.
fn key() -> &'static std::collections::hash_map::RandomState {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    KEY.get_or_init(Default::default)
}

/// `payload.tag`, the tag a keyed SipHash of the payload (integrity for a test fixture, not secrecy).
fn seal(payload: &str) -> String {
    format!("{payload}.{:016x}", key().hash_one(payload))
}

/// The payload of a state sealed by [`seal`] for `tool` (`tool` or `tool|rest` → `tool` or `rest`).
fn open(state: Option<&str>, tool: &str) -> Result<String, ErrorData> {
    let state = state.ok_or_else(|| bad_state("requestState is required on this retry"))?;
    let (payload, tag) = state
        .rsplit_once('.')
        .ok_or_else(|| bad_state("requestState is malformed"))?;
    if format!("{:016x}", key().hash_one(payload)) != tag {
        return Err(bad_state("requestState failed its integrity check"));
    }
    match payload.split_once('|') {
        None if payload == tool => Ok(tool.to_owned()),
        Some((t, rest)) if t == tool => Ok(rest.to_owned()),
        _ => Err(bad_state("requestState belongs to another request")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responses(v: Value) -> InputResponses {
        serde_json::from_value(v).unwrap()
    }

    fn accept(content: Value) -> Value {
        json!({"action": "accept", "content": content})
    }

    #[test]
    fn every_input_request_is_a_valid_rmcp_input_request() {
        let all = ["sampling", "elicitation", "roots"];
        for (name, _) in TOOLS {
            if let Round::Ask(asks, _) = round(name, &InputResponses::new(), None, &all).unwrap() {
                let result = input_required(asks, None).unwrap();
                let wire = serde_json::to_value(&result).unwrap();
                assert_eq!(wire["resultType"], "input_required", "{name}");
            }
        }
    }

    #[test]
    fn elicitation_completes_and_validates_answers() {
        let name = "test_input_required_result_elicitation";
        let done = round(
            name,
            &responses(json!({"user_name": accept(json!({"name": "Alice"}))})),
            None,
            &[],
        );
        assert!(matches!(done.unwrap(), Round::Done(t) if t == "Hello, Alice!"));
        let wrong_key = round(name, &responses(json!({"wrong_key": accept(json!({}))})), None, &[]);
        assert!(
            matches!(wrong_key.unwrap(), Round::Ask(..)),
            "a missing answer is asked again"
        );
        assert!(round(name, &responses(json!({"user_name": 12345})), None, &[]).is_err());
    }

    #[test]
    fn sealed_state_rejects_tampering_and_other_tools() {
        let tool = "test_input_required_result_tampered_state";
        let state = seal(tool);
        assert_eq!(open(Some(&state), tool).unwrap(), tool);
        assert!(open(Some(&format!("{state}-TAMPERED")), tool).is_err());
        assert!(open(Some(&state), "test_input_required_result_request_state").is_err());
        assert!(open(None, tool).is_err());
    }

    #[test]
    fn multi_round_takes_three_rounds_with_distinct_states() {
        let Round::Ask(_, Some(r1)) = multi_round(&InputResponses::new(), None).unwrap() else {
            panic!()
        };
        let step1 = responses(json!({"step1": accept(json!({"name": "Alice"}))}));
        let Round::Ask(asks, Some(r2)) = multi_round(&step1, Some(&r1)).unwrap() else {
            panic!()
        };
        assert_eq!(asks[0].0, "step2");
        assert_ne!(r1, r2);
        let step2 = responses(json!({"step2": accept(json!({"color": "blue"}))}));
        let Round::Done(text) = multi_round(&step2, Some(&r2)).unwrap() else {
            panic!()
        };
        assert_eq!(text, "Hello Alice, your favorite color is blue");
        assert!(multi_round(&step2, Some(&r1)).is_err(), "round-1 state cannot finish");
    }

    #[test]
    fn capability_check_asks_only_for_declared_capabilities() {
        let Round::Ask(asks, _) = round(
            "test_input_required_result_capabilities",
            &InputResponses::new(),
            None,
            &["sampling"],
        )
        .unwrap() else {
            panic!()
        };
        assert!(asks.iter().all(|(_, a)| a["method"] == "sampling/createMessage"));
    }
}
