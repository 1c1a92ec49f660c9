//! The native-tls backend (OpenSSL on Linux): server acceptor, client connector,
//! certificates and identities.
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{
    server_handshake_error, Acceptor, HandshakeStep, IoStatus, ServerHandshake, ServerSession,
    TlsAcceptor, TlsConnector, TlsIo,
};
use crate::client::Stream;
use crate::{Error, ErrorKind, Result};

fn tls_error(message: impl Into<String>, e: native_tls::Error) -> Error {
    Error::new(ErrorKind::Tls, message).with_source(e)
}

// ---------------------------------------------------------------------------------------
// Server side

/// `native_tls::TlsAcceptor` as a spindle [`TlsAcceptor`].
struct NativeAcceptor(native_tls::TlsAcceptor);

impl TlsAcceptor for NativeAcceptor {
    fn start(&self, io: TlsIo) -> Result<Box<dyn ServerHandshake>> {
        Ok(Box::new(NativeHandshake::Start(self.0.clone(), io)))
    }
}

impl From<native_tls::TlsAcceptor> for Acceptor {
    /// Uses a native-tls acceptor as configured (identity, protocol versions, ALPN
    /// protocols given to its builder's `accept_alpn`).
    fn from(acceptor: native_tls::TlsAcceptor) -> Acceptor {
        Acceptor::new(NativeAcceptor(acceptor))
    }
}

impl Acceptor {
    /// A native-tls acceptor from a PEM certificate chain (leaf first) and a PEM
    /// PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`). It selects `h2` through ALPN
    /// when the client offers it, so such clients speak HTTP/2, others HTTP/1.1 (as Go's
    /// net/http does); [`from_pem_alpn`](Acceptor::from_pem_alpn) with `&["http/1.1"]`
    /// serves only HTTP/1.1.
    ///
    /// native-tls does not check that the key belongs to the certificate: a mismatch
    /// shows up as failing handshakes. (`OpensslAcceptor`, feature `openssl-alpn`, checks.)
    ///
    /// ```no_run
    /// let acceptor = spindle::tls::Acceptor::from_pem(
    ///     &std::fs::read("cert.pem")?,
    ///     &std::fs::read("key.pem")?,
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Acceptor> {
        Acceptor::from_pem_alpn(chain, key, &["h2", "http/1.1"])
    }

    /// Like [`from_pem`](Acceptor::from_pem), selecting the first of `protocols` (in
    /// the server's order of preference, e.g. `["h2", "http/1.1"]`) that the client
    /// offers through ALPN. A client offering none of them is served without ALPN.
    pub fn from_pem_alpn(chain: &[u8], key: &[u8], protocols: &[&str]) -> Result<Acceptor> {
        let identity = native_tls::Identity::from_pkcs8(chain, key).map_err(|e| {
            tls_error(
                "invalid server identity (a PEM certificate chain and a PEM PKCS#8 key are expected)",
                e,
            )
        })?;
        let mut builder = native_tls::TlsAcceptor::builder(identity);
        if !protocols.is_empty() {
            builder.accept_alpn(protocols);
        }
        let acceptor = builder
            .build()
            .map_err(|e| tls_error("building the TLS acceptor", e))?;
        Ok(Acceptor::from(acceptor))
    }

    /// [`from_pem`](Acceptor::from_pem) with the two files read from disk.
    pub fn from_pem_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Acceptor> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
        };
        Acceptor::from_pem(&read(chain.as_ref())?, &read(key.as_ref())?)
    }
}

enum NativeHandshake {
    Start(native_tls::TlsAcceptor, TlsIo),
    Mid(native_tls::MidHandshakeTlsStream<TlsIo>),
}

impl NativeHandshake {
    fn outcome(
        status: Arc<IoStatus>,
        r: std::result::Result<native_tls::TlsStream<TlsIo>, native_tls::HandshakeError<TlsIo>>,
    ) -> HandshakeStep {
        match r {
            Ok(stream) => {
                let alpn = stream.negotiated_alpn().ok().flatten();
                HandshakeStep::Done(Box::new(NativeSession { stream, alpn }))
            }
            Err(native_tls::HandshakeError::WouldBlock(mid)) => {
                HandshakeStep::Pending(Box::new(NativeHandshake::Mid(mid)))
            }
            Err(native_tls::HandshakeError::Failure(e)) => {
                HandshakeStep::Failed(server_handshake_error(&status, e))
            }
        }
    }
}

impl ServerHandshake for NativeHandshake {
    fn resume(self: Box<Self>) -> HandshakeStep {
        let status = self.io().status();
        match *self {
            NativeHandshake::Start(acceptor, io) => Self::outcome(status, acceptor.accept(io)),
            NativeHandshake::Mid(mid) => Self::outcome(status, mid.handshake()),
        }
    }

    fn io(&self) -> &TlsIo {
        match self {
            NativeHandshake::Start(_, io) => io,
            NativeHandshake::Mid(mid) => mid.get_ref(),
        }
    }
}

struct NativeSession {
    stream: native_tls::TlsStream<TlsIo>,
    alpn: Option<Vec<u8>>,
}

impl Read for NativeSession {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for NativeSession {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl ServerSession for NativeSession {
    fn negotiated_alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }
    fn buffered_plaintext(&self) -> usize {
        self.stream.buffered_read_size().unwrap_or(0)
    }
    fn close_notify(&mut self) -> io::Result<()> {
        self.stream.shutdown()
    }
    fn io(&self) -> &TlsIo {
        self.stream.get_ref()
    }
}

// ---------------------------------------------------------------------------------------
// Client side

/// An X.509 certificate, for [`ClientBuilder::add_root_certificate`](crate::client::ClientBuilder::add_root_certificate).
#[derive(Clone)]
pub struct Certificate(pub(crate) native_tls::Certificate);

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate").finish_non_exhaustive()
    }
}

impl Certificate {
    /// Parses one PEM certificate (`-----BEGIN CERTIFICATE-----`).
    pub fn from_pem(pem: &[u8]) -> Result<Certificate> {
        native_tls::Certificate::from_pem(pem)
            .map(Certificate)
            .map_err(|e| tls_error("invalid PEM certificate", e))
    }

    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate> {
        native_tls::Certificate::from_der(der)
            .map(Certificate)
            .map_err(|e| tls_error("invalid DER certificate", e))
    }

    /// Parses every certificate of a PEM bundle (a CA file with several certificates).
    pub fn bundle_from_pem(pem: &[u8]) -> Result<Vec<Certificate>> {
        native_tls::Certificate::stack_from_pem(pem)
            .map(|v| v.into_iter().map(Certificate).collect())
            .map_err(|e| tls_error("invalid PEM certificate bundle", e))
    }
}

impl From<native_tls::Certificate> for Certificate {
    fn from(c: native_tls::Certificate) -> Certificate {
        Certificate(c)
    }
}

/// A client certificate with its private key, for
/// [`ClientBuilder::identity`](crate::client::ClientBuilder::identity).
#[derive(Clone)]
pub struct Identity(pub(crate) native_tls::Identity);

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl Identity {
    /// From a DER PKCS#12 archive (`.p12`, `.pfx`) and its password.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Identity> {
        native_tls::Identity::from_pkcs12(der, password)
            .map(Identity)
            .map_err(|e| tls_error("invalid PKCS#12 identity", e))
    }

    /// From a PEM certificate chain (leaf first) and a PEM PKCS#8 private key
    /// (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Identity> {
        native_tls::Identity::from_pkcs8(chain, key)
            .map(Identity)
            .map_err(|e| tls_error("invalid PEM identity (PKCS#8 key expected)", e))
    }
}

impl From<native_tls::Identity> for Identity {
    fn from(i: native_tls::Identity) -> Identity {
        Identity(i)
    }
}

/// The client's TLS settings, gathered by the client builder.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    pub(crate) roots: Vec<Certificate>,
    pub(crate) no_built_in_roots: bool,
    pub(crate) identity: Option<Identity>,
    pub(crate) accept_invalid_certs: bool,
    pub(crate) accept_invalid_hostnames: bool,
    pub(crate) offer_h2: bool,
}

impl TlsOptions {
    pub(crate) fn build(&self) -> Result<NativeTlsConnector> {
        let mut b = native_tls::TlsConnector::builder();
        for root in &self.roots {
            b.add_root_certificate(root.0.clone());
        }
        b.disable_built_in_roots(self.no_built_in_roots);
        if let Some(id) = &self.identity {
            b.identity(id.0.clone());
        }
        b.danger_accept_invalid_certs(self.accept_invalid_certs);
        b.danger_accept_invalid_hostnames(self.accept_invalid_hostnames);
        if self.offer_h2 {
            b.request_alpns(&["h2", "http/1.1"]);
        } else {
            b.request_alpns(&["http/1.1"]);
        }
        let connector = b
            .build()
            .map_err(|e| tls_error("building the TLS connector", e))?;
        Ok(NativeTlsConnector { inner: connector })
    }
}

/// The native-tls client backend. [`Client`](crate::Client) uses one by default, built
/// from the builder's TLS options; wrap your own `native_tls::TlsConnector` with
/// `NativeTlsConnector::from` and pass it to
/// [`ClientBuilder::tls_connector`](crate::client::ClientBuilder::tls_connector) for
/// settings spindle does not expose (set its ALPN protocols yourself then).
#[derive(Clone)]
pub struct NativeTlsConnector {
    inner: native_tls::TlsConnector,
}

impl fmt::Debug for NativeTlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeTlsConnector").finish_non_exhaustive()
    }
}

impl From<native_tls::TlsConnector> for NativeTlsConnector {
    fn from(inner: native_tls::TlsConnector) -> NativeTlsConnector {
        NativeTlsConnector { inner }
    }
}

impl NativeTlsConnector {
    /// The system's root certificates, offering ALPN `http/1.1`.
    pub fn new() -> Result<NativeTlsConnector> {
        TlsOptions::default().build()
    }
}

/// Why a client handshake failed, in words, from OpenSSL's verification result.
fn client_failure(host: &str, e: native_tls::Error) -> Error {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let why = if lower.contains("hostname mismatch")
        || lower.contains("ip address mismatch")
        || lower.contains("host name mismatch")
    {
        format!("the certificate is not valid for the host name {host}")
    } else if lower.contains("unable to get local issuer")
        || lower.contains("self-signed certificate")
        || lower.contains("self signed certificate")
        || lower.contains("unable to get issuer")
        || lower.contains("unknown ca")
    {
        "the certificate is not signed by a trusted CA (unknown issuer)".to_owned()
    } else if lower.contains("certificate has expired") {
        "the certificate has expired".to_owned()
    } else if lower.contains("certificate is not yet valid") {
        "the certificate is not yet valid".to_owned()
    } else if lower.contains("certificate verify failed") {
        "the certificate was rejected".to_owned()
    } else if lower.contains("certificate required")
        || lower.contains("alert bad certificate")
        || lower.contains("alert certificate")
    {
        "the server rejected the client certificate (or its absence)".to_owned()
    } else {
        "handshake failed".to_owned()
    };
    tls_error(format!("TLS handshake with {host} failed: {why}"), e)
}

impl TlsConnector for NativeTlsConnector {
    fn connect(&self, host: &str, stream: Box<dyn Stream>) -> Result<Box<dyn Stream>> {
        match self.inner.connect(host, stream) {
            Ok(stream) => {
                let alpn = stream.negotiated_alpn().ok().flatten();
                Ok(Box::new(NativeClientStream { stream, alpn }))
            }
            Err(native_tls::HandshakeError::Failure(e)) => {
                let timed_out = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<io::Error>())
                    .is_some_and(|io| {
                        matches!(
                            io.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        )
                    });
                if timed_out {
                    Err(tls_error(format!("TLS handshake with {host} timed out"), e))
                } else {
                    Err(client_failure(host, e))
                }
            }
            Err(native_tls::HandshakeError::WouldBlock(_)) => Err(Error::new(
                ErrorKind::Tls,
                format!("TLS handshake with {host} timed out"),
            )),
        }
    }
}

/// A client TLS stream over any pooled [`Stream`].
struct NativeClientStream {
    stream: native_tls::TlsStream<Box<dyn Stream>>,
    alpn: Option<Vec<u8>>,
}

impl Read for NativeClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for NativeClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Stream for NativeClientStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.get_ref().set_read_timeout(timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.get_ref().set_write_timeout(timeout)
    }
    fn peer_closed(&self) -> bool {
        // Plaintext nobody asked for, or a close_notify / FIN waiting on the socket.
        self.stream.buffered_read_size().unwrap_or(0) > 0 || self.stream.get_ref().peer_closed()
    }
    fn negotiated_alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }
    fn shutdown(&self) -> io::Result<()> {
        self.stream.get_ref().shutdown()
    }
    #[cfg(unix)]
    fn readable_fd(&self) -> Option<std::os::fd::RawFd> {
        self.stream.get_ref().readable_fd()
    }
    #[cfg(windows)]
    fn readable_socket(&self) -> Option<std::os::windows::io::RawSocket> {
        self.stream.get_ref().readable_socket()
    }
    fn buffered_read(&self) -> usize {
        self.stream.buffered_read_size().unwrap_or(0)
    }
}
