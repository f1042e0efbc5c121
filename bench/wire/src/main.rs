//! How much CPU an HTTP request costs through reqwest and through hyper directly, with
//! nothing else around it (issue 12: what a leaner wire would save sluice). Sends N chat
//! requests at concurrency 64 on one thread and prints requests/s and CPU microseconds a
//! request.
//!
//!     cargo build --release --manifest-path bench/wire/Cargo.toml
//!     target/release/sluice sim --listen 127.0.0.1:18081 --no-id-stats &
//!     bench/wire/target/release/wire-bench reqwest http://127.0.0.1:18081/v1/chat/completions 50000
//!     bench/wire/target/release/wire-bench hyper   http://127.0.0.1:18081/v1/chat/completions 50000

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use std::time::Instant;

const BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":16}"#;

/// CPU seconds this process has used (user plus system).
fn cpu() -> f64 {
    let mut u: Rusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut u) };
    (u.ru_utime.0 as f64 + u.ru_utime.1 as f64 / 1e6)
        + (u.ru_stime.0 as f64 + u.ru_stime.1 as f64 / 1e6)
}
#[repr(C)]
/// `struct rusage` of Linux on 64-bit: two `timeval`s, then fourteen longs.
struct Rusage {
    ru_utime: Timeval,
    ru_stime: Timeval,
    rest: [i64; 14],
}

#[repr(C)]
struct Timeval(i64, i64);
unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args[1].clone();
    let url = args[2].clone();
    let n: usize = args[3].parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let start = Instant::now();
        let c0 = cpu();
        if which == "reqwest" {
            let client = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .retry(reqwest::retry::never().max_retries_per_request(0))
                .timeout(std::time::Duration::from_secs(600))
                .pool_max_idle_per_host(64)
                .tcp_nodelay(true)
                .build()
                .unwrap();
            let url: reqwest::Url = url.parse().unwrap();
            futures::stream::iter(0..n)
                .map(|i| {
                    let client = client.clone();
                    let url = url.clone();
                    async move {
                        let r = client
                            .post(url)
                            .header("content-type", "application/json")
                            .header("x-client-request-id", format!("r{i}"))
                            .body(Bytes::from_static(BODY.as_bytes()))
                            .send()
                            .await
                            .unwrap();
                        let b = r.bytes().await.unwrap();
                        b.len()
                    }
                })
                .buffer_unordered(64)
                .for_each(|_| async {})
                .await;
        } else {
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.set_nodelay(true);
            let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_max_idle_per_host(64)
                    .build(connector);
            let uri: http::Uri = url.parse().unwrap();
            futures::stream::iter(0..n)
                .map(|i| {
                    let client = client.clone();
                    let uri = uri.clone();
                    async move {
                        let req = http::Request::post(uri)
                            .header("content-type", "application/json")
                            .header("x-client-request-id", format!("r{i}"))
                            .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                            .unwrap();
                        let r = tokio::time::timeout(
                            std::time::Duration::from_secs(600),
                            client.request(req),
                        )
                        .await
                        .unwrap()
                        .unwrap();
                        let b = r.into_body().collect().await.unwrap().to_bytes();
                        b.len()
                    }
                })
                .buffer_unordered(64)
                .for_each(|_| async {})
                .await;
        }
        let wall = start.elapsed().as_secs_f64();
        let c = cpu() - c0;
        println!(
            "{which}: {:.0} req/s, {:.2} us CPU/request",
            n as f64 / wall,
            c / n as f64 * 1e6
        );
    });
}
