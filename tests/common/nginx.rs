//! nginx as a test peer: the fixed part of its configuration around the caller's
//! `server` blocks, started in a directory of the caller's; stopped by its PID, and the
//! directory removed, when dropped.
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx (one worker, no daemon).
pub struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx with its pid, log and temp files in `dir` and `http` (directives and
    /// `server` blocks) inside its `http { }` block, and waits until `port` accepts
    /// connections. `None` when nginx is not installed (a loud skip, or a panic under
    /// `CI=true`: see [`super::tool_available`]).
    pub fn start(dir: &Path, http: &str, port: u16) -> Option<Nginx> {
        if !super::tool_available("nginx") {
            return None;
        }
        let d = dir.display();
        let conf = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{http}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("writing nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx");
        let mut nginx = Nginx {
            child,
            dir: dir.to_owned(),
        };
        nginx.wait_listening(port);
        Some(nginx)
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited early: {status}\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
