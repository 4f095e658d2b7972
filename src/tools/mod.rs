//! Operator tools behind `tern key`, `tern rest-credentials` and the `tern(8)` man page:
//! long-term keys (RFC 8489 §9.2.2, as coturn's `turnadmin -k`) and TURN REST credentials
//! (coturn's `use-auth-secret` scheme). Each `run_*` takes its arguments without the
//! subcommand name and returns the process exit code.

mod args;
mod key;
mod man;
mod rest;

pub use key::{run_key, KEY_USAGE};
pub use man::man_page;
pub use rest::{rest_credentials, run_rest_credentials, RestCredentials, REST_USAGE};

/// Exit code for a command line that cannot be used (as getopt-based tools do).
pub const EXIT_USAGE: i32 = 2;
