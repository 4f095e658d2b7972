//! The Kubernetes manifests' configuration (packaging/kubernetes/): the ConfigMap's
//! turnserver.conf, rendered with the Secret by the init container's script
//! (packaging/container/tern-k8s-config) exactly as in a pod, passes `tern check-config`, and the
//! real binary started on it (ports moved to free ones) answers the probes the DaemonSet sets.
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::metrics::get;
use support::{output_within, tern_bin, Server, TempDir};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The lines of the block scalar `key: |` in a manifest, de-indented.
fn block(manifest: &str, key: &str) -> String {
    let text = std::fs::read_to_string(repo(manifest)).expect("manifest readable");
    let mut lines = text.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("{key} not in {manifest}"));
    let indent = head.len() - head.trim_start().len() + 2;
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    body.join("\n") + "\n"
}

/// The value of `key: value` under the Secret's stringData.
fn string_data(manifest: &str, key: &str) -> String {
    let text = std::fs::read_to_string(repo(manifest)).expect("manifest readable");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("{key} not in {manifest}"))
        .to_owned()
}

/// Runs the init container's script on the ConfigMap and the Secret; the rendered file.
fn render(dir: &TempDir) -> (String, PathBuf) {
    let base = dir.path("base.conf");
    std::fs::write(
        &base,
        block("packaging/kubernetes/configmap.yaml", "turnserver.conf"),
    )
    .expect("write base");
    let secret = dir.path("static-auth-secret");
    let value = string_data("packaging/kubernetes/secret.yaml", "static-auth-secret");
    std::fs::write(&secret, format!("{value}\nsecond-secret-for-rotation\n")).expect("write");
    let out = dir.path("turnserver.conf");
    let script = repo("packaging/container/tern-k8s-config");
    let run = output_within(
        Command::new("sh")
            .arg(&script)
            .env("TERN_BASE_CONF", &base)
            .env("TERN_SECRET_FILE", &secret)
            .env("TERN_CONF", &out)
            .env("TERN_BIN", tern_bin())
            .env("TERN_EXTERNAL_IP", "203.0.113.10"),
        Duration::from_secs(30),
    )
    .expect("the script finishes");
    let text =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "tern-k8s-config failed:\n{text}");
    (text, out)
}

#[test]
fn the_configmap_rendered_by_the_init_container_passes_check_config() {
    let dir = TempDir::new("k8sconf");
    let (text, out) = render(&dir);
    assert!(text.contains("# 0 error(s), 0 warning(s)"), "{text}");
    let conf = std::fs::read_to_string(&out).expect("rendered");
    for line in [
        "static-auth-secret=replace-with-a-long-random-secret",
        "static-auth-secret=second-secret-for-rotation",
        "external-ip=203.0.113.10",
    ] {
        assert!(conf.lines().any(|l| l == line), "{line} missing:\n{conf}");
    }
    assert!(
        !text.contains("replace-with-a-long-random-secret"),
        "secret shown:\n{text}"
    );
}

#[test]
fn a_pod_configuration_serves_the_probes_of_the_daemonset() {
    let dir = TempDir::new("k8srun");
    let (_, out) = render(&dir);
    let conf = out.display().to_string();
    let server = Server::start_args(&[
        "-c",
        &conf,
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--prometheus-port=0",
        "--prometheus-address=127.0.0.1",
    ]);
    let line = server
        .wait_for_log("metrics on http://", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no metrics line; log:\n{}", server.log()));
    let url = line.split("metrics on http://").nth(1).expect("address");
    let addr = url[..url.find('/').expect("a path")]
        .parse()
        .expect("address");
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(get(addr, "/readyz").0, 200);
    // The preStop hook's SIGUSR1 with no allocation left: tern exits 0 at once.
    let mut server = server;
    server.signal(libc::SIGUSR1);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running after the drain:\n{}", server.log()));
    assert!(status.success(), "{status:?}\n{}", server.log());
}
