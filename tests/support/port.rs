//! Ports for servers that tests start as child processes (moto, Prometheus, a gateway), which
//! bind the port themselves after the test chose it.

use std::net::TcpListener;
use std::ops::Range;

/// Where ports are drawn when the system's range for port 0 cannot be read.
const FALLBACK: Range<u16> = 20_000..32_768;

/// A port free on 127.0.0.1 now, for a child process to bind.
///
/// A port the system handed out for port 0 and the test released could be handed out again
/// to any server of a test running meanwhile (every in-process server asks for port 0) before
/// the child binds it; the child would then fail, or the test would talk to another test's
/// server. So the port is drawn at random below the system's range for port 0, where only
/// other calls of this function look, and checked free.
pub fn free_port() -> u16 {
    let range = below_ephemeral_range().unwrap_or(FALLBACK);
    loop {
        let port = rand::random_range(range.clone());
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The 10,000 ports below the first one the system hands out for port 0
/// (`/proc/sys/net/ipv4/ip_local_port_range`), if that range leaves room for them.
fn below_ephemeral_range() -> Option<Range<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let first: u16 = text.split_whitespace().next()?.parse().ok()?;
    let start = first.checked_sub(10_000)?;
    (start >= 1_024).then_some(start..first)
}
