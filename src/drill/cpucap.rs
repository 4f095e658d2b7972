//! A CPU quota for the server under test (cgroup v1 `cpu.cfs_quota_us`, or cgroup v2 `cpu.max`):
//! on a small machine the load generator shares the cores with tern, so the overload drill caps
//! tern to a fraction of one core to make the server, not the generator, the bottleneck.

use std::fs;
use std::path::PathBuf;

/// The cgroup period; short, so the throttle adds little latency of its own.
const PERIOD_US: u32 = 10_000;

pub struct CpuCap {
    dir: PathBuf,
    root: PathBuf,
}

impl CpuCap {
    /// Puts `pid` (all its threads) in a new cgroup limited to `percent` of one CPU.
    pub fn apply(pid: u32, percent: u32) -> Result<CpuCap, String> {
        let quota = PERIOD_US * percent / 100;
        let name = format!("tern-drill-{}", std::process::id());
        let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
        let v2 = PathBuf::from("/sys/fs/cgroup");
        let (root, settings) = if v1.join("cpu.cfs_quota_us").exists() {
            (
                v1,
                vec![
                    ("cpu.cfs_period_us", PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
            )
        } else if v2.join("cgroup.controllers").exists() {
            (v2, vec![("cpu.max", format!("{quota} {PERIOD_US}"))])
        } else {
            return Err("no cgroup cpu controller".into());
        };
        let dir = root.join(name);
        fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let cap = CpuCap { dir, root };
        for (file, value) in settings {
            fs::write(cap.dir.join(file), value).map_err(|e| format!("write {file}: {e}"))?;
        }
        fs::write(cap.dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("move tern into the cgroup: {e}"))?;
        Ok(cap)
    }
}

impl Drop for CpuCap {
    fn drop(&mut self) {
        if let Ok(procs) = fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = fs::write(self.root.join("cgroup.procs"), pid);
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}
