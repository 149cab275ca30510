//! The HTTP listener as a process under hostile clients: half-open connections under a low
//! open-file limit, a flood beyond that limit, slow headers and idle keep-alive connections.
//! Every service here decides from an `always` schedule, so nothing depends on the hour.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::process::{Process, curfew_with_open_files, run_args, simulated_config};

/// The open-file limit the services run under: low enough that 300 clients exhaust it.
const OPEN_FILES: u32 = 256;

/// `curfew run` on a small simulated estate that is always up, with extra `server` keys.
fn run_with_server_keys(dir: &Path, server: &str) -> Process {
    let config = simulated_config(dir, server);
    let command = curfew_with_open_files(OPEN_FILES, run_args(&config, dir));
    Process::start(command, &dir.join("service.log"))
}

/// A client that sent the start of a request line and nothing more.
fn half_open(addr: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.write_all(b"GET /heal").ok()?;
    Some(stream)
}

/// `GET /healthz` on a fresh connection: the status, or `None` when no answer came within
/// `patience`.
fn probe(addr: &str, patience: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr.parse().ok()?, patience).ok()?;
    stream.set_read_timeout(Some(patience)).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: curfew\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the server has closed `stream` (reading gives end of file or a reset) within
/// `patience`.
fn closed_by_server(stream: &mut TcpStream, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    let mut buffer = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn half_open_connections_under_a_low_open_file_limit_do_not_starve_healthz() {
    let dir = tempfile::tempdir().unwrap();
    // The demo, at the settings a user gets: nothing about the listener is configured.
    let command = curfew_with_open_files(
        OPEN_FILES,
        [
            "demo".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--state-dir".as_ref(),
            dir.path().join("state").as_os_str(),
        ],
    );
    let service = Process::start(command, &dir.path().join("service.log"));

    let mut clients: Vec<TcpStream> = (0..300).filter_map(|_| half_open(&service.addr)).collect();
    assert_eq!(clients.len(), 300, "the kernel queues every connection");
    for attempt in 0..5 {
        assert_eq!(
            probe(&service.addr, Duration::from_secs(5)),
            Some(200),
            "probe {attempt} of /healthz behind 300 half-open connections"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Room was made by closing the connections that waited longest.
    let closed = clients
        .iter_mut()
        .take(100)
        .map(|c| closed_by_server(c, Duration::from_millis(200)))
        .filter(|closed| *closed)
        .count();
    assert!(closed >= 90, "only {closed} of the oldest 100 were closed");
    let log = service.log_text();
    assert!(
        !log.contains("Too many open files"),
        "the connection cap keeps the service below its open-file limit:\n{log}"
    );
}

#[test]
fn a_flood_beyond_the_open_file_limit_is_survived_with_backoff_not_log_spam() {
    let dir = tempfile::tempdir().unwrap();
    // A cap above the open-file limit: accepting runs out of descriptors.
    let service = run_with_server_keys(
        dir.path(),
        "  max_connections: 1000\n  header_read_timeout: 30s\n",
    );
    let mut clients = Vec::new();
    let started = Instant::now();
    let mut probes = 0;
    while started.elapsed() < Duration::from_secs(4) {
        clients.extend((0..100).filter_map(|_| half_open(&service.addr)));
        assert_eq!(
            probe(&service.addr, Duration::from_secs(5)),
            Some(200),
            "/healthz after {} flooding connections",
            clients.len()
        );
        probes += 1;
    }
    assert!(probes >= 3, "only {probes} probes in 4 s");
    let (_, metrics) = service.get("/metrics");
    let accept_errors: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("curfew_http_accept_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(
        accept_errors >= 1.0,
        "the flood did exhaust the descriptors ({} clients):\n{metrics}",
        clients.len()
    );
    let log = service.log_text();
    let complaints = log.lines().filter(|l| l.contains("accept")).count();
    assert!(
        complaints <= 2,
        "{accept_errors} failed accepts were logged {complaints} times:\n{log}"
    );
}

#[test]
fn slow_headers_and_idle_keep_alive_connections_are_closed_after_their_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let service = run_with_server_keys(
        dir.path(),
        "  header_read_timeout: 1s\n  idle_timeout: 2s\n",
    );

    // A client that drips its headers one byte at a time is cut off 1 s after its first byte.
    let mut dripping = TcpStream::connect(&service.addr).unwrap();
    let started = Instant::now();
    for byte in b"GET /healthz HTTP/1.1\r\n" {
        if dripping.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert!(
        closed_by_server(&mut dripping, Duration::from_secs(1)),
        "a client dripping its headers is still connected after {:?}",
        started.elapsed()
    );

    // A keep-alive connection answered once, then silent, is closed after the idle timeout.
    let mut idle = TcpStream::connect(&service.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: curfew\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    let read = idle.read(&mut first).unwrap();
    assert!(
        String::from_utf8_lossy(&first[..read]).starts_with("HTTP/1.1 200"),
        "the first request is answered"
    );
    let answered = Instant::now();
    assert!(
        !closed_by_server(&mut idle, Duration::from_millis(1500)),
        "closed before the idle timeout"
    );
    assert!(
        closed_by_server(&mut idle, Duration::from_secs(3)),
        "an idle keep-alive connection is still open after {:?}",
        answered.elapsed()
    );
    // Other clients were served throughout.
    assert_eq!(probe(&service.addr, Duration::from_secs(5)), Some(200));
}
