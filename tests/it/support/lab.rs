//! The deployment lab: network namespaces standing for the hosts of a real TURN deployment,
//! joined by veth pairs, with addresses from the documentation ranges (RFC 5737, RFC 3849).
//!
//! ```text
//!  client 198.51.100.10 ──┐                 ┌── vm 203.0.113.10            (public address)
//!  2001:db8:c::10         ├── internet ─────┤
//!  peer   192.0.2.10    ──┘   (router)      └── nat 203.0.113.2 ── vm 10.20.0.10 (1:1 NAT)
//!  2001:db8:b::10
//! ```
//!
//! "internet" forwards between the client, a peer host and the VM side. In the cloud topology a
//! "nat" router stands in front of the VM and maps 203.0.113.10 to the VM's private address one
//! to one, with or without hairpinning (a packet from the VM to its own public address). tern
//! runs in "vm" from a turnserver.conf the way an operator writes it, on the standard ports.
//! Every namespace is removed when the lab is dropped (also when a test fails), and a lab left
//! behind by a killed test process is removed by the next one. Nothing leaves the namespaces.
// Each test binary uses a different part of this module.
#![allow(dead_code, clippy::disallowed_methods)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The VM's public IPv4 address (on its interface, or the NAT's outside address).
pub const PUBLIC: &str = "203.0.113.10";
/// A second public address of the VM (topology with two public addresses).
pub const PUBLIC2: &str = "203.0.113.11";
/// The VM's public IPv6 address.
pub const PUBLIC6: &str = "2001:db8:a::10";
/// The VM's private address behind the 1:1 NAT.
pub const PRIVATE: &str = "10.20.0.10";
/// The second VM's private address (`Vm::TwoBehindNat`; its public one is `PUBLIC2`).
pub const PRIVATE2: &str = "10.20.1.11";
/// The client host (the Internet side: browsers, uclient, aiortc).
pub const CLIENT: &str = "198.51.100.10";
pub const CLIENT6: &str = "2001:db8:c::10";
/// Another host on the Internet, where an echo peer runs.
pub const PEER: &str = "192.0.2.10";
pub const PEER6: &str = "2001:db8:b::10";

/// How the VM is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vm {
    /// The public addresses (IPv4 and IPv6) are on the VM's interface.
    Public,
    /// As `Public`, with a second public IPv4 address on the interface.
    TwoPublic,
    /// A private address on the interface behind a 1:1 NAT; `hairpin`: the NAT also maps a
    /// packet from the VM to its own public address back to it.
    CloudNat { hairpin: bool },
    /// Two VMs, "vm" (`PRIVATE`, public `PUBLIC`) and "vm2" (`PRIVATE2`, public `PUBLIC2`),
    /// behind one 1:1 NAT that does not hairpin: they reach each other's private addresses
    /// (one VPC), never each other's public ones.
    TwoBehindNat,
}

/// A built lab; dropping it removes every namespace it made.
pub struct Lab {
    prefix: String,
    made: Vec<String>,
}

/// Why a lab could not be built: the test prints it as a skip (or fails under
/// `TERN_REQUIRE_INTEROP=1`).
pub struct Unavailable(pub String);

/// Prints `SKIP: why`, or panics under `TERN_REQUIRE_INTEROP=1`.
pub fn skip(why: &str) {
    if std::env::var("TERN_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{why} (TERN_REQUIRE_INTEROP=1)");
    }
    eprintln!("SKIP: {why}");
}

impl Lab {
    /// Builds the hosts for `vm`. Err when namespaces cannot be made (not root, no iproute2 or
    /// no iptables/nft where the topology needs a NAT).
    pub fn new(vm: Vm) -> Result<Lab, Unavailable> {
        static LABS: AtomicU32 = AtomicU32::new(0);
        if !root() {
            return Err(Unavailable(String::from(
                "the deployment lab needs root (network namespaces)",
            )));
        }
        for tool in ["ip", "iptables"] {
            if !installed(tool) {
                return Err(Unavailable(format!("the deployment lab needs {tool}")));
            }
        }
        remove_stale();
        let mut lab = Lab {
            prefix: format!(
                "tern-lab-{}-{}",
                std::process::id(),
                LABS.fetch_add(1, Ordering::Relaxed)
            ),
            made: Vec::new(),
        };
        lab.build(vm).map_err(Unavailable)?;
        // With the kernel fast path under test (TERN_TEST_FAST_PATH, scripts/fast-path-suite.sh)
        // the VMs forward, as docs/fast-path.md asks of a host that runs it.
        if std::env::var("TERN_TEST_FAST_PATH").is_ok_and(|m| !m.is_empty() && m != "off") {
            let vms: Vec<&str> = ["vm", "vm2"]
                .into_iter()
                .filter(|h| lab.made.contains(&lab.ns(h)))
                .collect();
            for host in vms {
                lab.sh(host, &["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"])
                    .map_err(Unavailable)?;
            }
        }
        Ok(lab)
    }

    /// The namespace name of host `host` ("client", "peer", "internet", "nat", "vm").
    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// The command prefix that runs a program on `host`.
    pub fn on(&self, host: &str) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns(host)]
    }

    /// A command for `program` on `host` (`ip netns exec` keeps the PID of the program).
    pub fn command(&self, host: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host), program]);
        c
    }

    /// Runs `args` on `host` and fails the lab set-up on an error.
    pub fn sh(&self, host: &str, args: &[&str]) -> Result<(), String> {
        let (program, rest) = args.split_first().ok_or("empty command")?;
        let out = self
            .command(host, program)
            .args(rest)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        checked(&format!("{host}: {}", args.join(" ")), out)
    }

    /// Runs `f` on a thread that lives in `host`'s network namespace: every socket it opens and
    /// every process it starts (a browser, a page server) is on that host.
    pub fn in_host<T: Send>(&self, host: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns(host));
        thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: setns(2) on a namespace file we opened; it changes only this thread.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    fn add_host(&mut self, host: &str) -> Result<(), String> {
        let ns = self.ns(host);
        run("ip", &["netns", "add", &ns])?;
        self.made.push(ns);
        self.sh(host, &["ip", "link", "set", "lo", "up"])?;
        // Routers and hosts alike: no DAD delay for the IPv6 addresses below.
        self.sh(host, &["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"])?;
        self.sh(
            host,
            &["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"],
        )
    }

    fn router(&self, host: &str) -> Result<(), String> {
        self.sh(host, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        self.sh(host, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])?;
        self.sh(
            host,
            &["sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"],
        )
    }

    /// A veth pair between `a` (interface `a_if`) and `b` (`b_if`), each side up with its
    /// addresses.
    fn link(&self, (a, a_if, a_ips): End<'_>, (b, b_if, b_ips): End<'_>) -> Result<(), String> {
        let (na, nb) = (self.ns(a), self.ns(b));
        run(
            "ip",
            &[
                "link", "add", a_if, "netns", &na, "type", "veth", "peer", "name", b_if, "netns",
                &nb,
            ],
        )?;
        for (host, ifname, ips) in [(a, a_if, a_ips), (b, b_if, b_ips)] {
            for ip in ips {
                let mut args = vec!["ip", "addr", "add", ip, "dev", ifname];
                if ip.contains(':') {
                    args.push("nodad");
                }
                self.sh(host, &args)?;
            }
            self.sh(host, &["ip", "link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    fn default_route(&self, host: &str, v4: &str, v6: Option<&str>) -> Result<(), String> {
        self.sh(host, &["ip", "route", "add", "default", "via", v4])?;
        if let Some(v6) = v6 {
            self.sh(host, &["ip", "-6", "route", "add", "default", "via", v6])?;
        }
        Ok(())
    }

    fn build(&mut self, vm: Vm) -> Result<(), String> {
        for host in ["internet", "client", "peer", "vm"] {
            self.add_host(host)?;
        }
        self.router("internet")?;
        self.link(
            (
                "internet",
                "to-client",
                &["198.51.100.1/24", "2001:db8:c::1/64"],
            ),
            ("client", "eth0", &["198.51.100.10/24", "2001:db8:c::10/64"]),
        )?;
        self.default_route("client", "198.51.100.1", Some("2001:db8:c::1"))?;
        self.link(
            ("internet", "to-peer", &["192.0.2.1/24", "2001:db8:b::1/64"]),
            ("peer", "eth0", &["192.0.2.10/24", "2001:db8:b::10/64"]),
        )?;
        self.default_route("peer", "192.0.2.1", Some("2001:db8:b::1"))?;
        match vm {
            Vm::Public | Vm::TwoPublic => {
                let mut vm_ips = vec!["203.0.113.10/24", "2001:db8:a::10/64"];
                if vm == Vm::TwoPublic {
                    vm_ips.push("203.0.113.11/24");
                }
                self.link(
                    ("internet", "to-vm", &["203.0.113.1/24", "2001:db8:a::1/64"]),
                    ("vm", "eth0", &vm_ips),
                )?;
                self.default_route("vm", "203.0.113.1", Some("2001:db8:a::1"))
            }
            Vm::CloudNat { hairpin } => self.cloud_nat(hairpin),
            Vm::TwoBehindNat => self.two_behind_nat(),
        }
    }

    /// The NAT router "nat" (203.0.113.2 on the internet side) and "vm" behind it on
    /// 10.20.0.0/24, routed both ways; the translation is the caller's.
    fn nat_with_vm(&mut self) -> Result<(), String> {
        self.add_host("nat")?;
        self.router("nat")?;
        self.link(
            ("internet", "to-nat", &["203.0.113.1/24"]),
            ("nat", "outside", &["203.0.113.2/24"]),
        )?;
        self.link(
            ("nat", "inside", &["10.20.0.1/24"]),
            ("vm", "eth0", &["10.20.0.10/24"]),
        )?;
        self.default_route("vm", "10.20.0.1", None)?;
        self.default_route("nat", "203.0.113.1", None)
    }

    /// internet ── nat (203.0.113.2; 203.0.113.10 and .11 routed to it) ── vm (10.20.0.10)
    ///                                                                  └─ vm2 (10.20.1.11)
    /// Translation happens only on the outside interface: traffic between the VMs keeps its
    /// private addresses, and a VM's packet to a public address of the NAT is dropped rather
    /// than sent out and back in (which would be a hairpin by another road).
    fn two_behind_nat(&mut self) -> Result<(), String> {
        self.nat_with_vm()?;
        self.add_host("vm2")?;
        self.link(
            ("nat", "inside2", &["10.20.1.1/24"]),
            ("vm2", "eth0", &["10.20.1.11/24"]),
        )?;
        self.default_route("vm2", "10.20.1.1", None)?;
        for (public, private) in [(PUBLIC, PRIVATE), (PUBLIC2, PRIVATE2)] {
            let route = ["ip", "route", "add", public, "via", "203.0.113.2"];
            self.sh("internet", &route)?;
            let dnat = [
                "iptables",
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-i",
                "outside",
                "-d",
                public,
                "-j",
                "DNAT",
                "--to-destination",
                private,
            ];
            let snat = [
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "outside",
                "-s",
                private,
                "-j",
                "SNAT",
                "--to-source",
                public,
            ];
            self.sh("nat", &dnat)?;
            self.sh("nat", &snat)?;
            for inside in ["inside", "inside2"] {
                let drop = [
                    "iptables", "-A", "FORWARD", "-i", inside, "-d", public, "-j", "DROP",
                ];
                self.sh("nat", &drop)?;
            }
        }
        Ok(())
    }

    /// internet ── nat (203.0.113.2, and 203.0.113.10 routed to it) ── vm (10.20.0.10).
    fn cloud_nat(&mut self, hairpin: bool) -> Result<(), String> {
        self.nat_with_vm()?;
        self.sh(
            "internet",
            &[
                "ip",
                "route",
                "add",
                "203.0.113.10/32",
                "via",
                "203.0.113.2",
            ],
        )?;
        // 1:1 NAT: everything to the public address goes to the VM, everything from the VM
        // leaves from the public address. Without hairpinning only packets arriving from the
        // outside are translated, so the VM cannot reach its own public address.
        let mut dnat = vec!["iptables", "-t", "nat", "-A", "PREROUTING"];
        if !hairpin {
            dnat.extend(["-i", "outside"]);
        }
        dnat.extend(["-d", PUBLIC, "-j", "DNAT", "--to-destination", PRIVATE]);
        self.sh("nat", &dnat)?;
        self.sh(
            "nat",
            &[
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-s",
                PRIVATE,
                "-j",
                "SNAT",
                "--to-source",
                PUBLIC,
            ],
        )
    }

    /// Drops every UDP datagram the internet router would forward between the client and the
    /// VM side, as a firewall that allows only TCP would.
    pub fn block_udp_from_client(&self) -> Result<(), String> {
        for tool in ["iptables", "ip6tables"] {
            let rule = [
                tool,
                "-A",
                "FORWARD",
                "-i",
                "to-client",
                "-p",
                "udp",
                "-j",
                "DROP",
            ];
            self.sh("internet", &rule)?;
        }
        Ok(())
    }
}

type End<'a> = (&'a str, &'a str, &'a [&'a str]);

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            remove(ns);
        }
    }
}

/// Kills what still runs in `ns` (by PID: only what a test started there) and deletes it; its
/// veth ends go with it.
fn remove(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a process living in a namespace this lab created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Command::new("ip")
        .args(["netns", "del", ns])
        .output()
        .is_ok_and(|o| !o.status.success())
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(50));
    }
}

/// Removes labs whose test process is gone (killed before its drop could run).
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("tern-lab-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            remove(name);
        }
    }
}

fn root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `tool` is on PATH (without the interop skip notice).
pub fn installed(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    checked(&format!("{program} {}", args.join(" ")), out)
}

fn checked(what: &str, out: Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
