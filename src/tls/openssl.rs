//! The OpenSSL server backend (feature `openssl-alpn`): the `openssl` crate that
//! native-tls already builds on, used directly for ALPN selection and full control.
use std::fmt;
use std::io::{self, Read, Write};

use openssl::pkey::PKey;
use openssl::ssl::{
    AlpnError, ErrorCode, ShutdownResult, Ssl, SslAcceptor, SslAcceptorBuilder, SslMethod,
    SslStream,
};
use openssl::x509::X509;

use super::{
    server_handshake_error, Acceptor, HandshakeStep, ServerHandshake, ServerSession, TlsAcceptor,
    TlsIo,
};
use crate::{Error, ErrorKind, Result};

fn tls_error(message: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::new(ErrorKind::Tls, message).with_source(e)
}

/// A server TLS acceptor on OpenSSL that selects an ALPN protocol (`h2`, `http/1.1`),
/// so HTTPS can carry HTTP/2.
///
/// ```no_run
/// use spindle::tls::{Acceptor, OpensslAcceptor};
/// let acceptor: Acceptor = OpensslAcceptor::builder_from_pem(
///     &std::fs::read("cert.pem")?,
///     &std::fs::read("key.pem")?,
/// )?
/// .alpn_protocols(&["h2", "http/1.1"])?
/// .build()
/// .into();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct OpensslAcceptor {
    inner: SslAcceptor,
}

impl fmt::Debug for OpensslAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpensslAcceptor").finish_non_exhaustive()
    }
}

/// Configures an [`OpensslAcceptor`]: Mozilla's "intermediate" settings (TLS 1.2 and
/// 1.3), a certificate chain and key, ALPN protocols, and anything else through
/// [`openssl_mut`](OpensslAcceptorBuilder::openssl_mut).
pub struct OpensslAcceptorBuilder {
    inner: SslAcceptorBuilder,
}

impl fmt::Debug for OpensslAcceptorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpensslAcceptorBuilder")
            .finish_non_exhaustive()
    }
}

impl OpensslAcceptor {
    /// An acceptor from a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8 or traditional), selecting `h2`, else `http/1.1`, when the client
    /// offers them.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<OpensslAcceptor> {
        Ok(OpensslAcceptor::builder_from_pem(chain, key)?
            .alpn_protocols(&["h2", "http/1.1"])?
            .build())
    }

    /// A builder with the certificate chain and key set, and no ALPN protocol.
    pub fn builder_from_pem(chain: &[u8], key: &[u8]) -> Result<OpensslAcceptorBuilder> {
        let certs = X509::stack_from_pem(chain)
            .map_err(|e| tls_error("invalid PEM certificate chain", e))?;
        let mut certs = certs.into_iter();
        let leaf = certs.next().ok_or_else(|| {
            Error::new(
                ErrorKind::Tls,
                "the PEM certificate chain holds no certificate",
            )
        })?;
        let key =
            PKey::private_key_from_pem(key).map_err(|e| tls_error("invalid PEM private key", e))?;
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
            .map_err(|e| tls_error("setting up OpenSSL", e))?;
        b.set_certificate(&leaf)
            .map_err(|e| tls_error("setting the certificate", e))?;
        for cert in certs {
            b.add_extra_chain_cert(cert)
                .map_err(|e| tls_error("adding a chain certificate", e))?;
        }
        b.set_private_key(&key)
            .map_err(|e| tls_error("setting the private key", e))?;
        b.check_private_key()
            .map_err(|e| tls_error("the private key does not match the certificate", e))?;
        Ok(OpensslAcceptorBuilder { inner: b })
    }
}

impl OpensslAcceptorBuilder {
    /// Selects, among the protocols a client offers through ALPN, the first of
    /// `protocols` (the server's order of preference, e.g. `["h2", "http/1.1"]`). A
    /// client that offers none of them is served without ALPN.
    pub fn alpn_protocols(mut self, protocols: &[&str]) -> Result<Self> {
        let mut ours: Vec<Vec<u8>> = Vec::new();
        for p in protocols {
            if p.is_empty() || p.len() > 255 {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!("invalid ALPN protocol {p:?}"),
                ));
            }
            ours.push(p.as_bytes().to_vec());
        }
        self.inner
            .set_alpn_select_callback(move |_, client| select_alpn(&ours, client));
        Ok(self)
    }

    /// The OpenSSL builder, for settings spindle does not wrap (ciphers, session
    /// cache, client certificate verification, ...).
    pub fn openssl_mut(&mut self) -> &mut SslAcceptorBuilder {
        &mut self.inner
    }

    /// Builds the acceptor.
    pub fn build(self) -> OpensslAcceptor {
        OpensslAcceptor {
            inner: self.inner.build(),
        }
    }
}

/// The first of `ours` that the client's wire-format list offers, as a slice of the
/// client's list (which is what OpenSSL keeps).
fn select_alpn<'a>(ours: &[Vec<u8>], client: &'a [u8]) -> Result<&'a [u8], AlpnError> {
    for want in ours {
        let mut rest = client;
        while let Some((&len, tail)) = rest.split_first() {
            let len = len as usize;
            if len > tail.len() {
                break; // malformed list: stop, never panic
            }
            let (proto, next) = tail.split_at(len);
            if proto == &want[..] {
                return Ok(proto);
            }
            rest = next;
        }
    }
    Err(AlpnError::NOACK)
}

impl From<SslAcceptor> for OpensslAcceptor {
    /// Uses an OpenSSL acceptor as configured (set its ALPN select callback yourself).
    fn from(inner: SslAcceptor) -> OpensslAcceptor {
        OpensslAcceptor { inner }
    }
}

impl From<OpensslAcceptor> for Acceptor {
    fn from(acceptor: OpensslAcceptor) -> Acceptor {
        Acceptor::new(acceptor)
    }
}

impl TlsAcceptor for OpensslAcceptor {
    fn start(&self, io: TlsIo) -> Result<Box<dyn ServerHandshake>> {
        let ssl = Ssl::new(self.inner.context())
            .map_err(|e| tls_error("creating an OpenSSL session", e))?;
        let stream =
            SslStream::new(ssl, io).map_err(|e| tls_error("creating an OpenSSL stream", e))?;
        Ok(Box::new(OpensslHandshake { stream }))
    }
}

struct OpensslHandshake {
    stream: SslStream<TlsIo>,
}

impl ServerHandshake for OpensslHandshake {
    fn resume(mut self: Box<Self>) -> HandshakeStep {
        match self.stream.accept() {
            Ok(()) => {
                let alpn = self
                    .stream
                    .ssl()
                    .selected_alpn_protocol()
                    .map(<[u8]>::to_vec);
                HandshakeStep::Done(Box::new(OpensslSession {
                    stream: self.stream,
                    alpn,
                }))
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                HandshakeStep::Pending(self)
            }
            Err(e) => {
                let status = self.stream.get_ref().status();
                HandshakeStep::Failed(server_handshake_error(&status, e))
            }
        }
    }

    fn io(&self) -> &TlsIo {
        self.stream.get_ref()
    }
}

struct OpensslSession {
    stream: SslStream<TlsIo>,
    alpn: Option<Vec<u8>>,
}

impl Read for OpensslSession {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for OpensslSession {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl ServerSession for OpensslSession {
    fn negotiated_alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }
    fn buffered_plaintext(&self) -> usize {
        self.stream.ssl().pending()
    }
    fn close_notify(&mut self) -> io::Result<()> {
        match self.stream.shutdown() {
            Ok(ShutdownResult::Sent | ShutdownResult::Received) => Ok(()),
            Err(e) if e.code() == ErrorCode::ZERO_RETURN => Ok(()),
            Err(e) => Err(e
                .into_io_error()
                .unwrap_or_else(|e| io::Error::other(e.to_string()))),
        }
    }
    fn io(&self) -> &TlsIo {
        self.stream.get_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::select_alpn;

    #[test]
    fn alpn_selection_prefers_the_server_order_and_survives_garbage() {
        let ours = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        assert_eq!(select_alpn(&ours, b"\x08http/1.1\x02h2").unwrap(), b"h2");
        assert_eq!(select_alpn(&ours, b"\x08http/1.1").unwrap(), b"http/1.1");
        assert!(select_alpn(&ours, b"\x06spdy/3").is_err());
        assert!(select_alpn(&ours, b"\xffh2").is_err());
        assert!(select_alpn(&ours, b"").is_err());
        assert!(select_alpn(&[], b"\x02h2").is_err());
    }
}
