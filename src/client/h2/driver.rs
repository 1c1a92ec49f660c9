//! The connection driver: the one thread that reads an HTTP/2 connection.
use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use super::shared::{Failure, Shared};
use crate::{Error, ErrorKind, Result};

const READ_BUF: usize = 64 * 1024;

/// The reading side of an HTTP/2 client connection. [`run`](Connection::run) it on a
/// thread of its own: it reads frames, routes responses and body bytes to the requests
/// waiting for them and answers the peer's SETTINGS and PINGs (through a helper thread
/// it starts, so that it never blocks on writing). Requests sent with the
/// [`SendRequest`](super::SendRequest) make no progress while nobody runs it.
///
/// `run` returns when the connection ends: the peer closed it, it failed, or every
/// `SendRequest` was dropped and the last response finished (the driver then sends
/// GOAWAY and closes the stream).
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
    pub(crate) reader: Box<dyn Read + Send>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("h2::Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Drives the connection until it ends. `Ok(())` when it ended cleanly (we or the
    /// peer closed it after a graceful GOAWAY, or the stream ended with no exchange in
    /// flight); the error otherwise. Exchanges in flight when it ends fail with it.
    pub fn run(self) -> Result<()> {
        let Connection { shared, mut reader } = self;
        std::thread::scope(|scope| {
            let flusher = std::thread::Builder::new()
                .name("spindle-h2-flush".into())
                .spawn_scoped(scope, || shared.run_flusher());
            if let Err(e) = flusher {
                let f = Failure::new(ErrorKind::Io, format!("starting the HTTP/2 writer: {e}"));
                shared.finish(f.clone());
                return Err(f.to_error());
            }
            let result = read_loop(&shared, &mut *reader);
            let failure = match &result {
                Ok(()) => Failure::new(ErrorKind::Closed, "the HTTP/2 connection closed"),
                Err(e) => Failure::from_error(e),
            };
            shared.finish(failure);
            result
        })
    }
}

fn read_loop(shared: &Shared, reader: &mut dyn Read) -> Result<()> {
    let mut buf = vec![0u8; READ_BUF];
    let mut filled = 0;
    loop {
        let n = match reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let st = shared.lock();
                if st.failure.is_some() || st.conn.is_closed() {
                    // We closed the stream ourselves (or gave up on it): not an error.
                    return Ok(());
                }
                log::debug!("h2 client: reading the connection failed: {e}");
                return Err(Error::io("reading the HTTP/2 connection", e));
            }
        };
        let mut st = shared.lock();
        if n == 0 {
            let clean = st.streams.is_empty() || st.conn.is_closed() || st.failure.is_some();
            if clean {
                return Ok(());
            }
            log::debug!("h2 client: the server closed the connection with streams open");
            return Err(Error::new(
                ErrorKind::Closed,
                "the server closed the HTTP/2 connection before the response was complete",
            ));
        }
        filled += n;
        let mut pos = 0;
        while pos < filled {
            match st.conn.recv(&buf[pos..filled]) {
                Ok(used) => {
                    pos += used;
                    st.dispatch(&shared.open_cv);
                    if used == 0 {
                        if st.conn.wants_read() {
                            break; // a partial frame: read more
                        }
                        st = shared.wait_drained(st);
                        if st.failure.is_some() {
                            break;
                        }
                    }
                }
                Err(e) => {
                    st.dispatch(&shared.open_cv);
                    log::debug!("h2 client: protocol error: {e}");
                    // The GOAWAY naming the error is in the output: let it go out.
                    st = shared.flush(st);
                    drop(st);
                    return Err(Error::new(
                        ErrorKind::Http2,
                        format!("HTTP/2 connection error: {e}"),
                    )
                    .with_h2_reason(e.reason()));
                }
            }
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        shared.request_flush(&mut st);
        if st.conn.is_closed() && st.streams.is_empty() {
            return Ok(());
        }
        if st.failure.is_some() && st.streams.is_empty() {
            return Ok(());
        }
    }
}
