//! Helpers shared by the engine's integration tests.

#![allow(dead_code)] // each test file uses its own share of these

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A server on 127.0.0.1 that answers its first request 429 with `header: value()` and
/// every later one 200, recording when each request arrived.
pub async fn retry_after_server(
    header: &'static str,
    value: fn() -> String,
) -> (String, Arc<Mutex<Vec<Instant>>>) {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let times = Arc::new(Mutex::new(Vec::new()));
    let recorded = times.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let times = recorded.clone();
            async move {
                let n = {
                    let mut t = times.lock().unwrap();
                    t.push(Instant::now());
                    t.len()
                };
                if n == 1 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header, value())],
                        r#"{"error":{"code":"rate_limit_exceeded"}}"#,
                    )
                        .into_response()
                } else {
                    (
                        StatusCode::OK,
                        r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
                    )
                        .into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), times)
}

/// Arrival times (seconds since the simulator started) of every attempt, sorted.
pub fn arrivals(sim: &sluice_sim::SimHandle) -> Vec<f64> {
    let mut t: Vec<f64> = sim
        .stats()
        .attempts
        .values()
        .flat_map(|a| a.iter().map(|us| *us as f64 / 1e6))
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// A client builder whose requests go to `sim` in memory (no socket), so the test can run
/// on paused `tokio::time`.
pub fn in_memory(sim: &sluice_sim::InMemorySim) -> sluice::ClientBuilder {
    let server = sim.clone();
    sluice::Client::builder()
        .base_url(sim.base_url())
        .service(move |request| {
            let server = server.clone();
            async move {
                server.call(request).await.map_err(|e| {
                    sluice::transport::TransportError::new(
                        sluice::ErrorKind::Transport,
                        e.to_string(),
                    )
                })
            }
        })
}

/// Arrival times (seconds since the simulator started) of every attempt, sorted.
pub fn arrivals_in_memory(sim: &sluice_sim::InMemorySim) -> Vec<f64> {
    sorted_arrivals(sim.stats(), |_| true)
}

/// Arrival times of the attempts whose id starts with `prefix`, sorted.
pub fn arrivals_with_prefix(sim: &sluice_sim::InMemorySim, prefix: &str) -> Vec<f64> {
    sorted_arrivals(sim.stats(), |id| id.starts_with(prefix))
}

pub fn sorted_arrivals(stats: sluice_sim::SimStats, keep: impl Fn(&str) -> bool) -> Vec<f64> {
    let mut t: Vec<f64> = stats
        .attempts
        .iter()
        .filter(|(id, _)| keep(id))
        .flat_map(|(_, a)| a.iter().map(|us| *us as f64 / 1e6))
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// In memory, what [`retry_after_server`] serves: a client builder whose first request is
/// answered 429 with `header: value()` and every later one 200, and the (paused-clock)
/// arrival times.
pub fn retry_after_client(
    header: &'static str,
    value: fn() -> String,
) -> (sluice::ClientBuilder, Arc<Mutex<Vec<tokio::time::Instant>>>) {
    first_refused_client(move || vec![(header, value())])
}

/// As [`retry_after_client`], with the first answer's headers all given by `headers`.
pub fn first_refused_client(
    headers: impl Fn() -> Vec<(&'static str, String)> + Clone + Send + Sync + 'static,
) -> (sluice::ClientBuilder, Arc<Mutex<Vec<tokio::time::Instant>>>) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let recorded = times.clone();
    let builder = sluice::Client::builder()
        .base_url("http://in-memory.invalid/v1")
        .service(move |_request: http::Request<bytes::Bytes>| {
            let n = {
                let mut t = recorded.lock().unwrap();
                t.push(tokio::time::Instant::now());
                t.len()
            };
            let headers = headers.clone();
            async move {
                let response = if n == 1 {
                    headers()
                        .into_iter()
                        .fold(http::Response::builder().status(429), |b, (k, v)| {
                            b.header(k, v)
                        })
                        .body(bytes::Bytes::from_static(
                            br#"{"error":{"code":"rate_limit_exceeded"}}"#,
                        ))
                } else {
                    http::Response::builder()
                        .status(200)
                        .body(bytes::Bytes::from_static(
                            br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
                        ))
                };
                Ok(response.unwrap())
            }
        });
    (builder, times)
}

/// A one-line chat request to gpt-4o-mini with the id `id`.
pub fn hello(id: &str) -> sluice::Request {
    sluice::Request::chat(
        id,
        &serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    )
}

/// What a proxy is asked: the head of the first request on a connection (read up to its
/// blank line), its request line and its `Proxy-Authorization`. `None` if the client
/// closed first.
pub struct ProxyRequest {
    pub head: Vec<u8>,
    pub line: String,
    pub auth: Option<String>,
}

/// Reads a proxy's first request head from `conn`, byte by byte so nothing after it is
/// consumed.
pub async fn read_proxy_request(
    conn: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Option<ProxyRequest> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let line = text.lines().next().unwrap_or_default().to_owned();
    let auth = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    Some(ProxyRequest { head, line, auth })
}

/// A TCP server on 127.0.0.1 that hands each connection it accepts to `handle`, in a
/// task of its own; its address.
pub async fn accept_each<F, Fut>(handle: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            tokio::spawn(handle(conn));
        }
    });
    addr
}
