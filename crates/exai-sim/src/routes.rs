//! The HTTP surface: `POST …/chat/completions` and `GET …/models` under any prefix, bearer-key check,
//! script selection (queued → `x-sim-script` header → model → echo) and the `x-exai-simulator: 1` mark.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::Family;
use crate::errors::{error_response, missing_key, unknown_model};
use crate::record::{Guard, Outcome, Recorded, ScriptSource};
use crate::reply::{ChatRequest, WebSearchLeg, plan, web_search_leg};
use crate::script::Script;
use crate::state::SimState;
use crate::stream::{self, Fault};

/// Header carrying a JSON [`Script`] for one request.
pub const SCRIPT_HEADER: &str = "x-sim-script";
/// Header on every simulator response, so its output can never pass for a real provider's.
pub const SIM_HEADER: &str = "x-exai-simulator";

/// The simulator as an axum router, ready to serve or to mount elsewhere.
pub fn router(state: SimState) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .layer(middleware::map_response(mark))
        .with_state(state)
}

async fn mark(mut response: Response) -> Response {
    response.headers_mut().insert(SIM_HEADER, HeaderValue::from_static("1"));
    response
}

enum Route {
    Chat,
    Models,
    NotFound,
}

fn route(method: &Method, path: &str) -> Route {
    let path = path.trim_end_matches('/');
    if *method == Method::POST && path.ends_with("/chat/completions") {
        Route::Chat
    } else if *method == Method::GET && path.ends_with("/models") {
        Route::Models
    } else {
        Route::NotFound
    }
}

fn has_bearer(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, key)| scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty())
}

async fn dispatch(
    State(state): State<SimState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let record = Recorded {
        seq: 0,
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        model: parsed
            .as_ref()
            .and_then(|b| b.get("model"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        stream: parsed
            .as_ref()
            .and_then(|b| b.get("stream"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        body: parsed,
        script_source: None,
        status: 0,
        chunks_sent: 0,
        outcome: Outcome::InProgress,
    };
    let seq = state.record(record);
    let mut guard = Guard::new(state.clone(), seq);

    let response = match route(&method, uri.path()) {
        Route::NotFound => {
            let message = format!("no route for {method} {}", uri.path());
            error_response(Family::OpenAi, 404, Some(&message), Some("not_found"), None)
        }
        _ if !has_bearer(&headers) => missing_key(),
        Route::Models => models(&state),
        Route::Chat => return chat(state, headers, body, guard).await,
    };
    guard.set_status(response.status().as_u16());
    guard.finish(Outcome::Completed);
    response
}

fn models(state: &SimState) -> Response {
    let data: Vec<Value> = state
        .config()
        .models
        .iter()
        .map(|m| json!({"id": m.id, "object": "model", "created": 1_750_000_000, "owned_by": m.family.owned_by()}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// Sleeps unless the simulator shuts down first; `false` means it did.
async fn pause(state: &SimState, delay: Duration) -> bool {
    if delay.is_zero() {
        return !state.is_shutting_down();
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = state.shutdown_token().cancelled() => false,
    }
}

fn done(mut guard: Guard, response: Response) -> Response {
    guard.set_status(response.status().as_u16());
    guard.finish(Outcome::Completed);
    response
}

fn shutting_down(guard: Guard) -> Response {
    done(
        guard,
        error_response(Family::OpenAi, 503, Some("simulator shutting down"), None, None),
    )
}

async fn chat(state: SimState, headers: HeaderMap, raw: Bytes, mut guard: Guard) -> Response {
    guard.count_in_flight();
    let Ok(body) = serde_json::from_slice::<Value>(&raw) else {
        let msg = "request body is not valid JSON";
        return done(guard, error_response(Family::OpenAi, 400, Some(msg), None, None));
    };
    let Some(model) = body.get("model").and_then(Value::as_str).map(str::to_owned) else {
        let msg = "missing `model` in the request body";
        return done(guard, error_response(Family::OpenAi, 400, Some(msg), None, None));
    };
    let config = state.config();
    let spec = config.model(&model).cloned();
    if spec.is_none() && !config.accept_unknown_models {
        return done(guard, unknown_model(&model));
    }
    let family = spec.as_ref().map_or_else(|| Family::of(&model), |s| s.family);
    let thinks = spec.as_ref().is_some_and(|s| s.thinks);

    let header_script = match headers.get(SCRIPT_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(text)) => match serde_json::from_str::<Script>(text) {
            Ok(script) => Some(script),
            Err(e) => {
                let msg = format!("invalid {SCRIPT_HEADER} header: {e}");
                return done(guard, error_response(Family::OpenAi, 400, Some(&msg), None, None));
            }
        },
        Some(Err(_)) => {
            let msg = format!("{SCRIPT_HEADER} header is not visible ASCII");
            return done(guard, error_response(Family::OpenAi, 400, Some(&msg), None, None));
        }
    };
    let (script, source) = if let Some(s) = state.take_queued(&model) {
        (s, ScriptSource::Queued)
    } else if let Some(s) = header_script {
        (s, ScriptSource::Header)
    } else if let Some(s) = spec.as_ref().and_then(|s| s.script.clone()) {
        (s, ScriptSource::Model)
    } else {
        (Script::default(), ScriptSource::Default)
    };
    guard.update(|r| r.script_source = Some(source));
    tracing::debug!(%model, source = SimState::script_source_label(source), "exai-sim: chat request");

    if let Some(status) = script.status.filter(|s| *s >= 400) {
        let delay = script.ttft_ms.map_or(Duration::ZERO, |d| d.sample(state.rng()));
        if !pause(&state, delay).await {
            return shutting_down(guard);
        }
        let style = script.error_style.unwrap_or(family);
        let response = error_response(
            style,
            status,
            script.error_message.as_deref(),
            script.error_code.as_deref(),
            script.retry_after_secs,
        );
        return done(guard, response);
    }

    if script.hang {
        // Never answer; the guard records a hang-up when the client gives up and hyper drops this future.
        state.shutdown_token().cancelled().await;
        return shutting_down(guard);
    }

    if script.web_search
        && let WebSearchLeg::Orphan { tool_call_id } = web_search_leg(
            body.get("messages")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        )
    {
        let msg = format!("Invalid request: tool_call_id {tool_call_id} is not found");
        let style = script.error_style.unwrap_or(family);
        return done(guard, error_response(style, 400, Some(&msg), None, None));
    }

    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let request = ChatRequest {
        model: &model,
        body: &body,
        include_usage,
    };
    let latency = config.latency;
    let plan = plan(&request, &script, family, thinks, latency, state.rng(), guard.seq());

    if stream {
        let events = stream::sse_events(&plan, script.malformed);
        let fault = Fault::from_script(&script, events.len());
        guard.set_status(200);
        let body = stream::body(events, fault, guard, state.shutdown_token().clone());
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response();
    }

    if !pause(&state, plan.total_delay()).await {
        return shutting_down(guard);
    }
    let json_type = [(header::CONTENT_TYPE, "application/json")];
    if script.malformed {
        let text = plan.completion_json().to_string();
        let broken = halves(&text).0.to_owned();
        return done(guard, (StatusCode::OK, json_type, broken).into_response());
    }
    if script.reset_after_chunks.is_some() || script.hang_after_chunks.is_some() {
        let text = plan.completion_json().to_string();
        let (head, tail) = halves(&text);
        let events = vec![
            (Duration::ZERO, Bytes::from(head.to_owned())),
            (Duration::ZERO, Bytes::from(tail.to_owned())),
        ];
        let fault = Fault::from_script(&script, events.len());
        guard.set_status(200);
        let body = stream::body(events, fault, guard, state.shutdown_token().clone());
        return (StatusCode::OK, json_type, body).into_response();
    }
    done(guard, Json(plan.completion_json()).into_response())
}

/// Splits JSON text about in half on a character boundary.
fn halves(text: &str) -> (&str, &str) {
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    text.split_at(mid)
}
