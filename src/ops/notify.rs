//! systemd's readiness protocol (`sd_notify(3)`, `Type=notify`): one datagram such as
//! `READY=1` to the unix socket named by `$NOTIFY_SOCKET` (a path, or an abstract name written
//! with a leading `@`). Without the variable nothing is sent.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (newline-separated `KEY=VALUE` pairs). Ok(false) when not run by systemd.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(name) if !name.is_empty() => send(&name, state).map(|()| true),
        _ => Ok(false),
    }
}

fn send(name: &OsStr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let addr = match name.as_bytes().split_first() {
        Some((b'@', abstract_name)) => SocketAddr::from_abstract_name(abstract_name)?,
        _ => SocketAddr::from_pathname(name)?,
    };
    let sent = socket.send_to_addr(state.as_bytes(), &addr)?;
    if sent == state.len() {
        Ok(())
    } else {
        Err(io::Error::other("short write to NOTIFY_SOCKET"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("tern-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("tern-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_listener = UnixDatagram::bind_addr(&addr).unwrap();
        send(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = abstract_listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
