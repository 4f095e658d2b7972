//! Process plumbing of the `tern` binary: systemd readiness (`sd_notify`), the pidfile, dropping
//! privileges after binding, and what a configuration reload changes.

pub mod notify;
pub mod pidfile;
pub mod privileges;
pub mod reload;
