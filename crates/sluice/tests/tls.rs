//! HTTPS end to end on 127.0.0.1: a server whose certificate a private CA signed is
//! refused until `SSL_CERT_FILE` names that CA, then answers over HTTP/2 (offered by
//! ALPN). This binary holds one test: it sets the process's environment, which no other
//! test may share.

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::hello;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sluice::transport::ApiKey;
use sluice::{Client, ConfigError, ErrorKind, RetryPolicy};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A CA, and a certificate for 127.0.0.1 it signed (with its key).
fn certificates() -> (String, rcgen::Certificate, KeyPair) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert, key)
}

/// An HTTPS server on 127.0.0.1 answering every request with a chat completion; counts
/// the requests that came over HTTP/2.
async fn https_server(cert: rcgen::Certificate, key: KeyPair) -> (String, Arc<AtomicUsize>) {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
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
async fn https_is_verified_against_the_webpki_roots_and_ssl_cert_file() {
    let (ca_pem, cert, key) = certificates();
    let (base, over_h2) = https_server(cert, key).await;
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
            Err(ConfigError::CertificateFile { path: named, .. }) => assert_eq!(named, path),
            other => panic!("{path:?}: {:?}", other.map(|_| "a client")),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
