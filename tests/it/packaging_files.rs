//! The packaging files say what the package promises: the unit carries every hardening
//! directive, every cargo-deb asset exists, and the maintainer scripts are plain POSIX sh that
//! never start the relay. (`packaging/ci-deb.sh` builds and installs the real package.)

use std::path::Path;
use std::process::Command;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn unit_has_every_required_directive() {
    let unit = read("systemd/tern.service");
    let required = [
        "Type=notify",
        "ExecStart=/usr/bin/tern -c /etc/tern/turnserver.conf",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=tern",
        "Group=tern",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "LimitNOFILE=1048576",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service io_uring_setup io_uring_enter io_uring_register",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "UMask=0027",
        "LogsDirectory=tern",
        "RuntimeDirectory=tern",
        "After=network-online.target",
        "Wants=network-online.target",
        "WantedBy=multi-user.target",
    ];
    for line in required {
        assert!(unit.lines().any(|l| l == line), "tern.service lacks {line}");
    }
}

/// The `[package.metadata.deb]` asset sources, read from Cargo.toml.
fn asset_sources() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let deb = manifest
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("Cargo.toml has [package.metadata.deb]");
    deb.lines()
        .filter_map(|l| l.trim().strip_prefix("[\""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_asset_exists() {
    let sources = asset_sources();
    assert!(sources.len() >= 6, "{sources:?}");
    for src in sources.iter().filter(|s| !s.starts_with("target/")) {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(src).is_file(),
            "asset {src} is missing"
        );
    }
    for needed in [
        "target/release/tern",
        "packaging/etc/turnserver.conf",
        "systemd/tern.service",
        "packaging/logrotate/tern",
        "packaging/man/tern.8",
    ] {
        assert!(sources.iter().any(|s| s == needed), "{needed} not packaged");
    }
}

#[test]
fn maintainer_scripts_are_plain_sh_and_never_start_the_relay() {
    for name in ["postinst", "prerm", "postrm"] {
        let rel = format!("packaging/debian/{name}");
        let text = read(&rel);
        assert!(text.starts_with("#!/bin/sh\n"), "{name}");
        assert!(text.contains("set -e\n"), "{name}");
        assert!(
            !text.contains("#DEBHELPER#"),
            "{name}: cargo-deb must not rewrite it"
        );
        for start in [
            "invoke start",
            "systemctl start",
            "restart tern",
            "enable --now",
        ] {
            assert!(!text.contains(start), "{name} starts the relay: {start}");
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("stat").permissions(),
        );
        assert_eq!(mode & 0o111, 0o111, "{name} is executable");
        let syntax = Command::new("sh").arg("-n").arg(&path).status();
        assert!(syntax.is_ok_and(|s| s.success()), "{name}: sh -n");
    }
    let postinst = read("packaging/debian/postinst");
    assert!(
        postinst.contains("try-restart"),
        "upgrades restart only a running relay"
    );
    assert!(postinst.contains("[ -d /run/systemd/system ]"));
}
