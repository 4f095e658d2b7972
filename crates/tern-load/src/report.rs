//! What a run measured: a human summary and one JSON line (hand-written: flat numbers and a
//! map of failure counts).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::data::DataStats;
use super::options::{Mode, Options};
use super::setup::SetupStats;

#[derive(Default, Debug, Clone)]
pub struct Report {
    pub label: String,
    pub transport: &'static str,
    pub mode: &'static str,
    pub size: usize,
    pub rate_target: u64,
    pub allocations: usize,
    pub setup_ok: u64,
    pub setup_failed: u64,
    pub failures: BTreeMap<String, u64>,
    pub retransmits: u64,
    pub setup_s: f64,
    pub alloc_per_s: f64,
    pub setup_ms_p50: u64,
    pub setup_ms_p99: u64,
    pub server_cpu_setup_s: Option<f64>,
    pub sent: u64,
    pub peer_received: u64,
    pub received: u64,
    pub bad: u64,
    pub stalls: u64,
    pub send_errors: u64,
    pub loss_pct: f64,
    pub send_s: f64,
    pub send_pps: f64,
    pub relayed_pps: f64,
    pub rtt_us: [u64; 5],
    pub server_cpu_s: Option<f64>,
    pub pkts_per_server_cpu_s: Option<f64>,
    pub gen_cpu_s: f64,
    pub other_cpu_s: Option<f64>,
    /// All busy CPU of the machine less this generator's: the server plus the kernel work done
    /// outside its threads (softirq), plus whatever else ran.
    pub nongen_cpu_s: Option<f64>,
    pub pkts_per_nongen_cpu_s: Option<f64>,
    pub rss_before: Option<u64>,
    pub rss_after_setup: Option<u64>,
    pub rss_after_data: Option<u64>,
    pub rss_end: Option<u64>,
    pub dealloc_ok: Option<u64>,
}

impl Report {
    pub fn new(o: &Options) -> Report {
        Report {
            label: o.label.clone(),
            transport: o.transport.name(),
            mode: match o.mode {
                Mode::Channel => "channel",
                Mode::Send => "send",
            },
            size: o.size,
            rate_target: o.rate,
            allocations: o.allocations,
            ..Report::default()
        }
    }

    pub fn set_setup(&mut self, s: &SetupStats, server_cpu: Option<f64>) {
        self.setup_ok = s.ok;
        self.setup_failed = s.failed;
        self.failures = s.failures.clone();
        self.retransmits = s.retransmits;
        self.setup_s = s.seconds;
        self.alloc_per_s = if s.seconds > 0.0 {
            s.ok as f64 / s.seconds
        } else {
            0.0
        };
        self.setup_ms_p50 = s.per_client_ms.quantile(0.5);
        self.setup_ms_p99 = s.per_client_ms.quantile(0.99);
        self.server_cpu_setup_s = server_cpu;
    }

    /// The data phase's figures; the CPU seconds are the server's, this generator's and the
    /// whole machine's busy time over the phase.
    pub fn set_data(
        &mut self,
        d: &DataStats,
        peer_received: u64,
        server_cpu: Option<f64>,
        gen_cpu: f64,
        machine_cpu: Option<f64>,
    ) {
        self.sent = d.sent;
        self.peer_received = peer_received;
        self.received = d.received;
        self.bad = d.bad;
        self.stalls = d.stalls;
        self.send_errors = d.send_errors;
        self.loss_pct = if d.sent > 0 {
            100.0 * d.sent.saturating_sub(d.received) as f64 / d.sent as f64
        } else {
            0.0
        };
        self.send_s = d.send_seconds;
        // Traversals: client -> peer and peer -> client each cross the server once.
        let traversals = (peer_received + d.received) as f64;
        if d.send_seconds > 0.0 {
            self.send_pps = d.sent as f64 / d.send_seconds;
            self.relayed_pps = traversals / d.send_seconds;
        }
        let h = &d.rtt_us;
        self.rtt_us = [
            h.quantile(0.5),
            h.quantile(0.9),
            h.quantile(0.99),
            h.max(),
            h.mean() as u64,
        ];
        self.server_cpu_s = server_cpu;
        self.pkts_per_server_cpu_s = server_cpu.filter(|c| *c > 0.0).map(|c| traversals / c);
        self.gen_cpu_s = gen_cpu;
        self.other_cpu_s = machine_cpu.map(|m| m - server_cpu.unwrap_or(0.0) - gen_cpu);
        self.nongen_cpu_s = machine_cpu.map(|m| (m - gen_cpu).max(0.0));
        self.pkts_per_nongen_cpu_s = self
            .nongen_cpu_s
            .filter(|c| *c > 0.0)
            .map(|c| traversals / c);
    }

    /// RSS growth per allocation during setup.
    pub fn rss_per_alloc(&self) -> Option<f64> {
        let grown = self.rss_after_setup?.saturating_sub(self.rss_before?);
        (self.setup_ok > 0).then(|| grown as f64 / self.setup_ok as f64)
    }

    pub fn server_cpu_us_per_alloc(&self) -> Option<f64> {
        let cpu = self.server_cpu_setup_s?;
        (self.setup_ok > 0).then(|| cpu * 1e6 / self.setup_ok as f64)
    }

    pub fn human(&self) -> String {
        let mut s = String::new();
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let _ = writeln!(
            s,
            "setup: {} ok, {} failed {:?} in {:.2} s = {:.0} allocations/s (per client p50 {} ms, p99 {} ms), {} retransmits",
            self.setup_ok, self.setup_failed, self.failures, self.setup_s, self.alloc_per_s,
            self.setup_ms_p50, self.setup_ms_p99, self.retransmits
        );
        let _ = writeln!(
            s,
            "server: {} us CPU per allocation, RSS {} B per allocation ({} -> {} B)",
            opt(self.server_cpu_us_per_alloc()),
            opt(self.rss_per_alloc()),
            self.rss_before.unwrap_or(0),
            self.rss_after_setup.unwrap_or(0)
        );
        if self.sent > 0 {
            let _ = writeln!(
                s,
                "data: {} {} {} B, sent {} ({:.0}/s), peers got {}, back {}, loss {:.3}%, {} bad, {} stalls",
                self.transport, self.mode, self.size, self.sent, self.send_pps, self.peer_received, self.received,
                self.loss_pct, self.bad, self.stalls
            );
            let _ = writeln!(
                s,
                "relayed {:.0} packets/s; rtt us p50 {} p90 {} p99 {} max {} mean {}",
                self.relayed_pps,
                self.rtt_us[0],
                self.rtt_us[1],
                self.rtt_us[2],
                self.rtt_us[3],
                self.rtt_us[4]
            );
            let _ = writeln!(
                s,
                "server cpu {} s -> {} relayed packets per server CPU-second; generator cpu {:.2} s, other cpu {} s",
                self.server_cpu_s.map_or("-".into(), |c| format!("{c:.2}")),
                opt(self.pkts_per_server_cpu_s),
                self.gen_cpu_s,
                self.other_cpu_s.map_or("-".into(), |c| format!("{c:.2}"))
            );
            let _ = writeln!(
                s,
                "machine cpu less the generator's {} s -> {} relayed packets per CPU-second",
                self.nongen_cpu_s.map_or("-".into(), |c| format!("{c:.2}")),
                opt(self.pkts_per_nongen_cpu_s),
            );
        }
        if let Some(d) = self.dealloc_ok {
            let _ = writeln!(s, "teardown: {d} deallocated");
        }
        s
    }

    pub fn json(&self) -> String {
        let mut s = String::from("{");
        let mut field = |k: &str, v: String| {
            if s.len() > 1 {
                s.push(',');
            }
            let _ = write!(s, "\"{k}\":{v}");
        };
        let num = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.3}"));
        let int = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        field("label", quote(&self.label));
        field("transport", quote(self.transport));
        field("mode", quote(self.mode));
        field("size", self.size.to_string());
        field("rate_target", self.rate_target.to_string());
        field("allocations", self.allocations.to_string());
        field("setup_ok", self.setup_ok.to_string());
        field("setup_failed", self.setup_failed.to_string());
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(k, v)| format!("{}:{v}", quote(k)))
            .collect();
        field("failures", format!("{{{}}}", failures.join(",")));
        field("retransmits", self.retransmits.to_string());
        field("setup_s", format!("{:.3}", self.setup_s));
        field("alloc_per_s", format!("{:.1}", self.alloc_per_s));
        field("setup_ms_p50", self.setup_ms_p50.to_string());
        field("setup_ms_p99", self.setup_ms_p99.to_string());
        field("server_cpu_setup_s", num(self.server_cpu_setup_s));
        field(
            "server_cpu_us_per_alloc",
            num(self.server_cpu_us_per_alloc()),
        );
        field("sent", self.sent.to_string());
        field("peer_received", self.peer_received.to_string());
        field("received", self.received.to_string());
        field("bad", self.bad.to_string());
        field("stalls", self.stalls.to_string());
        field("send_errors", self.send_errors.to_string());
        field("loss_pct", format!("{:.4}", self.loss_pct));
        field("send_s", format!("{:.3}", self.send_s));
        field("send_pps", format!("{:.1}", self.send_pps));
        field("relayed_pps", format!("{:.1}", self.relayed_pps));
        for (k, v) in ["p50", "p90", "p99", "max", "mean"].iter().zip(self.rtt_us) {
            field(&format!("rtt_us_{k}"), v.to_string());
        }
        field("server_cpu_s", num(self.server_cpu_s));
        field("pkts_per_server_cpu_s", num(self.pkts_per_server_cpu_s));
        field("gen_cpu_s", format!("{:.3}", self.gen_cpu_s));
        field("other_cpu_s", num(self.other_cpu_s));
        field("nongen_cpu_s", num(self.nongen_cpu_s));
        field("pkts_per_nongen_cpu_s", num(self.pkts_per_nongen_cpu_s));
        field("rss_before", int(self.rss_before));
        field("rss_after_setup", int(self.rss_after_setup));
        field("rss_after_data", int(self.rss_after_data));
        field("rss_end", int(self.rss_end));
        field("rss_per_alloc_bytes", num(self.rss_per_alloc()));
        field("dealloc_ok", int(self.dealloc_ok));
        s.push('}');
        s
    }
}

/// A JSON string (labels and failure names are plain ASCII; quotes and backslashes escaped).
fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            c if c.is_control() => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_one_parsable_line_with_every_figure() {
        let mut r = Report {
            label: "a \"b\"".into(),
            setup_ok: 10,
            rss_before: Some(1000),
            rss_after_setup: Some(41_000),
            ..Report::default()
        };
        r.failures.insert("alloc_401".into(), 2);
        let j = r.json();
        assert!(!j.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["label"], "a \"b\"");
        assert_eq!(v["failures"]["alloc_401"], 2);
        assert_eq!(v["rss_per_alloc_bytes"], 4000.0);
        assert!(v["server_cpu_s"].is_null());
    }

    #[test]
    fn counts_packets_per_machine_cpu_second_less_the_generator() {
        let d = DataStats {
            sent: 1000,
            received: 990,
            send_seconds: 1.0,
            ..DataStats::default()
        };
        let mut r = Report::default();
        // The machine was busy 3 s: 1 s of it the server, 0.5 s this generator.
        r.set_data(&d, 1000, Some(1.0), 0.5, Some(3.0));
        assert_eq!(r.nongen_cpu_s, Some(2.5));
        assert_eq!(r.other_cpu_s, Some(1.5));
        assert_eq!(r.pkts_per_server_cpu_s, Some(1990.0));
        assert_eq!(r.pkts_per_nongen_cpu_s, Some(1990.0 / 2.5));
        assert!((r.loss_pct - 1.0).abs() < 1e-9);
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["pkts_per_nongen_cpu_s"], 796.0);
        // Without /proc/stat there is no machine figure, and no ratio from it.
        r.set_data(&d, 1000, Some(1.0), 0.5, None);
        assert!(r.pkts_per_nongen_cpu_s.is_none() && r.other_cpu_s.is_none());
    }
}
