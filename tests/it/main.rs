//! The server, tested end to end: each module starts the real `tern` binary (or calls the
//! server's own modules) and talks to it with our clients and with tools someone else wrote
//! (coturn's `turnutils_*`, Chromium, aiortc). One binary, so that a change links once.

#[path = "../../fuzz/src/lib.rs"]
mod fuzz_targets;
mod support;
mod userdb_support;

mod auth_sha256_server;
mod config_files;
mod config_load;
mod config_refused;
mod fastpath_kernel;
mod fleet_redis;
mod fuzz_corpus;
mod lab;
mod lab_fleet;
mod metrics_dashboard;
mod metrics_http;
mod packaging_conf;
mod packaging_files;
mod packaging_kubernetes;
mod packaging_man;
mod server_aiortc;
mod server_binding;
mod server_browser;
mod server_browser_tcp;
mod server_cli;
mod server_dont_fragment;
mod server_engines;
mod server_fast_path;
mod server_health;
mod server_icmp;
mod server_limits;
mod server_logging;
mod server_malformed;
mod server_metrics;
mod server_policy;
mod server_ports;
mod server_redirect;
mod server_reflection;
mod server_relay;
mod server_signals;
mod server_steering;
mod server_tcp;
mod server_tcp_limits;
mod server_tcp_relay;
mod server_tls;
mod stun_props;
mod tools_key;
mod tools_probe;
mod tools_rest;
mod tools_rest_server;
mod userdb_flood;
mod userdb_postgres;
mod userdb_realm_options;
mod userdb_redis;
mod userdb_sqlite;
