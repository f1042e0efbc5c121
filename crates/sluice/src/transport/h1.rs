//! HTTP/1.1 spoken here, one request at a time on a connection: the request's head and
//! body written in one vectored write, the answer's head parsed by httparse (hyper's own
//! parser), its body read by the length it states, in chunks, or to the close. An answer a
//! server gave before taking the whole body (a 413, say) is read rather than the broken
//! write reported.
//!
//! Why not hyper's HTTP/1.1 connection: a request on it goes through a dispatch channel
//! to the connection's future and its answer comes back through a oneshot, with the
//! request and answer built as `http` types on the way; about a fifth of the CPU sluice
//! spent on a request against a local server was under hyper's frames
//! (docs/BENCHMARKS.md, "HTTP/1.1 spoken here"). Here the request is written straight
//! from the shared headers, and the answer read into a buffer the connection keeps.
//! HTTP/2 (what providers offer over TLS) stays on hyper.

use std::io::{self, IoSlice};
use std::task::{Context, Waker};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::Reply;
use crate::head::{self, Header};

/// The most headers an answer may have (hyper's limit).
const MAX_HEADERS: usize = 100;
/// The longest an answer's head may be (hyper's default read buffer limit is larger; a
/// head this long from an API is already broken).
const MAX_HEAD: usize = 64 * 1024;
/// What the read buffer starts at and grows by.
const READ_CHUNK: usize = 8 * 1024;

/// One HTTP/1.1 connection and the bytes read from it that no answer has used yet.
pub(super) struct H1<S> {
    io: S,
    read: BytesMut,
    /// The request head being written, its allocation kept from one request to the next.
    head: Vec<u8>,
}

/// An answer read to its end.
pub(super) struct Answer {
    /// What its head said, and its body.
    pub reply: Reply,
    /// The connection can carry another request: the answer was framed (by a length or
    /// chunks), the server did not say `Connection: close`, and nothing followed it.
    pub reusable: bool,
}

/// Why an exchange on the connection failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum H1Error {
    /// The request could not be written and no byte of it left: it may go on another
    /// connection.
    #[error("the connection failed before the request was sent: {0}")]
    Unsent(#[source] io::Error),
    #[error("the connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("the connection closed before the answer was complete")]
    Closed,
    #[error("the answer is not valid HTTP/1.1: {0}")]
    Malformed(&'static str),
    /// The body is over the caller's limit: `stated` is the length the head gave, else
    /// the first bytes of what arrived.
    #[error("the answer's body is over the limit")]
    TooLarge {
        status: u16,
        stated: Option<u64>,
        prefix: Bytes,
    },
}

/// How an answer's body is delimited (RFC 9112 §6.3).
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1<S> {
    pub(super) fn new(io: S) -> Self {
        H1 {
            io,
            read: BytesMut::with_capacity(READ_CHUNK),
            head: Vec::with_capacity(512),
        }
    }

    /// The buffer to write the next request's head into (request line, headers and the
    /// blank line), emptied.
    pub(super) fn head(&mut self) -> &mut Vec<u8> {
        self.head.clear();
        &mut self.head
    }

    /// Whether the server may still be there: an idle connection the server closed, or
    /// that has bytes no request asked for, reads as ready. Looks without waiting.
    pub(super) fn is_open(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        self.read.reserve(READ_CHUNK);
        let mut cx = Context::from_waker(Waker::noop());
        let spare = self.read.spare_capacity_mut();
        let mut buf = ReadBuf::uninit(spare);
        std::pin::Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut buf)
            .is_pending()
    }

    /// Writes the head last put in [`Self::head`] and `body`, and reads the answer, whose
    /// body may be at most `limit` bytes.
    pub(super) async fn exchange(&mut self, body: &[u8], limit: u64) -> Result<Answer, H1Error> {
        match self.write(body).await {
            Ok(()) => self.read_answer(limit).await,
            // A server may answer and close before it has taken the whole body (a 413 for
            // a body too large): what it said is worth more than the broken write.
            Err(broken @ H1Error::Io(_)) => match self.read_answer(limit).await {
                Ok(answer) => Ok(Answer {
                    reusable: false,
                    ..answer
                }),
                Err(_) => Err(broken),
            },
            Err(unsent) => Err(unsent),
        }
    }

    /// Reads the answer to the request just written.
    async fn read_answer(&mut self, limit: u64) -> Result<Answer, H1Error> {
        loop {
            let (head, framing, keep_alive) = self.read_head().await?;
            let status = head.status;
            if (100..200).contains(&status) && status != 101 {
                continue; // an interim answer (100 Continue, 103 Early Hints)
            }
            let framed = !matches!(framing, Framing::UntilClose);
            let body = match framing {
                Framing::Empty => Bytes::new(),
                Framing::Length(n) if n > limit => {
                    return Err(H1Error::TooLarge {
                        status,
                        stated: Some(n),
                        prefix: Bytes::new(),
                    });
                }
                Framing::Length(n) => self.read_exact_body(n as usize).await?,
                Framing::Chunked => self.read_chunked(status, limit).await?,
                Framing::UntilClose => self.read_to_close(status, limit).await?,
            };
            return Ok(Answer {
                reply: head.with_body(body),
                reusable: keep_alive && framed && self.read.is_empty(),
            });
        }
    }

    /// The head and the body in as few writes as the socket takes. A failure before the
    /// first byte left is [`H1Error::Unsent`].
    async fn write(&mut self, body: &[u8]) -> Result<(), H1Error> {
        let (mut head, mut body) = (&self.head[..], body);
        let mut sent_any = false;
        while !head.is_empty() || !body.is_empty() {
            let written = if head.is_empty() {
                self.io.write(body).await
            } else {
                self.io
                    .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                    .await
            };
            let n = match written {
                Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                other => other,
            }
            .map_err(|e| {
                if sent_any {
                    H1Error::Io(e)
                } else {
                    H1Error::Unsent(e)
                }
            })?;
            sent_any = true;
            let from_head = n.min(head.len());
            head = &head[from_head..];
            body = &body[n - from_head..];
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Reads more into the buffer; `Ok(false)` at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
        self.read.reserve(READ_CHUNK);
        Ok(self.io.read_buf(&mut self.read).await? > 0)
    }

    async fn read_head(&mut self) -> Result<(Reply, Framing, bool), H1Error> {
        loop {
            if !self.read.is_empty() {
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut slots);
                match response.parse(&self.read) {
                    Ok(httparse::Status::Complete(len)) => {
                        let head = head_of(&response)?;
                        self.read.advance(len);
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) if self.read.len() > MAX_HEAD => {
                        return Err(H1Error::Malformed("its head is longer than 64 KiB"));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => return Err(H1Error::Malformed(parse_error(e))),
                }
            }
            if !self.fill().await? {
                return Err(H1Error::Closed);
            }
        }
    }

    /// A body of `len` bytes, in an allocation of its own of exactly that size: the read
    /// buffer stays the connection's, for the next answer.
    async fn read_exact_body(&mut self, len: usize) -> Result<Bytes, H1Error> {
        let mut body = Vec::with_capacity(len);
        let buffered = len.min(self.read.len());
        body.extend_from_slice(&self.read[..buffered]);
        self.read.advance(buffered);
        while body.len() < len {
            // Reads into the spare capacity only, so never past this answer.
            if self.io.read_buf(&mut body).await? == 0 {
                return Err(H1Error::Closed);
            }
        }
        Ok(Bytes::from(body))
    }

    async fn read_chunked(&mut self, status: u16, limit: u64) -> Result<Bytes, H1Error> {
        let mut body = Vec::new();
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.read) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.read.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.read.len() > MAX_HEAD => {
                        return Err(H1Error::Malformed("a chunk size line is too long"));
                    }
                    Ok(httparse::Status::Partial) => self.fill_or_closed().await?,
                    Err(_) => return Err(H1Error::Malformed("a chunk size is not hexadecimal")),
                }
            };
            if size == 0 {
                self.skip_trailers().await?;
                return Ok(Bytes::from(body));
            }
            if body.len() as u64 + size > limit {
                // The start of this chunk too, as far as it has arrived.
                let more = super::TOO_LARGE_PREFIX.saturating_sub(body.len());
                body.extend_from_slice(&self.read[..more.min(self.read.len()).min(size as usize)]);
                return Err(over_limit(status, body));
            }
            let mut left = size as usize;
            while left > 0 {
                if self.read.is_empty() {
                    self.fill_or_closed().await?;
                }
                let n = left.min(self.read.len());
                body.extend_from_slice(&self.read[..n]);
                self.read.advance(n);
                left -= n;
            }
            self.expect_crlf().await?;
        }
    }

    /// The trailer section after the last chunk, up to and including its blank line.
    async fn skip_trailers(&mut self) -> Result<(), H1Error> {
        loop {
            while self.read.len() < 2 {
                self.fill_or_closed().await?;
            }
            if self.read.starts_with(b"\r\n") {
                self.read.advance(2);
                return Ok(());
            }
            match memchr::memmem::find(&self.read, b"\r\n") {
                Some(end) => self.read.advance(end + 2),
                None if self.read.len() > MAX_HEAD => {
                    return Err(H1Error::Malformed("a trailer is too long"));
                }
                None => self.fill_or_closed().await?,
            }
        }
    }

    async fn expect_crlf(&mut self) -> Result<(), H1Error> {
        while self.read.len() < 2 {
            self.fill_or_closed().await?;
        }
        if !self.read.starts_with(b"\r\n") {
            return Err(H1Error::Malformed(
                "a chunk does not end where its size says",
            ));
        }
        self.read.advance(2);
        Ok(())
    }

    async fn fill_or_closed(&mut self) -> Result<(), H1Error> {
        if self.fill().await? {
            Ok(())
        } else {
            Err(H1Error::Closed)
        }
    }

    async fn read_to_close(&mut self, status: u16, limit: u64) -> Result<Bytes, H1Error> {
        let mut body = Vec::new();
        loop {
            body.extend_from_slice(&self.read);
            self.read.clear();
            if body.len() as u64 > limit {
                return Err(over_limit(status, body));
            }
            if !self.fill().await? {
                return Ok(Bytes::from(body));
            }
        }
    }
}

/// The failure for a body without a stated length that passed the limit, keeping the
/// first bytes of `start`.
fn over_limit(status: u16, mut start: Vec<u8>) -> H1Error {
    start.truncate(super::TOO_LARGE_PREFIX);
    H1Error::TooLarge {
        status,
        stated: None,
        prefix: Bytes::from(start),
    }
}

/// What a parsed head says, its body's framing and whether the connection stays open.
fn head_of(response: &httparse::Response<'_, '_>) -> Result<(Reply, Framing, bool), H1Error> {
    let status = response.code.unwrap_or_default();
    let mut headers = head::Borrowed::new();
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut encoded = false;
    let mut close = response.version != Some(1);
    for h in response.headers.iter() {
        let header = Header::new(h.name, h.value);
        headers.push(header);
        if header.is("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(H1Error::Malformed("its Content-Length is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(H1Error::Malformed("it states two different lengths"));
            }
            length = Some(n);
        } else if header.is("transfer-encoding") {
            encoded = true;
            // Only the last coding decides whether the body is chunked.
            chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
        } else if header.is("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && response.version == Some(0) {
                    close = false;
                }
            }
        }
    }
    // After a switch of protocols the connection no longer speaks HTTP; an answer that
    // states both a length and a transfer coding may have been smuggled past something
    // in between (RFC 9112 §6.1): neither carries another request.
    if status == 101 || (encoded && length.is_some()) {
        close = true;
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if encoded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = length {
        if n == 0 {
            Framing::Empty
        } else {
            Framing::Length(n)
        }
    } else {
        Framing::UntilClose
    };
    Ok((Reply::from_head(status, &headers), framing, !close))
}

fn last_token(value: &[u8]) -> &[u8] {
    value
        .rsplit(|&b| b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::TooManyHeaders => "it has more than 100 headers",
        httparse::Error::Version => "its version is not HTTP/1.x",
        httparse::Error::Status => "its status is not a number",
        _ => "its head cannot be parsed",
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream, duplex};

    use super::*;

    const LIMIT: u64 = 1 << 20;

    /// A connection whose server side answers `answer` once the request's `request_len`
    /// bytes arrived, then closes if `close`; the server's side comes back with what it
    /// read. `buffer` bounds each read and write between the two (1: one byte at a time).
    fn connection(
        buffer: usize,
        request_len: usize,
        answer: &'static [u8],
        close: bool,
    ) -> (
        H1<DuplexStream>,
        tokio::task::JoinHandle<(Vec<u8>, DuplexStream)>,
    ) {
        let (client, mut server) = duplex(buffer);
        let task = tokio::spawn(async move {
            let mut got = vec![0u8; request_len];
            server.read_exact(&mut got).await.unwrap();
            server.write_all(answer).await.unwrap();
            if close {
                server.shutdown().await.unwrap();
            }
            (got, server)
        });
        (H1::new(client), task)
    }

    const HEAD: &[u8] = b"POST /v1/chat HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\n";
    /// The head and the body `ping` together.
    const SENT: usize = HEAD.len() + 4;

    fn request(h1: &mut H1<DuplexStream>) {
        h1.head().extend_from_slice(HEAD);
    }

    async fn exchange(
        buffer: usize,
        answer: &'static [u8],
        close: bool,
    ) -> (Result<Answer, H1Error>, H1<DuplexStream>) {
        let (mut h1, server) = connection(buffer, SENT, answer, close);
        request(&mut h1);
        let result = h1.exchange(b"ping", LIMIT).await;
        let (got, _server) = server.await.unwrap();
        assert_eq!(&got[..HEAD.len()], HEAD);
        assert_eq!(&got[HEAD.len()..], b"ping");
        (result, h1)
    }

    #[tokio::test]
    async fn an_answer_with_a_length_is_read_whole_and_the_connection_kept() {
        for buffer in [1, 7, 64 * 1024] {
            let (answer, _) = exchange(
                buffer,
                b"HTTP/1.1 200 OK\r\nX-RateLimit-Remaining-Requests: 9\r\nx-request-id: req-1\r\ncontent-length: 5\r\n\r\nhello",
                false,
            )
            .await;
            let answer = answer.unwrap();
            assert_eq!(answer.reply.status, 200);
            assert_eq!(&answer.reply.body[..], b"hello");
            assert_eq!(answer.reply.rate.requests.remaining, Some(9));
            assert_eq!(answer.reply.request_id.as_deref(), Some("req-1"));
            assert!(answer.reusable, "buffer {buffer}");
        }
    }

    #[tokio::test]
    async fn a_chunked_answer_is_joined_with_extensions_and_trailers_passed_over() {
        for buffer in [1, 5, 64 * 1024] {
            let (answer, _) = exchange(
                buffer,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-trailer: t\r\n\r\n",
                false,
            )
            .await;
            let answer = answer.unwrap();
            assert_eq!(
                &answer.reply.body[..],
                b"abc0123456789abcdef",
                "buffer {buffer}"
            );
            assert!(answer.reusable);
        }
    }

    #[tokio::test]
    async fn answers_that_close_or_run_to_the_close_leave_the_connection_unused() {
        let cases: [(&'static [u8], &[u8]); 3] = [
            (
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\ncontent-length: 2\r\n\r\nok",
                b"ok",
            ),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", b"ok"),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", b"until the end"),
        ];
        for (wire, body) in cases {
            let (answer, _) = exchange(64, wire, true).await;
            let answer = answer.unwrap();
            assert_eq!(&answer.reply.body[..], body);
            assert!(!answer.reusable, "{}", String::from_utf8_lossy(wire));
        }
    }

    #[tokio::test]
    async fn interim_answers_are_passed_over_and_empty_answers_kept() {
        let (answer, _) = exchange(
            3,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            false,
        )
        .await;
        let answer = answer.unwrap();
        assert_eq!(answer.reply.status, 204);
        assert!(answer.reply.body.is_empty());
        assert!(answer.reusable);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_with_its_stated_length_or_first_bytes() {
        let (mut h1, server) = connection(
            64 * 1024,
            SENT,
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
            false,
        );
        request(&mut h1);
        let refused = h1.exchange(b"ping", 99).await;
        assert!(matches!(
            refused,
            Err(H1Error::TooLarge {
                status: 200,
                stated: Some(100),
                ..
            })
        ));
        server.await.unwrap();
        let big = [
            &b"HTTP/1.1 500 Oops\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            &b"800\r\n"[..],
            &[b'x'; 0x800][..],
            &b"\r\n800\r\n"[..],
            &[b'y'; 0x800][..],
            &b"\r\n0\r\n\r\n"[..],
        ];
        let (status, prefix) = refused_without_length(&big, false, 3000).await;
        assert_eq!(status, 500);
        assert_eq!(&prefix[..], &[b'x'; super::super::TOO_LARGE_PREFIX][..]);
    }

    /// Sends a request to a server answering `parts` (then closing if `close`), refused
    /// for a body over `limit` with no length stated: the status and the prefix kept.
    async fn refused_without_length(parts: &[&[u8]], close: bool, limit: u64) -> (u16, Bytes) {
        let answer: &'static [u8] = Box::leak(parts.concat().into_boxed_slice());
        let (mut h1, server) = connection(64 * 1024, SENT, answer, close);
        request(&mut h1);
        let refused = match h1.exchange(b"ping", limit).await {
            Err(H1Error::TooLarge {
                status,
                stated: None,
                prefix,
            }) => (status, prefix),
            other => panic!("{:?}", other.map(|a| a.reply.status)),
        };
        server.await.unwrap();
        refused
    }

    #[tokio::test]
    async fn a_single_chunk_over_the_limit_keeps_its_own_first_bytes() {
        let one = [
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1388\r\n"[..],
            &[b'c'; 5000][..],
            &b"\r\n0\r\n\r\n"[..],
        ];
        let (_, prefix) = refused_without_length(&one, false, 3000).await;
        assert_eq!(&prefix[..], &[b'c'; super::super::TOO_LARGE_PREFIX][..]);
    }

    #[tokio::test]
    async fn a_body_running_to_the_close_over_the_limit_is_refused() {
        let long = [&b"HTTP/1.1 200 OK\r\n\r\n"[..], &[b'z'; 5000][..]];
        let (_, prefix) = refused_without_length(&long, true, 4000).await;
        assert_eq!(&prefix[..], &[b'z'; super::super::TOO_LARGE_PREFIX][..]);
    }

    #[tokio::test]
    async fn a_close_before_the_answer_is_whole_is_an_error_not_a_short_body() {
        for wire in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"[..],
            b"HTTP/1.1 200 OK\r\ncontent-le",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
            b"",
        ] {
            let (answer, _) = exchange(64, wire, true).await;
            assert!(
                matches!(answer, Err(H1Error::Closed)),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[tokio::test]
    async fn a_broken_answer_is_malformed() {
        for wire in [
            &b"HTTP/1.1 abc OK\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\ncontent-length: lots\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n",
        ] {
            let (answer, _) = exchange(64, wire, true).await;
            assert!(
                matches!(answer, Err(H1Error::Malformed(_))),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[tokio::test]
    async fn a_request_on_a_connection_the_server_dropped_is_unsent() {
        let (client, server) = duplex(64);
        drop(server);
        let mut h1 = H1::new(client);
        request(&mut h1);
        assert!(matches!(
            h1.exchange(b"ping", LIMIT).await,
            Err(H1Error::Unsent(_))
        ));
    }

    #[tokio::test]
    async fn an_answer_given_before_the_whole_body_was_taken_is_read_not_the_broken_write() {
        let (client, mut server) = duplex(1024);
        let task = tokio::spawn(async move {
            let mut head = vec![0u8; HEAD.len()];
            server.read_exact(&mut head).await.unwrap();
            server
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig")
                .await
                .unwrap();
            // Gone without reading the body.
        });
        let mut h1 = H1::new(client);
        request(&mut h1);
        let body = vec![b'x'; 1 << 20];
        let answer = h1.exchange(&body, LIMIT).await.unwrap();
        task.await.unwrap();
        assert_eq!(answer.reply.status, 413);
        assert_eq!(&answer.reply.body[..], b"big");
        assert!(!answer.reusable);
    }

    #[tokio::test]
    async fn an_idle_connection_is_open_until_the_server_closes_it_or_sends_unasked() {
        let (client, mut server) = duplex(64);
        let mut h1 = H1::new(client);
        assert!(h1.is_open());
        server
            .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            .await
            .unwrap();
        assert!(!h1.is_open());

        let (client, server) = duplex(64);
        let mut h1 = H1::new(client);
        drop(server);
        assert!(!h1.is_open());
    }
}
