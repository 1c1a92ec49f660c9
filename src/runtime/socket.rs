//! Connected sockets owned by the engine: non-blocking underneath, blocking for the
//! handler on top. A read or write that would block first hands the calling thread's
//! event loop to a spare thread (so other connections keep being served), then waits on
//! this one socket with poll(2).
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::engine::release_loop_before_blocking;
use super::sys::{wait_fd, Readiness};
use super::transport::Transport;
use crate::server::UpgradedStream;

/// A stream accepted from a TCP or Unix listener.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(true)
            }
            Stream::Unix(s) => s.set_nonblocking(true),
        }
    }

    /// Writes a short, complete answer on a socket that was never handed to the engine
    /// (still blocking), then closes it.
    pub fn answer_and_close(self, bytes: &[u8]) {
        let limit = Some(Duration::from_millis(100));
        let _ = match &self {
            Stream::Tcp(s) => s
                .set_write_timeout(limit)
                .and_then(|()| (&*s).write_all(bytes)),
            Stream::Unix(s) => s
                .set_write_timeout(limit)
                .and_then(|()| (&*s).write_all(bytes)),
        };
        let _ = match &self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }

    fn write_once(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }
}

const NO_TIMEOUT: u64 = u64::MAX;

fn encode(timeout: Option<Duration>) -> u64 {
    timeout.filter(|d| !d.is_zero()).map_or(NO_TIMEOUT, |d| {
        d.as_nanos().min(u128::from(NO_TIMEOUT - 1)) as u64
    })
}

fn decode(nanos: u64) -> Option<Duration> {
    (nanos != NO_TIMEOUT).then(|| Duration::from_nanos(nanos))
}

/// A connection's socket. Timeouts are kept here, not set on the socket, so changing
/// them costs no system call.
pub(crate) struct Socket {
    stream: Stream,
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl Socket {
    pub fn new(stream: Stream) -> Socket {
        Socket {
            stream,
            read_timeout: AtomicU64::new(NO_TIMEOUT),
            write_timeout: AtomicU64::new(NO_TIMEOUT),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.stream.raw_fd()
    }

    fn wait(&self, readiness: Readiness, timeout: &AtomicU64) -> io::Result<()> {
        release_loop_before_blocking();
        let timeout = decode(timeout.load(Ordering::Relaxed));
        if wait_fd(self.raw_fd(), readiness, timeout)? {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::TimedOut, "socket timed out"))
        }
    }
}

impl Transport for Socket {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(Readiness::Read, &self.read_timeout)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.stream.write_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(Readiness::Write, &self.write_timeout)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.store(encode(timeout), Ordering::Relaxed);
        Ok(())
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout.store(encode(timeout), Ordering::Relaxed);
        Ok(())
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    fn hijack(&self) -> io::Result<UpgradedStream> {
        let stream = match &self.stream {
            Stream::Tcp(s) => UpgradedStream::Tcp(s.try_clone()?),
            Stream::Unix(s) => UpgradedStream::Unix(s.try_clone()?),
        };
        // O_NONBLOCK belongs to the open file description, which the duplicate shares:
        // the engine's descriptor turns blocking too, but it does no more I/O on it.
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        Ok(stream)
    }
}
