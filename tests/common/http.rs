//! A running `nasheed serve` and a real HTTP client (ureq) for the tests that drive it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A running `nasheed serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `nasheed --db DB serve --listen 127.0.0.1:0 ARGS` (with the token in the
    /// environment when `token`) and waits for the address it prints. Its temp folder (where
    /// uploads are spooled) is the database's folder, so a test can see what it leaves there and
    /// a server killed mid-upload leaves nothing in the machine's /tmp.
    pub fn start(db: &Path, args: &[&str], token: bool) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nasheed"));
        // (A PostgreSQL URL has no folder: that server spools in the machine's temp folder.)
        if let Some(dir) = db.parent().filter(|d| d.is_dir()) {
            cmd.env("TMPDIR", dir);
        }
        cmd.arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("NASHEED_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if token {
            cmd.env("NASHEED_TOKEN", TOKEN);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let Some(at) = line.find("http://") else {
            let _ = child.kill();
            panic!("the server did not start: {line}");
        };
        let base = line[at..].split(';').next().unwrap().trim().to_string();
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
        });
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// The value of a metric line `name value` of /metrics.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = get(&self.url("/metrics"), None);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The uploads spooled in `dir` (a server's temp folder, see [`Server::start`]).
pub fn spooled(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("nasheed-upload-"))
                .collect()
        })
        .unwrap_or_default()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// (status, body as text) of a response.
pub fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    let mut r = r.unwrap();
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(100 << 20)
        .read_to_string()
        .unwrap();
    (status, body)
}

pub fn post(url: &str, body: &[u8], token: Option<&str>) -> (u16, String) {
    let mut req = agent().post(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    answer(req.send(body))
}

pub fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    answer(req.call())
}

pub fn delete(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = agent().delete(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    answer(req.call())
}

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
