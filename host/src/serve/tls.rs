//! HTTPS for `triage serve`: the config's `tls: {cert, key}` PEM files, served with rustls.
//!
//! Slack calls only https URLs, and bearer tokens must not cross a network in clear, so a
//! server reachable from anything but loopback needs TLS; this saves a reverse proxy run only
//! for that.
//!
//! The files are loaded and checked at start (a bad pair stops the server with one line).
//! Afterwards each handshake compares the files' modification times with the loaded pair's
//! (two `stat`s, nothing beside a handshake's crypto), so a renewed certificate (certbot,
//! cert-manager) is served from the next connection on without a restart. A renewal that
//! does not load, such as a half-written file, keeps the previous pair and says why once.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, rustls};

/// A client that has not finished its handshake by then is dropped, so a slow or silent
/// client cannot hold a handshake slot for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once; connections beyond it are closed at once rather than queued.
const MAX_HANDSHAKES: usize = 256;

/// The certificate chain and private key files, as PEM (absolute, or relative to the config
/// file once loaded).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Loads the pair: every certificate in `cert` (the server's first, then its chain) and
    /// the first private key in `key` (PKCS#8, PKCS#1 or SEC1), which must match the first
    /// certificate.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, String> {
        let (cert, key) = (self.cert.display(), self.key.display());
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("tls cert {cert}: {}", pem_error(&e)))?;
        if chain.is_empty() {
            return Err(format!(
                "tls cert {cert}: no certificate (expected a PEM `BEGIN CERTIFICATE` block)"
            ));
        }
        let private = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                format!(
                    "tls key {key}: no private key (expected a PEM `BEGIN … PRIVATE KEY` block)"
                )
            }
            e => format!("tls key {key}: {}", pem_error(&e)),
        })?;
        CertifiedKey::from_der(chain, private, &provider())
            .map(Arc::new)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => {
                    format!("tls: the key in {key} does not belong to the certificate in {cert}")
                }
                e => format!("tls key {key}: {e}"),
            })
    }

    fn stamp(&self) -> Stamp {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (modified(&self.cert), modified(&self.key))
    }
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// ring, the provider reqwest already brings in; named here rather than installed as the
/// process default so nothing else in the process depends on who installed it first.
fn provider() -> CryptoProvider {
    ring::default_provider()
}

/// The files' modification times when last loaded.
type Stamp = (Option<SystemTime>, Option<SystemTime>);

/// Serves the loaded pair, reloading it when the files change.
#[derive(Debug)]
struct ReloadingCert {
    files: TlsFiles,
    state: Mutex<CertState>,
}

#[derive(Debug)]
struct CertState {
    current: Arc<CertifiedKey>,
    /// The stamp `current` was loaded at.
    loaded: Stamp,
    /// The last stamp that failed to load, so a broken renewal is reported (and retried) once
    /// per change of the files rather than at every handshake.
    failed: Option<Stamp>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.files.stamp();
        if now != state.loaded && state.failed != Some(now) {
            match self.files.load() {
                Ok(pair) => {
                    eprintln!(
                        "tls: loaded the renewed certificate from {}",
                        self.files.cert.display()
                    );
                    state.current = pair;
                    state.loaded = now;
                    state.failed = None;
                }
                Err(e) => {
                    eprintln!("warning: {e}; still serving the previous certificate");
                    state.failed = Some(now);
                }
            }
        }
        Some(state.current.clone())
    }
}

/// The rustls config for `files`, checked now: the error is the one line the server stops with.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let loaded = files.stamp();
    let current = files.load()?;
    let resolver = Arc::new(ReloadingCert {
        files: files.clone(),
        state: Mutex::new(CertState {
            current,
            loaded,
            failed: None,
        }),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    // The server speaks HTTP/1.1 only (axum's http1 feature).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener whose connections have finished their TLS handshake. Handshakes run in tasks
/// of their own, so one slow client never holds up the next connection.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (ready_tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    // The server dropped the listener (shutdown): stop accepting.
                    _ = ready_tx.closed() => return,
                    accepted = tcp.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    // Out of file descriptors and the like: wait instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    continue;
                };
                let (acceptor, ready_tx) = (acceptor.clone(), ready_tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    // A failed handshake (plain HTTP, an untrusting client, a scanner) has
                    // nothing to answer; the client sees the TLS alert.
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let _ = ready_tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    #[test]
    fn a_bad_pair_is_one_line_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let check = |cert: &str, key: &str, says: &str| {
            let err = files(dir.path(), cert, key).load().unwrap_err();
            assert!(err.contains(says), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        };
        assert!(files(dir.path(), &cert, &key).load().is_ok());
        check(&cert, &other_key, "does not belong to the certificate");
        check(&cert, &cert, "no private key");
        check(&key, &key, "no certificate");
        check(&cert[..cert.len() / 2], &key, "not valid PEM");
        let missing = TlsFiles {
            cert: dir.path().join("absent.pem"),
            key: dir.path().join("key.pem"),
        };
        let err = missing.load().unwrap_err();
        assert!(
            err.starts_with("tls cert ") && err.contains("absent.pem"),
            "{err}"
        );
    }
}
