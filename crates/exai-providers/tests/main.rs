//! Integration tests: the providers against the upstream simulator over real HTTP on 127.0.0.1.
//! Every behaviour in the provider contract, seen from both sides (events here, requests in the sim log).

use std::time::Duration;

use exai_core::config::{MapEnv, Secret};
use exai_core::provider::{ChatEvent, ChatRequest, Message, Provider, ProviderError, Role, Usage};
use exai_providers::{CustomEndpoint, HttpClient, OpenAiCompatProvider, glm, kimi};
use exai_sim::{Delay, Outcome, Script, SimConfig, SimHandle, Simulator};
use futures::StreamExt;

const GLM: &str = "glm-4.6";
const KIMI: &str = "kimi-k2-0905-preview";

async fn sim() -> SimHandle {
    Simulator::start_local(SimConfig::default()).await.unwrap()
}

fn http() -> HttpClient {
    HttpClient::new().unwrap()
}

fn glm_on(sim: &SimHandle) -> OpenAiCompatProvider {
    OpenAiCompatProvider::new(
        glm::profile(Some(Secret::new("glm-test-key")), &sim.base_url_glm()),
        http(),
    )
}

fn kimi_on(sim: &SimHandle) -> OpenAiCompatProvider {
    OpenAiCompatProvider::new(
        kimi::profile(Some(Secret::new("kimi-test-key")), &sim.base_url_v1()),
        http(),
    )
}

fn request(model: &str, stream: bool) -> ChatRequest {
    ChatRequest {
        model: model.to_string(),
        messages: vec![
            Message::text(Role::System, "be brief"),
            Message::text(Role::User, "hello there"),
        ],
        temperature: Some(0.2),
        max_output_tokens: Some(256),
        thinking: false,
        web_search: false,
        stream,
        timeout: Duration::from_secs(10),
    }
}

async fn collect(provider: &dyn Provider, req: ChatRequest) -> Vec<Result<ChatEvent, ProviderError>> {
    provider.chat(req).collect().await
}

fn text_of(events: &[Result<ChatEvent, ProviderError>]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(ChatEvent::Text(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn reasoning_of(events: &[Result<ChatEvent, ProviderError>]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(ChatEvent::Reasoning(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn last_error(events: &[Result<ChatEvent, ProviderError>]) -> ProviderError {
    match events.last() {
        Some(Err(e)) => e.clone(),
        other => panic!("expected the stream to end with an error, got {other:?} (all: {events:?})"),
    }
}

fn usage_of(events: &[Result<ChatEvent, ProviderError>]) -> Option<Usage> {
    events.iter().find_map(|e| match e {
        Ok(ChatEvent::Usage(u)) => Some(*u),
        _ => None,
    })
}

#[tokio::test]
async fn glm_plain_answer() {
    let sim = sim().await;
    sim.push_script(GLM, Script::reply("Olá!").with_reasoning("").with_usage(18, 3));
    let events = collect(&glm_on(&sim), request(GLM, false)).await;
    assert_eq!(
        events,
        vec![
            Ok(ChatEvent::Text("Olá!".into())),
            Ok(ChatEvent::Usage(Usage {
                input_tokens: 18,
                output_tokens: 3,
                total_tokens: 21
            })),
            Ok(ChatEvent::Done {
                finish_reason: "stop".into(),
                model: GLM.into(),
                simulated: true,
            }),
        ]
    );
    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/api/paas/v4/chat/completions");
    assert_eq!(r.bearer(), Some("glm-test-key"));
    let body = r.body.as_ref().unwrap();
    assert_eq!(body["thinking"]["type"], "disabled");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["messages"][1]["content"], "hello there");
    assert!(body.get("stream_options").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn glm_streamed_answer_with_reasoning_and_usage() {
    let sim = sim().await;
    sim.push_script(
        GLM,
        Script::reply("The answer is 42.")
            .with_reasoning("Let me think about it.")
            .with_chunk_chars(3)
            .with_usage(12, 30),
    );
    let mut req = request(GLM, true);
    req.thinking = true;
    let events = collect(&glm_on(&sim), req).await;
    assert_eq!(reasoning_of(&events), "Let me think about it.");
    assert_eq!(text_of(&events), "The answer is 42.");
    let first_text = events.iter().position(|e| matches!(e, Ok(ChatEvent::Text(_)))).unwrap();
    let last_reasoning = events
        .iter()
        .rposition(|e| matches!(e, Ok(ChatEvent::Reasoning(_))))
        .unwrap();
    assert!(last_reasoning < first_text, "reasoning comes first");
    assert!(
        events.iter().filter(|e| matches!(e, Ok(ChatEvent::Text(_)))).count() > 1,
        "streamed in pieces"
    );
    assert_eq!(
        usage_of(&events),
        Some(Usage {
            input_tokens: 12,
            output_tokens: 30,
            total_tokens: 42
        })
    );
    assert!(matches!(events.last(), Some(Ok(ChatEvent::Done { finish_reason, .. })) if finish_reason == "stop"));
    let body = sim.chat_requests()[0].body.clone().unwrap();
    assert_eq!(body["thinking"]["type"], "enabled");
    assert_eq!(body["stream"], true);
    assert_eq!(sim.chat_requests()[0].header("accept"), Some("text/event-stream"));
    sim.shutdown().await;
}

#[tokio::test]
async fn kimi_stream_usage_inside_the_choice() {
    let sim = sim().await;
    sim.push_script(KIMI, Script::reply("short").with_usage(5, 2));
    let events = collect(&kimi_on(&sim), request(KIMI, true)).await;
    assert_eq!(text_of(&events), "short");
    assert_eq!(
        usage_of(&events),
        Some(Usage {
            input_tokens: 5,
            output_tokens: 2,
            total_tokens: 7
        })
    );
    assert!(matches!(events.last(), Some(Ok(ChatEvent::Done { .. }))));
    let r = &sim.chat_requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert!(r.body.as_ref().unwrap().get("thinking").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn custom_endpoint_asks_for_stream_usage() {
    let sim = sim().await;
    let mut endpoint = CustomEndpoint::new("local", sim.base_url_v1());
    endpoint.key_env = Some("LOCAL_KEY".into());
    let env = MapEnv::new([("LOCAL_KEY", "local-key")]);
    let provider = OpenAiCompatProvider::new(endpoint.profile(&env), http());
    assert_eq!(provider.name(), "local");
    let events = collect(&provider, request("sim-echo", true)).await;
    assert_eq!(text_of(&events), "sim: hello there");
    assert!(
        usage_of(&events).is_some(),
        "usage arrives in the extra chunk: {events:?}"
    );
    let r = &sim.chat_requests()[0];
    assert_eq!(r.body.as_ref().unwrap()["stream_options"]["include_usage"], true);
    assert_eq!(r.bearer(), Some("local-key"));
    sim.shutdown().await;
}

#[tokio::test]
async fn keyless_custom_endpoint_sends_no_authorization() {
    let sim = sim().await;
    let endpoint = CustomEndpoint::new("ollama", sim.base_url_v1());
    let provider = OpenAiCompatProvider::new(endpoint.profile(&MapEnv::default()), http());
    let events = collect(&provider, request("sim-echo", false)).await;
    // The simulator insists on a key, so a keyless request is answered 401: the request was sent without one.
    assert!(matches!(last_error(&events), ProviderError::Http { status: 401, .. }));
    assert_eq!(sim.chat_requests()[0].header("authorization"), None);
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limited_with_retry_after() {
    let sim = sim().await;
    sim.push_script(KIMI, Script::rate_limited(7));
    let events = collect(&kimi_on(&sim), request(KIMI, true)).await;
    assert_eq!(events.len(), 1, "the error is the only item");
    let err = last_error(&events);
    match &err {
        ProviderError::Http {
            provider,
            status,
            message,
            retry_after,
        } => {
            assert_eq!(provider, "kimi");
            assert_eq!(*status, 429);
            assert_eq!(*retry_after, Some(Duration::from_secs(7)));
            assert!(
                message.contains("[exai-sim]") && message.contains("rate_limit_reached_error"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    sim.shutdown().await;
}

#[tokio::test]
async fn server_error_carries_the_upstream_message() {
    let sim = sim().await;
    sim.push_script(GLM, Script::status(500));
    let events = collect(&glm_on(&sim), request(GLM, false)).await;
    match last_error(&events) {
        ProviderError::Http {
            status: 500,
            message,
            retry_after: None,
            ..
        } => assert!(message.contains("[exai-sim]") && message.contains("code "), "{message}"),
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn hang_before_headers_times_out() {
    let sim = sim().await;
    sim.push_script(GLM, Script::hang());
    let mut req = request(GLM, true);
    req.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let events = collect(&glm_on(&sim), req).await;
    let elapsed = started.elapsed();
    match last_error(&events) {
        ProviderError::Timeout {
            after, received_chars, ..
        } => {
            assert_eq!(after, Duration::from_millis(300));
            assert_eq!(received_chars, 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(3),
        "bounded by the request timeout: {elapsed:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn hang_mid_stream_times_out_with_the_count() {
    let sim = sim().await;
    sim.push_script(
        GLM,
        Script {
            hang_after_chunks: Some(4),
            ..Script::reply("abcdefghijklmnopqrstuvwxyz")
                .with_reasoning("")
                .with_chunk_chars(2)
        },
    );
    let mut req = request(GLM, true);
    req.timeout = Duration::from_millis(400);
    let events = collect(&glm_on(&sim), req).await;
    let text = text_of(&events);
    assert!(!text.is_empty());
    match last_error(&events) {
        ProviderError::Timeout { received_chars, .. } => assert_eq!(received_chars, text.chars().count()),
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_mid_stream_is_stream_broken_with_the_count() {
    let sim = sim().await;
    sim.push_script(
        KIMI,
        // The pause lets the server flush the head and first chunks before it resets the connection.
        Script::reset_after_chunks(4)
            .with_chunk_chars(3)
            .with_reasoning("")
            .with_inter_token_ms(Delay::Fixed(10)),
    );
    let events = collect(&kimi_on(&sim), request(KIMI, true)).await;
    let text = text_of(&events);
    assert!(
        !text.is_empty() && text.len() < "sim: hello there".len(),
        "partial: {text:?} {events:?} {:?}",
        sim.chat_requests()
    );
    match last_error(&events) {
        ProviderError::StreamBroken { received_chars, .. } => assert_eq!(received_chars, text.chars().count()),
        other => panic!("{other:?}"),
    }
    assert!(
        !events.iter().any(|e| matches!(e, Ok(ChatEvent::Done { .. }))),
        "never a truncated Done"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_of_a_non_streamed_body_is_an_error_not_an_answer() {
    let sim = sim().await;
    sim.push_script(GLM, Script::reset_after_chunks(1));
    let events = collect(&glm_on(&sim), request(GLM, false)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    // The simulator cuts the connection right after half the JSON, usually before the head is flushed: the
    // client then never saw a response (Connect, retryable); when the head did arrive, the body broke.
    match last_error(&events) {
        ProviderError::StreamBroken { received_chars: 0, .. } => {}
        ProviderError::Connect { message, .. } => assert!(message.contains("closed"), "{message}"),
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_json_is_reported() {
    let sim = sim().await;
    sim.push_script(GLM, Script::malformed());
    let events = collect(&glm_on(&sim), request(GLM, false)).await;
    assert!(
        matches!(last_error(&events), ProviderError::Malformed { .. }),
        "{events:?}"
    );
    sim.push_script(GLM, Script::malformed());
    let events = collect(&glm_on(&sim), request(GLM, true)).await;
    assert!(
        matches!(last_error(&events), ProviderError::Malformed { .. }),
        "{events:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_key_sends_nothing() {
    let sim = sim().await;
    let provider = OpenAiCompatProvider::new(glm::profile(None, &sim.base_url_glm()), http());
    let events = collect(&provider, request(GLM, true)).await;
    assert_eq!(events.len(), 1);
    let err = last_error(&events);
    assert_eq!(
        err,
        ProviderError::MissingKey {
            provider: "glm".into(),
            env: "GLM_API_KEY".into()
        }
    );
    assert!(err.to_string().starts_with("GLM_API_KEY is not set"), "{err}");
    let provider = OpenAiCompatProvider::new(kimi::profile(Some(Secret::new("")), &sim.base_url_v1()), http());
    let err = last_error(&collect(&provider, request(KIMI, false)).await);
    assert!(err.to_string().starts_with("KIMI_API_KEY is not set"), "{err}");
    assert!(sim.requests().is_empty(), "no request reached the simulator");
    sim.shutdown().await;
}

#[tokio::test]
async fn connect_error_names_the_url() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let provider = OpenAiCompatProvider::new(kimi::profile(Some(Secret::new("k")), &base), http());
    let events = collect(&provider, request(KIMI, false)).await;
    match last_error(&events) {
        e @ ProviderError::Connect { .. } => {
            assert!(e.is_retryable());
            let ProviderError::Connect { url, .. } = e else {
                unreachable!()
            };
            assert_eq!(url, format!("{base}/chat/completions"));
        }
        other => panic!("{other:?}"),
    }
}

async fn kimi_web_search_round_trip(stream: bool) {
    let sim = sim().await;
    sim.push_script(KIMI, Script::web_search());
    sim.push_script(KIMI, Script::web_search());
    let mut req = request(KIMI, stream);
    req.web_search = true;
    let events = collect(&kimi_on(&sim), req).await;
    assert!(
        events.contains(&Ok(ChatEvent::WebSearch(Some("hello there".into())))),
        "{events:?}"
    );
    assert!(text_of(&events).contains("[web_search simsearch-"), "{events:?}");
    assert!(matches!(events.last(), Some(Ok(ChatEvent::Done { finish_reason, .. })) if finish_reason == "stop"));
    let usage = usage_of(&events).unwrap();
    assert!(usage.total_tokens > 1_000, "both rounds counted: {usage:?}");

    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 2);
    let first = reqs[0].body.as_ref().unwrap();
    assert_eq!(first["tools"][0]["type"], "builtin_function");
    assert_eq!(first["tools"][0]["function"]["name"], "$web_search");
    assert_eq!(first["thinking"]["type"], "disabled");
    let messages = reqs[1].messages();
    let assistant = &messages[messages.len() - 2];
    let tool = &messages[messages.len() - 1];
    assert_eq!(assistant["role"], "assistant");
    let call = &assistant["tool_calls"][0];
    assert_eq!(call["type"], "builtin_function");
    assert_eq!(call["function"]["name"], "$web_search");
    assert_eq!(tool["role"], "tool");
    assert_eq!(tool["tool_call_id"], call["id"]);
    assert_eq!(tool["name"], "$web_search");
    assert_eq!(
        tool["content"], call["function"]["arguments"],
        "arguments echoed back as content"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn kimi_web_search_round_trip_streamed() {
    kimi_web_search_round_trip(true).await;
}

#[tokio::test]
async fn kimi_web_search_round_trip_not_streamed() {
    kimi_web_search_round_trip(false).await;
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_connection() {
    let sim = sim().await;
    sim.push_script(
        GLM,
        Script::reply("x".repeat(400))
            .with_reasoning("")
            .with_chunk_chars(4)
            .with_inter_token_ms(Delay::Fixed(20)),
    );
    let provider = glm_on(&sim);
    let mut stream = provider.chat(request(GLM, true));
    let first = stream.next().await;
    assert!(matches!(first, Some(Ok(ChatEvent::Text(_)))), "{first:?}");
    drop(stream);
    let hung_up = sim
        .wait_for(Duration::from_secs(3), |reqs| {
            reqs.iter().any(|r| r.outcome == Outcome::ClientHungUp)
        })
        .await;
    assert!(hung_up, "the simulator saw the hang-up: {:?}", sim.chat_requests());
    sim.shutdown().await;
}

#[tokio::test]
async fn one_client_serves_every_profile_concurrently() {
    let sim = sim().await;
    let http = http();
    let glm = OpenAiCompatProvider::new(glm::profile(Some(Secret::new("g")), &sim.base_url_glm()), http.clone());
    let kimi = OpenAiCompatProvider::new(kimi::profile(Some(Secret::new("k")), &sim.base_url_v1()), http);
    let (a, b) = tokio::join!(collect(&glm, request(GLM, true)), collect(&kimi, request(KIMI, false)));
    assert_eq!(text_of(&a), "sim: hello there");
    assert_eq!(text_of(&b), "sim: hello there");
    sim.shutdown().await;
}

#[tokio::test]
async fn finish_reasons_pass_through_except_network_error() {
    let sim = sim().await;
    sim.push_script(GLM, Script::reply("cut").with_finish_reason("length"));
    let events = collect(&glm_on(&sim), request(GLM, true)).await;
    assert!(matches!(events.last(), Some(Ok(ChatEvent::Done { finish_reason, .. })) if finish_reason == "length"));
    // GLM's `network_error` means the answer was cut short upstream: broken, never Done.
    sim.push_script(
        GLM,
        Script::reply("half an answer")
            .with_reasoning("")
            .with_finish_reason("network_error"),
    );
    let events = collect(&glm_on(&sim), request(GLM, true)).await;
    match last_error(&events) {
        ProviderError::StreamBroken {
            received_chars,
            message,
            ..
        } => {
            assert_eq!(received_chars, "half an answer".len());
            assert!(message.contains("network_error"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

/// A real HTTP upstream for one request: answers 200 with `content_type`, then `prefix`, then `offered` bytes of `a`
/// (a line or body that never ends, as far as the client should care) until the client hangs up. Returns its
/// `/v1` base URL and a handle yielding how many bytes it managed to send.
async fn endless_upstream(
    content_type: &'static str,
    prefix: &'static str,
    offered: usize,
) -> (String, tokio::task::JoinHandle<usize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let upstream = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n{prefix}");
        socket.write_all(head.as_bytes()).await.unwrap();
        let block = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < offered {
            if socket.write_all(&block).await.is_err() {
                break;
            }
            sent += block.len();
        }
        sent
    });
    (base, upstream)
}

/// An upstream that answers 200 `text/event-stream` and then sends one line that never ends: the client gives up at
/// the parser's event limit (`sse::MAX_EVENT_BYTES`) with a `Malformed` error naming it, instead of buffering the
/// line until the deadline (the upstream offers 8 times the limit and must see the client hang up).
#[tokio::test]
async fn an_endless_event_fails_at_the_event_size_limit() {
    use exai_providers::openai_compat::sse::MAX_EVENT_BYTES;

    const OFFERED: usize = 8 * MAX_EVENT_BYTES;
    let (base, upstream) = endless_upstream("text/event-stream", "data: ", OFFERED).await;
    let provider = OpenAiCompatProvider::new(kimi::profile(Some(Secret::new("k")), &base), http());
    let mut req = request(KIMI, true);
    req.timeout = Duration::from_secs(60);
    let events = collect(&provider, req).await;
    match last_error(&events) {
        ProviderError::Malformed { message, .. } => {
            assert!(message.contains(&format!("{MAX_EVENT_BYTES}-byte limit")), "{message}");
        }
        other => panic!("expected the event size limit, got {other:?}"),
    }
    let sent = upstream.await.unwrap();
    assert!(
        sent < OFFERED,
        "the client read the whole {sent}-byte line instead of hanging up at the limit"
    );
}

/// An upstream that answers a non-streamed request with a body larger than any completion (it never ends, as far as
/// the client should care): the client stops at `client::MAX_BODY_BYTES` with a `Malformed` error naming the limit,
/// instead of buffering the body until the deadline (the upstream offers 4 times the limit and must see the client
/// hang up before it has sent it all).
#[tokio::test]
async fn a_huge_completion_body_fails_at_the_body_size_limit() {
    use exai_providers::openai_compat::client::MAX_BODY_BYTES;

    const OFFERED: usize = 4 * MAX_BODY_BYTES;
    let (base, upstream) = endless_upstream("application/json", "{\"pad\": \"", OFFERED).await;
    let provider = OpenAiCompatProvider::new(kimi::profile(Some(Secret::new("k")), &base), http());
    let mut req = request(KIMI, false);
    req.timeout = Duration::from_secs(60);
    let events = collect(&provider, req).await;
    match last_error(&events) {
        ProviderError::Malformed { message, .. } => {
            assert!(message.contains(&format!("{MAX_BODY_BYTES}-byte limit")), "{message}");
        }
        other => panic!("expected the body size limit, got {other:?}"),
    }
    let sent = upstream.await.unwrap();
    assert!(
        sent < OFFERED,
        "the client read the whole {sent}-byte body instead of hanging up at the limit"
    );
}
