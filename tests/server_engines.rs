//! Both I/O engines relay the same traffic (RFC 8656 §2.4-§2.5): coturn's `turnutils_uclient`
//! through `--io-engine=epoll` and `--io-engine=uring`, channels, Send indications and a TCP
//! client, and each engine says in its log that it is the one running.

mod support;

use support::uclient::echo_through;

fn relay_all_ways(engine: &str, log_says: &str) {
    let flag = format!("--io-engine={engine}");
    for extra in [&[][..], &["-s"], &["-t"]] {
        let Some(server) = echo_through(&[&flag], extra) else {
            return;
        };
        let log = server.log();
        assert!(
            log.lines().any(|l| l.contains(log_says)),
            "no {log_says:?} line:\n{log}"
        );
    }
}

#[test]
fn epoll_relays_channels_indications_and_tcp() {
    relay_all_ways("epoll", "I/O engine: epoll");
}

#[test]
fn uring_relays_channels_indications_and_tcp() {
    relay_all_ways("uring", "I/O engine: io_uring");
}

#[test]
fn auto_prefers_io_uring_here() {
    // This machine's kernel has io_uring (the uring test above proves it works): auto takes it.
    let Some(server) = echo_through(&["--io-engine=auto"], &[]) else {
        return;
    };
    let log = server.log();
    assert!(log.contains("I/O engine: io_uring"), "{log}");
    assert!(log.contains("auto: the io_uring probe succeeded"), "{log}");
}
