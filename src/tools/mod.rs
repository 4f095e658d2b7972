//! Operator tools behind `tern key`, `tern rest-credentials`, `tern admin` (user databases),
//! `tern probe` (a deployment check against any STUN/TURN server) and the `tern(8)` man page:
//! long-term keys (RFC 8489 §9.2.2, as coturn's `turnadmin -k`) and TURN REST credentials
//! (coturn's `use-auth-secret` scheme). Each `run_*` takes its arguments without the
//! subcommand name and returns the process exit code.

mod admin;
pub mod args;
mod key;
mod man;
mod probe;
mod rest;

pub use admin::{run_admin, ADMIN_USAGE};
pub use key::{run_key, KEY_USAGE};
pub use man::man_page;
// The probe's TLS client records whether it trusts the certificate instead of failing the
// handshake: tern-load connects with it to servers with self-signed certificates, and names
// its transports as the probe does.
pub use probe::{run_probe, TlsClient, Transport, PROBE_USAGE};
pub use rest::{rest_credentials, run_rest_credentials, RestCredentials, DEFAULT_TTL, REST_USAGE};

use std::io::Write;

/// Exit code for a command line that cannot be used (as getopt-based tools do).
pub const EXIT_USAGE: i32 = 2;

fn usage_error(err: &mut dyn Write, message: &str) -> i32 {
    // Nothing better can be done when stderr itself is gone; the exit code still says it.
    let _ = writeln!(err, "tern: {message} (--help for usage)");
    EXIT_USAGE
}

/// 0, or 1 when the output could not be written (a closed pipe must not look like success).
fn exit_code(written: std::io::Result<()>) -> i32 {
    i32::from(written.is_err())
}
