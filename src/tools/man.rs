//! The `tern(8)` manual page in roff, generated from the option table so it cannot drift from
//! what the parser accepts (`packaging/man/tern.8` is this text; a test compares them).

use std::fmt::Write;

use super::{KEY_USAGE, PROBE_USAGE, REST_USAGE};
use crate::config::{needs_restart, options, Arg, Status};

const HEAD: &str = r#".SH NAME
tern \- TURN/STUN relay server that reads coturn's turnserver.conf
.SH SYNOPSIS
.B tern
.RI [ options ]
.br
.B tern check\-config
.I FILE
.RB [ \-\-strict ]
.br
.B tern key
.B \-u
.I USER
.B \-r
.I REALM
.B \-p
.I PASSWORD
.RB [ \-\-sha256 ]
.br
.B tern rest\-credentials
.B \-s
.I SECRET
.RB [ \-u
.IR USER ]
.RB [ \-\-ttl
.IR SECONDS ]
.RB [ \-\-separator
.IR C ]
.RB [ \-\-json ]
.br
.B tern probe
.IR URL ...
.RB [ \-u
.I USER
.B \-p
.IR PASSWORD " |"
.B \-s
.IR SECRET ]
.RB [ \-\-json ]
.SH DESCRIPTION
.B tern
is a TURN (RFC 8656) and STUN (RFC 8489) relay server for WebRTC. It reads coturn's
.I turnserver.conf
syntax and command\-line flags, so a coturn deployment moves over with
.BR "tern \-c /etc/turnserver.conf" .
.PP
It is safe by default: it refuses to start without an authentication mode
(long\-term users or TURN REST secrets) unless
.B no\-auth
is given, and it refuses relaying to loopback, link\-local, RFC 1918, ULA and
100.64/10 peers unless
.B allowed\-peer\-ip
admits them.
.PP
Every option below is a
.B \-\-name[=value]
flag and a
.B name=value
line in the configuration file; flags override the file.
A known coturn option that tern does not implement yet is accepted with a warning;
an unknown name is a warning naming the closest known one; an invalid value stops start\-up
with the file, the line and the reason.
.SH COMMANDS
.TP
.BI "check\-config " FILE
Prints every problem of the configuration, the options accepted and ignored by design, and the
effective settings (secrets masked). Exits 0 when tern would start with it, 1 otherwise;
with
.B \-\-strict
warnings fail too.
"#;

const TAIL: &str = r#".SH FILES
.TP
.I /etc/tern/turnserver.conf
The configuration the packaged service reads (mode 0640, group tern).
.TP
.I /lib/systemd/system/tern.service
The hardened systemd unit; override settings with
.BR "systemctl edit tern" .
.TP
.I /var/log/tern/
Log files when
.B log\-file
points there (the service may write nowhere else); rotated by
.IR /etc/logrotate.d/tern .
.SH SIGNALS
.TP
.BR SIGTERM ", " SIGINT
Stop.
.TP
.B SIGHUP
Reopen the log file and reload the configuration (sent by logrotate and by
.BR "systemctl reload tern" ):
allocations live on, and every option applies at once except those marked
[needs a restart], which keep their start\-up value until the next start (the log names them).
TLS certificate and key files are read again.
.SH EXIT STATUS
0 on a clean stop, 1 when the configuration has errors or the server cannot start,
2 for an unusable command line of
.B key
or
.BR rest\-credentials .
.B tern probe
exits 0 when every check passes, 1 when a check fails or a server cannot be reached, 2 for an
unusable command line or URL.
.SH SEE ALSO
.BR turnserver (1),
.BR turnadmin (1),
.BR systemd.exec (5),
.I /usr/share/doc/tern/README.Debian
"#;

/// The whole page.
pub fn man_page() -> String {
    let mut s = format!(
        ".TH TERN 8 \"\" \"tern {}\" \"System Administration\"\n",
        env!("CARGO_PKG_VERSION")
    );
    s.push_str(HEAD);
    command(&mut s, "key", KEY_USAGE);
    command(&mut s, "rest\\-credentials", REST_USAGE);
    command(&mut s, "probe", PROBE_USAGE);
    s.push_str(".SH OPTIONS\n");
    let fixed = [
        ("-c", None, Some("FILE"), "configuration file (default: turnserver.conf searched in ., ./etc, /etc, /etc/turnserver, /etc/coturn, /etc/tern)"),
        ("-n", None, None, "no configuration file"),
        ("-h", Some("help"), None, "print the option list and exit"),
        ("", Some("version"), None, "print the version and exit"),
    ];
    for (short, long, value, help) in fixed {
        item(&mut s, short, long, value, help);
    }
    for o in options() {
        let short = o.short.map(|c| format!("-{c}")).unwrap_or_default();
        let value = match o.arg {
            Arg::Flag => None,
            Arg::Required => Some("value"),
            Arg::Optional => Some("[=value]"),
        };
        let mut help = o.help.to_owned();
        if o.repeats {
            help.push_str(" (repeatable)");
        }
        if needs_restart(o.name) {
            help.push_str(" [needs a restart]");
        }
        match o.status {
            Status::Implemented => {}
            Status::NotImplemented => help.push_str(" [not implemented yet: warns]"),
            Status::Ignored => help.push_str(" [accepted, ignored]"),
            Status::Refused => help.push_str(" [not implemented: stops start-up]"),
        }
        item(&mut s, &short, Some(o.name), value, &help);
    }
    s.push_str(TAIL);
    s
}

/// One `.TP` entry: `-x, --name value` (flags bold, the value italic), the help text below.
fn item(s: &mut String, short: &str, long: Option<&str>, value: Option<&str>, help: &str) {
    let mut tag = String::new();
    if !short.is_empty() {
        tag = format!("\\fB{}\\fR", text(short));
    }
    if let Some(long) = long {
        if !tag.is_empty() {
            tag.push_str(", ");
        }
        let _ = write!(tag, "\\fB\\-\\-{}\\fR", text(long));
    }
    if let Some(v) = value {
        let _ = write!(tag, " \\fI{}\\fR", text(v));
    }
    let _ = writeln!(s, ".TP\n{tag}\n{}", text(help));
}

/// A subcommand's usage text, kept verbatim in a no-fill block so the page says what `--help`
/// says.
fn command(s: &mut String, name: &str, usage: &str) {
    let _ = writeln!(s, ".TP\n.B {name}\n.nf");
    for line in usage
        .lines()
        .skip_while(|l| l.starts_with("Usage:") || l.starts_with(' '))
    {
        let _ = writeln!(s, "{}", text(line));
    }
    s.push_str(".fi\n");
}

/// Plain text made safe for roff: backslashes escaped, no line taken for a request.
fn text(t: &str) -> String {
    let t = t.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with(['.', '\'']) {
        format!("\\&{t}")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_requests_and_backslashes() {
        assert_eq!(text(".x \\ -y"), "\\&.x \\e \\-y");
        assert_eq!(text("plain"), "plain");
    }
}
