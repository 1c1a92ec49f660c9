//! The one error type of spindle, for the server and the client alike.
use std::fmt;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in a form code can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An I/O error on a socket or file.
    Io,
    /// A peer sent bytes that do not parse as HTTP.
    Parse,
    /// A configured limit was exceeded (head size, header count, body size, ...).
    Limit,
    /// A deadline or timeout passed.
    Timeout,
    /// Connecting to a peer failed.
    Connect,
    /// A URL could not be parsed or is not supported.
    Url,
    /// Redirects could not be followed (too many, a loop, or a bad Location).
    Redirect,
    /// A TLS handshake or certificate problem.
    Tls,
    /// The HTTP/2 protocol was violated (by either side).
    Http2,
    /// The peer reset the HTTP/2 stream that carried the exchange (RST_STREAM); the
    /// error code is [`Error::h2_reason`].
    StreamReset,
    /// The peer closed the HTTP/2 connection with GOAWAY before the exchange completed;
    /// the error code is [`Error::h2_reason`].
    GoAway,
    /// The connection was closed before the exchange completed.
    Closed,
    /// The caller used the API in a way that cannot work (for example a bad header value).
    Usage,
    /// The operating system offers no way to do what was asked, for example
    /// [`ListenOptions::reuse_port`](crate::server::ListenOptions::reuse_port) on Windows,
    /// which has no `SO_REUSEPORT`. Also what an I/O error of kind
    /// [`std::io::ErrorKind::Unsupported`] becomes.
    Unsupported,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Io => "i/o error",
            ErrorKind::Parse => "parse error",
            ErrorKind::Limit => "limit exceeded",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Connect => "connect error",
            ErrorKind::Url => "bad url",
            ErrorKind::Redirect => "redirect error",
            ErrorKind::Tls => "tls error",
            ErrorKind::Http2 => "http/2 error",
            ErrorKind::StreamReset => "http/2 stream reset",
            ErrorKind::GoAway => "http/2 connection going away",
            ErrorKind::Closed => "connection closed",
            ErrorKind::Usage => "usage error",
            ErrorKind::Unsupported => "unsupported on this platform",
        })
    }
}

/// The error type of spindle: a [`kind`](Error::kind), a message, the URL involved where
/// there is one, and the underlying error as [`source`](std::error::Error::source).
///
/// ```
/// use spindle::{Error, ErrorKind};
/// let err = Error::new(ErrorKind::Timeout, "reading the response head");
/// assert_eq!(err.kind(), ErrorKind::Timeout);
/// assert_eq!(err.to_string(), "timed out: reading the response head");
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    url: Option<String>,
    h2_reason: Option<crate::h2::Reason>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                url: None,
                h2_reason: None,
                source: None,
            }),
        }
    }

    /// Attach the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// Attach the URL the error concerns.
    pub fn with_url(mut self, url: impl fmt::Display) -> Error {
        self.inner.url = Some(url.to_string());
        self
    }

    /// Attach the HTTP/2 error code (of a RST_STREAM, GOAWAY or protocol error).
    pub(crate) fn with_h2_reason(mut self, reason: crate::h2::Reason) -> Error {
        self.inner.h2_reason = Some(reason);
        self
    }

    /// The HTTP/2 error code, for [`ErrorKind::StreamReset`], [`ErrorKind::GoAway`] and
    /// [`ErrorKind::Http2`] errors that carry one.
    pub fn h2_reason(&self) -> Option<crate::h2::Reason> {
        self.inner.h2_reason
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The URL involved, if any.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }

    /// The human-readable message, without the kind or the URL.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// An I/O error with context; a timeout from the OS becomes [`ErrorKind::Timeout`],
    /// an operation the OS does not offer [`ErrorKind::Unsupported`].
    pub fn io(context: impl Into<String>, err: std::io::Error) -> Error {
        let kind = match err.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ErrorKind::Timeout,
            std::io::ErrorKind::Unsupported => ErrorKind::Unsupported,
            _ => ErrorKind::Io,
        };
        Error::new(kind, context).with_source(err)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(url) = &self.inner.url {
            d.field("url", url);
        }
        if let Some(reason) = &self.inner.h2_reason {
            d.field("h2_reason", reason);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner.kind)?;
        if !self.inner.message.is_empty() {
            write!(f, ": {}", self.inner.message)?;
        }
        if let Some(url) = &self.inner.url {
            write!(f, " ({url})")?;
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::io(String::new(), err)
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> std::io::Error {
        let kind = match err.kind() {
            ErrorKind::Timeout => std::io::ErrorKind::TimedOut,
            ErrorKind::Closed => std::io::ErrorKind::UnexpectedEof,
            ErrorKind::Parse | ErrorKind::Limit => std::io::ErrorKind::InvalidData,
            ErrorKind::Unsupported => std::io::ErrorKind::Unsupported,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the OS cannot do stays recognisable through both conversions, so a caller
    /// can tell "not on this platform" from a failure.
    #[test]
    fn unsupported_round_trips_through_io_errors() {
        let os = std::io::Error::new(std::io::ErrorKind::Unsupported, "SO_REUSEPORT");
        let err = Error::io("binding the listener", os);
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert_eq!(
            err.to_string(),
            "unsupported on this platform: binding the listener: SO_REUSEPORT"
        );
        let back: std::io::Error = err.into();
        assert_eq!(back.kind(), std::io::ErrorKind::Unsupported);
    }
}
