//! Waiting for one socket to become readable or writable, for an HTTP/2 connection
//! whose stream cannot be split (a TLS session shared under a lock, see `io::Locked`):
//! the reader waits here for bytes, a writer for room, neither holding the lock.
//!
//! | where | how |
//! |---|---|
//! | Unix (Linux, macOS, the BSDs) | `poll(2)` on the descriptor: one system call per wait, level-triggered |
//! | Windows | a `mio::Poll` of the connection's own for each direction (IOCP/AFD): neither `std` nor `libc` offer a poll on one socket there |
//!
//! mio is edge-triggered, and on Windows a registration is re-armed only by an
//! operation through mio's own socket object, which the TLS session does not use. So
//! the mio waiter re-registers the socket before every wait: a re-registration looks
//! at the socket's state as it is now, which makes each wait level-triggered, as
//! `poll(2)` is (a reader that left bytes unread must not sleep on them).
use std::io;

/// The socket handle a [`SocketWait`] waits on: a descriptor on Unix, a `SOCKET` on
/// Windows.
#[cfg(unix)]
pub(crate) type RawSock = std::os::fd::RawFd;
/// The socket handle a [`SocketWait`] waits on: a descriptor on Unix, a `SOCKET` on
/// Windows.
#[cfg(windows)]
pub(crate) type RawSock = std::os::windows::io::RawSocket;

/// Waits on one connected socket that something else owns and reads (and that stays
/// open while this lives).
pub(crate) struct SocketWait {
    #[cfg(unix)]
    fd: RawSock,
    #[cfg(windows)]
    read: std::sync::Mutex<MioWait>,
    #[cfg(windows)]
    write: std::sync::Mutex<MioWait>,
}

impl SocketWait {
    /// A waiter for `sock`, which must stay open until the waiter is dropped.
    pub(crate) fn new(sock: RawSock) -> io::Result<SocketWait> {
        #[cfg(unix)]
        {
            Ok(SocketWait { fd: sock })
        }
        #[cfg(windows)]
        {
            use std::sync::Mutex;
            Ok(SocketWait {
                read: Mutex::new(MioWait::new(sock, mio::Interest::READABLE)?),
                write: Mutex::new(MioWait::new(sock, mio::Interest::WRITABLE)?),
            })
        }
    }

    /// Returns once the socket has bytes to read, or the peer hung up or reset it.
    pub(crate) fn readable(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            poll_one(self.fd, libc::POLLIN)
        }
        #[cfg(windows)]
        {
            lock(&self.read).wait()
        }
    }

    /// Returns once the socket has room for more bytes, or the peer hung up or reset it.
    pub(crate) fn writable(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            poll_one(self.fd, libc::POLLOUT)
        }
        #[cfg(windows)]
        {
            lock(&self.write).wait()
        }
    }
}

#[cfg(windows)]
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One `poll(2)` on one descriptor, without a timeout, retried when a signal
/// interrupts it. An error or hang-up (POLLERR, POLLHUP) ends the wait too: the read or
/// write that follows reports it.
#[cfg(unix)]
fn poll_one(fd: RawSock, events: libc::c_short) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one pollfd we own; the caller keeps the descriptor open (see
        // `SocketWait::new`).
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A mio poll watching one socket for one direction (the Windows waiter; compiled for
/// the tests on Unix too, where it registers the raw descriptor).
#[cfg(any(windows, test))]
pub(crate) struct MioWait {
    poll: mio::Poll,
    events: mio::Events,
    source: Borrowed,
    interest: mio::Interest,
}

/// The socket as mio registers it, never closed here. Windows: mio's own socket type
/// over the borrowed `SOCKET` (mio registers nothing else there), handed back with
/// `into_raw_socket` on drop.
#[cfg(windows)]
struct Borrowed(Option<mio::net::TcpStream>);

/// The socket as mio registers it: the raw descriptor.
#[cfg(all(unix, test))]
struct Borrowed(std::os::fd::RawFd);

#[cfg(any(windows, test))]
impl Borrowed {
    fn new(sock: RawSock) -> Borrowed {
        #[cfg(windows)]
        {
            use std::os::windows::io::FromRawSocket;
            // SAFETY: the caller keeps `sock`, a connected TCP socket, open while the
            // waiter lives, and `Drop for MioWait` gives it back without closing it.
            Borrowed(Some(unsafe { mio::net::TcpStream::from_raw_socket(sock) }))
        }
        #[cfg(unix)]
        {
            Borrowed(sock)
        }
    }

    fn with<R>(
        &mut self,
        f: impl FnOnce(&mut dyn mio::event::Source) -> io::Result<R>,
    ) -> io::Result<R> {
        #[cfg(windows)]
        {
            match self.0.as_mut() {
                Some(s) => f(s),
                None => Err(io::ErrorKind::NotConnected.into()),
            }
        }
        #[cfg(unix)]
        {
            f(&mut mio::unix::SourceFd(&self.0))
        }
    }
}

#[cfg(any(windows, test))]
const TOKEN: mio::Token = mio::Token(0);

#[cfg(any(windows, test))]
impl MioWait {
    pub(crate) fn new(sock: RawSock, interest: mio::Interest) -> io::Result<MioWait> {
        let poll = mio::Poll::new()?;
        let mut source = Borrowed::new(sock);
        source.with(|s| poll.registry().register(s, TOKEN, interest))?;
        Ok(MioWait {
            poll,
            events: mio::Events::with_capacity(4),
            source,
            interest,
        })
    }

    /// Re-arms the registration (so the socket's present state counts, see the module
    /// docs), then sleeps until mio reports it.
    pub(crate) fn wait(&mut self) -> io::Result<()> {
        let registry = self.poll.registry();
        let interest = self.interest;
        self.source
            .with(|s| registry.reregister(s, TOKEN, interest))?;
        loop {
            match self.poll.poll(&mut self.events, None) {
                Ok(()) if !self.events.is_empty() => return Ok(()),
                Ok(()) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(any(windows, test))]
impl Drop for MioWait {
    fn drop(&mut self) {
        let registry = self.poll.registry();
        let _ = self.source.with(|s| registry.deregister(s));
        #[cfg(windows)]
        if let Some(s) = self.source.0.take() {
            use std::os::windows::io::IntoRawSocket;
            // Not closed: the stream that owns it closes it.
            let _ = s.into_raw_socket();
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    /// Both waiters, as the tests drive them: `readable` or `writable` once.
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Poll,
        Mio,
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// Runs one wait on `sock` on another thread; the receiver gets its result.
    fn wait_in_thread(kind: Kind, sock: &TcpStream, write: bool) -> mpsc::Receiver<io::Result<()>> {
        let fd = sock.as_raw_fd();
        let (tx, rx) = mpsc::channel();
        // Built here, so that the registration exists before the test acts.
        let waiter: Box<dyn FnOnce() -> io::Result<()> + Send> = match kind {
            Kind::Poll => {
                let w = SocketWait::new(fd).unwrap();
                Box::new(move || if write { w.writable() } else { w.readable() })
            }
            Kind::Mio => {
                let interest = if write {
                    mio::Interest::WRITABLE
                } else {
                    mio::Interest::READABLE
                };
                let mut w = MioWait::new(fd, interest).unwrap();
                Box::new(move || w.wait())
            }
        };
        thread::spawn(move || {
            let _ = tx.send(waiter());
        });
        rx
    }

    const SOON: Duration = Duration::from_secs(5);

    /// A wait ends when bytes arrive, not before.
    fn readable_when_bytes_arrive(kind: Kind) {
        let (mut a, b) = pair();
        let rx = wait_in_thread(kind, &b, false);
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "{kind:?}: the wait ended with nothing to read"
        );
        a.write_all(b"x").unwrap();
        rx.recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("{kind:?}: no wake-up for readable bytes"))
            .unwrap();
    }

    /// Bytes left unread end every later wait at once (level-triggered): the reader
    /// that read part of them must not sleep on the rest.
    fn unread_bytes_end_every_wait(kind: Kind) {
        let (mut a, b) = pair();
        a.write_all(b"xyz").unwrap();
        for round in 0..3 {
            wait_in_thread(kind, &b, false)
                .recv_timeout(SOON)
                .unwrap_or_else(|_| panic!("{kind:?}: round {round} slept on unread bytes"))
                .unwrap();
        }
        // And with the same waiter twice (mio: the re-registration re-arms it).
        if let Kind::Mio = kind {
            let mut w = MioWait::new(b.as_raw_fd(), mio::Interest::READABLE).unwrap();
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                let _ = tx.send(w.wait().and_then(|()| w.wait()));
            });
            rx.recv_timeout(SOON)
                .expect("mio: the second wait on the same waiter slept on unread bytes")
                .unwrap();
        }
    }

    /// The peer's close ends a read wait (the read then returns 0).
    fn hang_up_ends_a_read_wait(kind: Kind) {
        let (a, mut b) = pair();
        let rx = wait_in_thread(kind, &b, false);
        drop(a);
        rx.recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("{kind:?}: the peer's close did not end the wait"))
            .unwrap();
        assert_eq!(b.read(&mut [0u8; 8]).unwrap(), 0);
    }

    /// A full socket makes a write wait sleep until the peer reads.
    fn writable_once_the_peer_reads(kind: Kind) {
        let (mut a, b) = pair();
        wait_in_thread(kind, &b, true)
            .recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("{kind:?}: an empty socket is not writable"))
            .unwrap();
        b.set_nonblocking(true).unwrap();
        let chunk = [0u8; 64 * 1024];
        let mut filled = 0usize;
        loop {
            match (&b).write(&chunk) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the socket: {e}"),
            }
            assert!(filled < 1 << 30, "the socket never filled");
        }
        b.set_nonblocking(false).unwrap();
        let rx = wait_in_thread(kind, &b, true);
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "{kind:?}: a full socket reported room"
        );
        let mut sink = vec![0u8; 1 << 20];
        let mut drained = 0usize;
        while drained < filled {
            drained += a.read(&mut sink).unwrap();
            if rx.try_recv().is_ok() {
                return;
            }
        }
        rx.recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("{kind:?}: no wake-up once the peer read"))
            .unwrap();
    }

    #[test]
    fn poll_waiter() {
        readable_when_bytes_arrive(Kind::Poll);
        unread_bytes_end_every_wait(Kind::Poll);
        hang_up_ends_a_read_wait(Kind::Poll);
        writable_once_the_peer_reads(Kind::Poll);
    }

    /// The Windows waiter's logic, run here on epoll through mio.
    #[test]
    fn mio_waiter() {
        readable_when_bytes_arrive(Kind::Mio);
        unread_bytes_end_every_wait(Kind::Mio);
        hang_up_ends_a_read_wait(Kind::Mio);
        writable_once_the_peer_reads(Kind::Mio);
    }
}
