//! `--help` text, generated from the option table.

use super::options::{options, Arg, Status};
use std::fmt::Write;

/// The usage text: every option with its short letter, value form and what tern does with it.
pub fn usage() -> String {
    let mut s = String::from(
        "Usage: tern [options]\n       tern check-config FILE [--strict]\n\n\
         Options (also valid as `name=value` lines in turnserver.conf, without the dashes):\n",
    );
    let fixed = [
        ("-c FILE", "configuration file (default: turnserver.conf in ., ./etc, /etc, /etc/turnserver, /etc/coturn, /etc/tern)"),
        ("-n", "no configuration file"),
        ("-h, --help", "this text"),
        ("    --version", "print the version"),
    ];
    for (left, help) in fixed {
        let _ = writeln!(s, " {left:<44} {help}");
    }
    for o in options() {
        let short = o.short.map_or(String::from("   "), |c| format!("-{c},"));
        let value = match o.arg {
            Arg::Flag => "",
            Arg::Required => " <value>",
            Arg::Optional => " [=value]",
        };
        let left = format!("{short} --{}{value}", o.name);
        let more = if o.repeats { " (repeatable)" } else { "" };
        let status = match o.status {
            Status::Implemented => "",
            Status::NotImplemented => " [not implemented yet: warns]",
            Status::Ignored => " [accepted, ignored]",
            Status::Refused => " [not implemented: stops start-up]",
        };
        let _ = writeln!(s, " {left:<44} {}{more}{status}", o.help);
    }
    s
}
