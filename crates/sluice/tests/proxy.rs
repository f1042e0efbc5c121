//! Proxies named by the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), as curl and
//! the OpenAI SDK read them. This binary holds one test: it sets the process's
//! environment, which no other test may share.

mod common;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use common::{ProxyRequest, accept_each, hello, read_proxy_request};
use sluice::transport::ApiKey;
use sluice::{Client, ErrorKind, RetryPolicy};
use sluice_sim::Sim;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// What the proxy saw of each connection: its first request line and its
/// `Proxy-Authorization`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A forward proxy on 127.0.0.1. A `CONNECT` is answered 200 and the connection then
/// closed (there is no TLS server behind it); a request in absolute form is piped to the
/// host it names, with everything after it on that connection.
async fn proxy() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let addr = accept_each(move |mut conn| {
        let record = record.clone();
        async move {
            let Some(ProxyRequest { head, line, auth }) = read_proxy_request(&mut conn).await
            else {
                return;
            };
            record.lock().unwrap().push((line.clone(), auth));
            if line.starts_with("CONNECT ") {
                let _ = conn
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                return;
            }
            let target = line.split(' ').nth(1).unwrap_or_default();
            let host = target
                .strip_prefix("http://")
                .and_then(|rest| rest.split('/').next())
                .unwrap_or_default()
                .to_owned();
            let Ok(mut upstream) = TcpStream::connect(host).await else {
                return;
            };
            upstream.write_all(&head).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
        }
    })
    .await;
    (addr, seen)
}

#[tokio::test]
async fn requests_go_through_the_environments_proxy_with_its_credentials() {
    let sim = Sim::builder().build().unwrap().spawn().await.unwrap();
    let (proxy, seen) = proxy().await;
    let proxy_url = format!("http://alice:s3cret@{proxy}");
    // alice:s3cret in base64.
    let credentials = "Basic YWxpY2U6czNjcmV0";
    // SAFETY: this binary's only test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("HTTP_PROXY", &proxy_url);
        std::env::set_var("HTTPS_PROXY", &proxy_url);
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }

    // Plain http: the requests go to the proxy in absolute form, with its credentials,
    // and the proxy carries them to the server.
    let client = Client::builder()
        .base_url(sim.base_url())
        .api_key(ApiKey::new("sk-test"))
        .build()
        .unwrap();
    for i in 0..5 {
        let answer = client.send(&hello(&format!("p{i}"))).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    assert_eq!(
        sim.stats().attempts.len(),
        5,
        "every request reached the server"
    );
    {
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty());
        let want = format!("POST {}/chat/completions HTTP/1.1", sim.base_url());
        for (line, auth) in seen.iter() {
            assert_eq!(line, &want);
            assert_eq!(auth.as_deref(), Some(credentials));
        }
    }

    // https: a CONNECT tunnel to the host's port 443, with the credentials; TLS then
    // fails here (nothing speaks it behind this proxy), as a connect failure that names
    // no credential.
    let tunnelled = Client::builder()
        .base_url("https://api.openai.example/v1")
        .api_key(ApiKey::new("sk-test"))
        .retry(RetryPolicy {
            max_attempts: NonZeroU32::new(1).unwrap(),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let error = tunnelled.send(&hello("t")).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Connect, "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("s3cret") && !shown.contains("YWxpY2U6czNjcmV0"));
    let connects: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(line, _)| line.starts_with("CONNECT "))
        .cloned()
        .collect();
    assert_eq!(
        connects,
        [(
            "CONNECT api.openai.example:443 HTTP/1.1".to_owned(),
            Some(credentials.to_owned())
        )]
    );

    // A host NO_PROXY names is reached directly.
    // SAFETY: as above.
    unsafe { std::env::set_var("NO_PROXY", "127.0.0.1") };
    let proxied_before = seen.lock().unwrap().len();
    let direct = Client::builder()
        .base_url(sim.base_url())
        .api_key(ApiKey::new("sk-test"))
        .build()
        .unwrap();
    assert!(direct.send(&hello("d")).await.is_ok());
    assert_eq!(sim.stats().attempts.len(), 6);
    assert_eq!(
        seen.lock().unwrap().len(),
        proxied_before,
        "not via the proxy"
    );
}
