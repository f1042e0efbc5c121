//! HTTPS end to end on 127.0.0.1: a server whose certificate a private CA signed is
//! refused until `SSL_CERT_FILE` (or a PEM file in `SSL_CERT_DIR`) holds that CA, then
//! answers over HTTP/2 (offered by ALPN), also through an `https://` proxy. This binary holds one test: it sets the process's environment, which no other
//! test may share.

mod common;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{ProxyRequest, hello, read_proxy_request};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sluice::transport::ApiKey;
use sluice::{Client, ConfigError, ErrorKind, RetryPolicy};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A CA and two certificates for 127.0.0.1 it signed, with their keys (a server's and a
/// proxy's).
fn certificates() -> (String, [(rcgen::Certificate, KeyPair); 2]) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let signed = || {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert, key)
    };
    (ca.pem(), [signed(), signed()])
}

/// What a server on 127.0.0.1 presents: `cert`, offering `alpn`.
fn acceptor(cert: rcgen::Certificate, key: KeyPair, alpn: &[&[u8]]) -> TlsAcceptor {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(tls))
}

/// An `https://` proxy on 127.0.0.1 that opens `CONNECT` tunnels; records each
/// `CONNECT` line with its `Proxy-Authorization`.
async fn tls_proxy(acceptor: TlsAcceptor) -> (u16, Arc<Mutex<Vec<(String, Option<String>)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(mut client) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some(ProxyRequest { line, auth, .. }) = read_proxy_request(&mut client).await
                else {
                    return;
                };
                record.lock().unwrap().push((line.clone(), auth));
                let Some(target) = line
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split(' ').next())
                else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (port, seen)
}

/// An HTTPS server on 127.0.0.1 answering every request with a chat completion; counts
/// the requests that came over HTTP/2.
async fn https_server(acceptor: TlsAcceptor) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let over_h2 = Arc::new(AtomicUsize::new(0));
    let counted = over_h2.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake here.
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |request: http::Request<_>| {
                    if request.version() == http::Version::HTTP_2 {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(
                                br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
                            ),
                        )))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("https://{addr}/v1"), over_h2)
}

fn client(base_url: &str) -> Result<Client, ConfigError> {
    Client::builder()
        .base_url(base_url)
        .api_key(ApiKey::new("sk-test"))
        .retry(RetryPolicy {
            max_attempts: NonZeroU32::new(1).unwrap(),
            ..RetryPolicy::default()
        })
        .build()
}

#[tokio::test]
async fn https_is_verified_against_the_webpki_roots_and_ssl_cert_file_or_dir() {
    let (ca_pem, [(cert, key), (proxy_cert, proxy_key)]) = certificates();
    let (base, over_h2) = https_server(acceptor(cert, key, &[b"h2", b"http/1.1"])).await;
    let dir = std::env::temp_dir().join(format!("sluice-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // SAFETY: this binary's only test; nothing else reads the environment meanwhile.
    unsafe {
        for name in [
            "SSL_CERT_FILE",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            std::env::remove_var(name);
        }
    }

    // The private CA is no root of the web's: the handshake is refused.
    let refused = client(&base).unwrap().send(&hello("a")).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Connect, "{refused:?}");
    assert_eq!(over_h2.load(Ordering::Relaxed), 0);

    // Named by SSL_CERT_FILE, it is trusted, and the server's offer of HTTP/2 taken.
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    // SAFETY: as above.
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca_file) };
    let trusting = client(&base).unwrap();
    for i in 0..3 {
        let answer = trusting.send(&hello(&format!("b{i}"))).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    assert_eq!(over_h2.load(Ordering::Relaxed), 3);

    // A file that holds no certificate, or none at all, is a configuration error that
    // names it.
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for path in [empty, dir.join("missing.pem")] {
        // SAFETY: as above.
        unsafe { std::env::set_var("SSL_CERT_FILE", &path) };
        match client(&base) {
            Err(ConfigError::CertificateFile {
                variable: "SSL_CERT_FILE",
                path: named,
                ..
            }) => assert_eq!(named, path),
            other => panic!("{path:?}: {:?}", other.map(|_| "a client")),
        }
    }

    // A folder named by SSL_CERT_DIR: its PEM files are read, others passed over.
    let folder = dir.join("certs");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("README"), "certificates of this company\n").unwrap();
    // SAFETY: as above.
    unsafe {
        std::env::remove_var("SSL_CERT_FILE");
        std::env::set_var("SSL_CERT_DIR", &folder);
    }
    match client(&base) {
        Err(ConfigError::CertificateFile {
            variable: "SSL_CERT_DIR",
            path,
            ..
        }) => assert_eq!(path, folder),
        other => panic!(
            "a folder without certificates: {:?}",
            other.map(|_| "a client")
        ),
    }
    std::fs::write(folder.join("company-ca.pem"), &ca_pem).unwrap();
    let answer = client(&base).unwrap().send(&hello("c")).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(over_h2.load(Ordering::Relaxed), 4);

    // Through an https:// proxy (its certificate checked as servers' are): TLS to the
    // proxy, a CONNECT with its credentials, then TLS with the server inside the tunnel.
    let (proxy_port, connects) = tls_proxy(acceptor(proxy_cert, proxy_key, &[b"http/1.1"])).await;
    // SAFETY: as above.
    unsafe {
        std::env::set_var(
            "HTTPS_PROXY",
            format!("https://bob:pw@127.0.0.1:{proxy_port}"),
        );
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let answer = client(&base).unwrap().send(&hello("d")).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(
        over_h2.load(Ordering::Relaxed),
        5,
        "HTTP/2 inside the tunnel"
    );
    let server = base
        .trim_start_matches("https://")
        .trim_end_matches("/v1")
        .to_owned();
    assert_eq!(
        *connects.lock().unwrap(),
        [(
            format!("CONNECT {server} HTTP/1.1"),
            // bob:pw in base64.
            Some("Basic Ym9iOnB3".to_owned())
        )]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
