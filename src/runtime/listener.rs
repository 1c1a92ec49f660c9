//! Listening sockets: TCP (optionally with SO_REUSEPORT) and, on Unix, Unix domain
//! sockets.
//!
//! | | Linux, macOS, the BSDs | Windows |
//! |---|---|---|
//! | TCP | yes, with `SO_REUSEADDR` | yes, without `SO_REUSEADDR` (there it lets another socket take a port in use) |
//! | `SO_REUSEPORT` | yes | none: binding with it fails with `io::ErrorKind::Unsupported` |
//! | Unix domain sockets | yes | not in `std`: the variant does not exist |
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
#[cfg(unix)]
use std::os::fd::{AsRawFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;

use super::socket::{Stream, TcpConn};

/// An accepted TCP stream as the engine holds it: std's on Unix.
#[cfg(unix)]
fn tcp_conn(stream: std::net::TcpStream) -> TcpConn {
    stream
}

/// An accepted TCP stream as the engine holds it: mio's on Windows (its operations
/// re-arm its registration; see `runtime::poll::mio`).
#[cfg(windows)]
fn tcp_conn(stream: std::net::TcpStream) -> TcpConn {
    mio::net::TcpStream::from_std(stream)
}

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket path (`None` for an unnamed socket). Only Unix systems
    /// listen on these; the variant exists everywhere so that code matching on a
    /// `ListenAddr` compiles on every platform, but it is never produced on Windows.
    Unix(Option<PathBuf>),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            ListenAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

/// Options for binding a TCP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOptions {
    /// Set SO_REUSEPORT, so several processes (or a new and an old one during a rolling
    /// restart) can listen on the same port and share its connections.
    ///
    /// Unix only (Linux, macOS, the BSDs). Windows has no such option (its
    /// `SO_REUSEADDR` lets a second socket take the port over instead of sharing it), so
    /// there binding with `reuse_port: true` fails with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) rather than quietly
    /// binding a port that cannot be shared.
    pub reuse_port: bool,
    /// The kernel's queue of connections not yet accepted.
    pub backlog: i32,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            reuse_port: false,
            backlog: 1024,
        }
    }
}

pub(crate) enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

impl Listener {
    pub fn bind_tcp(addr: impl ToSocketAddrs, options: &ListenOptions) -> io::Result<Listener> {
        let mut last_err = None;
        for addr in addr.to_socket_addrs()? {
            match bind_one(addr, options) {
                Ok(l) => return Ok(Listener::Tcp(l)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    #[cfg(unix)]
    pub fn bind_unix(path: &Path) -> io::Result<Listener> {
        Ok(Listener::Unix(UnixListener::bind(path)?))
    }

    /// The descriptor a Unix readiness backend registers.
    #[cfg(unix)]
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }

    /// A second handle to the TCP listener: on Windows each event loop accepts through
    /// its own registered mio listener (see `runtime::poll::mio`).
    #[cfg(windows)]
    pub fn try_clone_tcp(&self) -> io::Result<TcpListener> {
        match self {
            Listener::Tcp(l) => l.try_clone(),
        }
    }

    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            #[cfg(unix)]
            Listener::Unix(l) => l.set_nonblocking(true),
        }
    }

    pub fn accept(&self) -> io::Result<(Stream, Option<SocketAddr>)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(tcp_conn(s)), Some(a))),
            #[cfg(unix)]
            Listener::Unix(l) => l.accept().map(|(s, _)| (Stream::Unix(s), None)),
        }
    }

    pub fn listen_addr(&self) -> io::Result<ListenAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            #[cfg(unix)]
            Listener::Unix(l) => Ok(ListenAddr::Unix(
                l.local_addr()?.as_pathname().map(Path::to_path_buf),
            )),
        }
    }
}

fn bind_one(addr: SocketAddr, options: &ListenOptions) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // On Unix SO_REUSEADDR only lets a restarted server bind while old connections sit
    // in TIME_WAIT. On Windows it would let this socket bind a port another one is
    // listening on (and take its connections), and TIME_WAIT never blocks a bind there:
    // std's TcpListener::bind leaves it off on Windows too.
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        set_reuse_port(&socket)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(options.backlog)?;
    Ok(socket.into())
}

/// SO_REUSEPORT where socket2 offers it: every Unix but Solaris, illumos and Cygwin.
#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn set_reuse_port(socket: &socket2::Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

/// No SO_REUSEPORT here: a typed refusal, not a listener that quietly cannot be shared
/// (a rolling restart would fail with "address in use" at the worst moment).
#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn set_reuse_port(_socket: &socket2::Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT (ListenOptions::reuse_port): this operating system has none",
    ))
}
