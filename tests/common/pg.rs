//! A real PostgreSQL server for the tests that need one: a private cluster started on a temp
//! folder and a free port (Debian's `postgresql` package provides the binaries; CI installs
//! it), stopped and removed when dropped. `NASHEED_TEST_PG_URL` names an existing server
//! instead (a role that may create databases). With neither, the test fails and says why: a
//! test of the shared index never passes without a database behind it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A PostgreSQL server for one test binary.
pub struct TestPg {
    /// URL of its maintenance database (`postgres`).
    base: String,
    /// The cluster this fixture started (`None` for `NASHEED_TEST_PG_URL`).
    cluster: Option<Cluster>,
}

struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
}

/// The folder of `initdb` and `pg_ctl`: on PATH, else Debian's newest version.
fn server_binaries() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Runs a server binary; as root, as the `postgres` user (initdb refuses to run as root).
fn run_as_owner(bin: &Path, args: &[&str]) -> std::process::Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

impl TestPg {
    /// Starts (or finds) the server; panics with the reason when there is none.
    pub fn start() -> TestPg {
        // Scanners keep replicas of a PostgreSQL index in a cache folder: the tests' go under
        // the target folder, not the user's cache (one folder per test binary, set alike by
        // every test of it).
        std::env::set_var(
            "NASHEED_REPLICA_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replicas"),
        );
        if let Ok(url) = std::env::var("NASHEED_TEST_PG_URL") {
            return TestPg {
                base: url,
                cluster: None,
            };
        }
        let Some(bin) = server_binaries() else {
            panic!(
                "PostgreSQL is needed by this test and was not found: install the server \
                 (apt-get install postgresql) or set NASHEED_TEST_PG_URL to a server where \
                 this role may create databases"
            );
        };
        let dir = std::env::temp_dir().join(format!(
            "nasheed-pg-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The server runs as `postgres` when the tests run as root: it must own its folder.
        let _ = Command::new("chown").arg("postgres").arg(&dir).output();
        let data = dir.join("data");
        let data_s = data.display().to_string();
        let out = run_as_owner(
            &bin.join("initdb"),
            &["-D", &data_s, "-A", "trust", "-U", "nasheed", "--no-sync"],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.display()
        );
        let log = dir.join("log").display().to_string();
        let out = run_as_owner(
            &bin.join("pg_ctl"),
            &["-D", &data_s, "-o", &opts, "-l", &log, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        TestPg {
            base: format!("postgres://nasheed@127.0.0.1:{port}/postgres"),
            cluster: Some(Cluster { dir, bin }),
        }
    }

    /// A new, empty database on the server; its URL.
    pub fn database(&self, name: &str) -> String {
        let db = format!(
            "nasheed_{name}_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = postgres::Client::connect(&self.base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.base));
        // One statement each: a multi-statement string runs as one transaction block.
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        let (prefix, _) = self.base.rsplit_once('/').unwrap_or((&self.base, ""));
        format!("{prefix}/{db}")
    }
}

impl TestPg {
    /// Drops the database `url` names and makes an empty one of the same name.
    pub fn recreate(&self, url: &str) {
        let name = url.rsplit('/').next().unwrap_or_default();
        let mut client = postgres::Client::connect(&self.base, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
    }
}

static COUNT: AtomicUsize = AtomicUsize::new(0);

impl Drop for TestPg {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let data = c.dir.join("data").display().to_string();
            let _ = run_as_owner(
                &c.bin.join("pg_ctl"),
                &["-D", &data, "-m", "immediate", "stop"],
            );
            let _ = std::fs::remove_dir_all(&c.dir);
        }
    }
}
