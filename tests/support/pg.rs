//! A throwaway PostgreSQL server for the tests of one test binary, from Debian's
//! `postgresql` binaries (`initdb`, `postgres`), on a free loopback port.
//!
//! The server runs under a small `sh` wrapper whose standard input is a pipe this process
//! holds (in a static, for the life of the process): when the process ends, however it
//! ends (SIGKILL included), the pipe closes, the wrapper's `read` returns, and it stops the
//! server and removes its directory. As root (CI) the binaries run as the `postgres` user,
//! since they refuse to run as root. Each test gets its own database.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct PgServer {
    pub port: u16,
    /// Keeps the wrapper's stdin open; dropping it (at exit) stops the server.
    _stdin: Mutex<ChildStdin>,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists() && d.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `cmd args...`, as the `postgres` user when we are root.
fn as_pg_user(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start() -> Result<PgServer, String> {
    let bin = bin_dir()
        .ok_or("no initdb/postgres under /usr/lib/postgresql (apt-get install postgresql)")?;
    let root = is_root();
    if root
        && !Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Err("running as root and there is no postgres user to run the server as".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("am-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    if root {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("chown postgres {}", dir.display()));
        }
    }
    let data = dir.join("data");
    let out = as_pg_user(root, &bin.join("initdb"))
        .args(["-D"])
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-locale",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let script = r#"
"$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 >"$2/log" 2>&1 &
pid=$!
read _ignored
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$2"
"#;
    let mut child = as_pg_user(root, Path::new("/bin/sh"))
        .arg("-c")
        .arg(script)
        .arg("pg-wrapper")
        .arg(&bin)
        .arg(&dir)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start postgres: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    // Reaped by nobody: the wrapper outlives this handle only until the pipe closes.
    std::mem::forget(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    loop {
        match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => {
                let mut log = String::new();
                let _ = std::fs::File::open(dir.join("log"))
                    .and_then(|mut f| f.read_to_string(&mut log));
                return Err(format!("postgres did not accept connections: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Ok(PgServer {
        port,
        _stdin: Mutex::new(stdin),
    })
}

/// A new, empty database on the shared server, as a URL; `None` (after one loud line on
/// stderr) when PostgreSQL cannot run here.
pub fn fresh_database(test: &str) -> Option<String> {
    let server = match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("SKIPPED: PostgreSQL test {test} not run: {why}");
            return None;
        }
    };
    let name = format!(
        "t{}_{}",
        NEXT_DB.fetch_add(1, Ordering::SeqCst),
        std::process::id()
    );
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let mut c =
        postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the test server");
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    Some(format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        server.port
    ))
}
