//! Connections kept and reused: HTTP/1.1 requests name the host, go on connections
//! already open, and never on one the server has closed.

mod common;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{accept_each, hello};
use sluice::Client;
use sluice::transport::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server saw: each connection's requests, as (request line, `Host`).
type Seen = Arc<Mutex<Vec<Vec<(String, Option<String>)>>>>;

const ANSWER: &str = r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;

/// Whether a server closes a connection after its first answer.
#[derive(Clone, Copy, PartialEq)]
enum Close {
    No,
    /// Without a word, as a server whose keep-alive ran out does.
    Silently,
    /// Saying so in the answer (`Connection: close`).
    Saying,
}

/// An HTTP/1.1 server on 127.0.0.1 that answers every request 200 and closes each
/// connection after its first answer as `close` says.
async fn server(close: Close) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let addr = accept_each(move |conn| {
        let index = {
            let mut seen = record.lock().unwrap();
            seen.push(Vec::new());
            seen.len() - 1
        };
        let record = record.clone();
        serve(conn, close, move |head| {
            let line = head.lines().next().unwrap_or_default().to_owned();
            record.lock().unwrap()[index].push((line, header(head, "host")));
        })
    })
    .await;
    (format!("http://{addr}/v1"), seen)
}

/// A header's value in a request's head; the first of that name.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Answers each request on `conn` 200 with [`ANSWER`], showing `saw` its head (request
/// line and headers).
async fn serve(conn: TcpStream, close: Close, saw: impl FnMut(&str)) {
    let saying = if close == Close::Saying {
        "connection: close\r\n"
    } else {
        ""
    };
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{saying}content-length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    serve_answering(conn, close, saw, answer.into_bytes()).await;
}

/// Answers each request on `conn` with the bytes `answer`.
async fn serve_answering(
    mut conn: TcpStream,
    close: Close,
    mut saw: impl FnMut(&str),
    answer: Vec<u8>,
) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_until_head_end(&mut conn, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let length: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        saw(&head);
        while buf.len() < end + length {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + length);
        if conn.write_all(&answer).await.is_err() || close != Close::No {
            return;
        }
    }
}

/// Reads until a request's head is whole; the index just past it.
async fn read_until_head_end(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(at + 4);
        }
        let mut chunk = [0u8; 4096];
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn client(base: &str) -> Client {
    Client::builder()
        .base_url(base)
        .api_key(ApiKey::new("sk-test"))
        .concurrency(NonZeroUsize::new(8).unwrap())
        .build()
        .unwrap()
}

/// Sends one request and checks it succeeded.
async fn send_ok(client: &Client, id: &str) {
    let answer = client.send(&hello(id)).await;
    assert!(answer.is_ok(), "{answer:?}");
}

#[tokio::test]
async fn requests_one_after_another_share_a_connection_and_name_the_host() {
    let (base, seen) = server(Close::No).await;
    let client = client(&base);
    for i in 0..5 {
        send_ok(&client, &format!("r{i}")).await;
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one connection carried all five: {seen:?}");
    let host = base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    assert_eq!(
        seen[0],
        vec![("POST /v1/chat/completions HTTP/1.1".to_owned(), Some(host)); 5]
    );
}

#[tokio::test]
async fn connections_are_given_back_after_each_answer_and_lent_again() {
    let (base, seen) = server(Close::No).await;
    let client = client(&base);
    for round in 0..3 {
        let requests: Vec<_> = (0..8).map(|i| hello(&format!("r{round}-{i}"))).collect();
        let answers = futures::future::join_all(requests.iter().map(|r| client.send(r))).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    }
    let seen = seen.lock().unwrap();
    let requests: usize = seen.iter().map(Vec::len).sum();
    assert_eq!(requests, 24);
    assert!(
        seen.len() <= 8,
        "24 requests, 8 at a time, on {} connections",
        seen.len()
    );
}

#[tokio::test]
async fn a_connection_the_server_closed_is_not_lent_again() {
    for close in [Close::Silently, Close::Saying] {
        a_connection_closed_after_each_answer_is_not_lent_again(close).await;
    }
}

async fn a_connection_closed_after_each_answer_is_not_lent_again(close: Close) {
    let (base, seen) = server(close).await;
    let client = client(&base);
    for i in 0..4 {
        send_ok(&client, &format!("r{i}")).await;
        if close == Close::Silently {
            // Time for the close to arrive, as it does between a run's requests when a
            // server's keep-alive runs out. One that says so is closed at once.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        4,
        "each request on a new connection"
    );
    let stats = client.stats();
    assert_eq!(
        stats.attempts, 4,
        "no attempt failed on a closed connection"
    );
    assert_eq!(stats.ok, 4);
}

#[tokio::test]
async fn each_request_names_its_length_its_host_and_its_id_unless_the_id_cannot_be_a_header() {
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = heads.clone();
    let addr = accept_each(move |conn| {
        let record = record.clone();
        serve(conn, Close::No, move |head| {
            record.lock().unwrap().push(head.to_owned())
        })
    })
    .await;
    let base = format!("http://{addr}/v1");
    let client = client(&base);
    // Ids of different lengths on one connection: each request's own length and id, not
    // the previous one's. The last id holds a control character, which no header may.
    let ids = [
        "a",
        "a-much-longer-request-id-0123456789",
        "b",
        "tab\u{7}bell",
    ];
    let request = |id: &str| {
        sluice::Request::chat(
            id,
            &serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": id}]}),
        )
    };
    for id in ids {
        let answer = client.send(&request(id)).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), ids.len());
    for (head, id) in heads.iter().zip(ids) {
        assert_eq!(
            header(head, "content-length"),
            Some(request(id).body.len().to_string()),
            "{head}"
        );
        assert_eq!(header(head, "host"), Some(addr.to_string()), "{head}");
        assert_eq!(
            header(head, "x-client-request-id").as_deref(),
            (!id.contains('\u{7}')).then_some(id),
            "{head}"
        );
    }
}

/// A server on 127.0.0.1 that answers every request with `answer`; the number of
/// connections it accepted comes back with its URL.
async fn server_answering(answer: Vec<u8>) -> (String, Arc<Mutex<usize>>) {
    let connections: Arc<Mutex<usize>> = Arc::default();
    let count = connections.clone();
    let addr = accept_each(move |conn| {
        *count.lock().unwrap() += 1;
        serve_answering(conn, Close::No, |_| {}, answer.clone())
    })
    .await;
    (format!("http://{addr}/v1"), connections)
}

#[tokio::test]
async fn chunked_answers_are_read_whole_and_their_connection_lent_again() {
    let (first, rest) = ANSWER.split_at(10);
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
        first.len(),
        rest.len()
    );
    let (base, connections) = server_answering(answer.into_bytes()).await;
    let client = client(&base);
    for i in 0..3 {
        let answer = client.send(&hello(&format!("r{i}"))).await.unwrap();
        assert_eq!(&answer.body[..], ANSWER.as_bytes());
    }
    assert_eq!(*connections.lock().unwrap(), 1);
}

#[tokio::test]
async fn an_answer_over_the_size_limit_fails_as_too_large_whether_its_length_is_stated_or_not() {
    let body = "x".repeat(5000);
    let stated = format!("HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n{body}");
    let chunked =
        format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1388\r\n{body}\r\n0\r\n\r\n");
    for answer in [stated, chunked] {
        let (base, _) = server_answering(answer.into_bytes()).await;
        let client = Client::builder()
            .base_url(&base)
            .api_key(ApiKey::new("sk-test"))
            .max_response_bytes(1000)
            .build()
            .unwrap();
        let failed = client.send(&hello("big")).await.unwrap_err();
        assert_eq!(failed.kind, sluice::ErrorKind::ResponseTooLarge);
        assert_eq!(failed.status, Some(200));
    }
}
