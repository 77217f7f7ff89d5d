//! A running `serve` for the tests (the real binary on a free loopback port: it binds port 0
//! and prints the address) and a few lines of HTTP client over `TcpStream` (one request per
//! connection). A test file that uses it declares `mod common;`, `mod common_audit;` and
//! `mod common_serve;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;
use crate::common_audit::{spawn, Spawned};

/// The samples, plus a second job with three runs for paging.
pub fn repo_with_runs() -> TestRepo {
    let repo = TestRepo::new();
    repo.sample_files();
    for i in 1..=3 {
        repo.manifest(
            &format!("paged-job/run-{i}"),
            json!({"schema_version": "1.0.0", "run_id": format!("run-{i}"), "status": "succeeded"}),
        );
    }
    repo.commit("record the runs");
    repo
}

/// A running `serve` and its address.
pub struct Server {
    pub proc: Option<Spawned>,
    pub addr: String,
}

impl Server {
    pub fn start(repo: &TestRepo) -> Server {
        let mut proc = spawn(repo, &[], &["serve", "--listen", "127.0.0.1:0"]);
        assert!(
            proc.wait_for_prefix("serving http://"),
            "serve did not start: {:?}",
            proc.seen
        );
        let line = proc.seen.last().cloned().unwrap_or_default();
        let addr = line
            .trim_start_matches("serving http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{line}");
        Server {
            proc: Some(proc),
            addr,
        }
    }

    pub fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[])
    }

    pub fn json(&self, target: &str) -> Value {
        let r = self.get(target);
        assert_eq!(r.status, 200, "GET {target}: {}", r.text());
        r.json()
    }

    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
        let mut s = TcpStream::connect(&self.addr).expect("connect to the server");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("send the request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read the answer");
        Reply::parse(&raw)
    }

    /// SIGTERM, then the process's end and what it printed.
    pub fn stop(mut self) -> Run {
        let p = self.proc.take().expect("running");
        p.send("TERM");
        p.finish()
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn parse(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// An error answer: its status and `error.kind`, the shape checked.
    pub fn error(&self) -> (u16, String) {
        let v = self.json();
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
        (
            self.status,
            v["error"]["kind"].as_str().unwrap_or("").to_string(),
        )
    }
}
