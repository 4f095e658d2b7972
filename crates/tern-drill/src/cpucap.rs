//! A CPU quota for the server under test (cgroup v1 `cpu.cfs_quota_us`, or cgroup v2 `cpu.max`):
//! on a small machine the load generator shares the cores with tern, so the overload drill caps
//! tern to a fraction of one core to make the server, not the generator, the bottleneck.

use std::fs;
use std::path::PathBuf;

/// The kernel's smallest CFS quota (and period), in microseconds.
const MIN_QUOTA_US: u32 = 1_000;

pub struct CpuCap {
    dir: PathBuf,
    root: PathBuf,
}

impl CpuCap {
    /// Puts `pid` (all its threads) in a new cgroup limited to `percent` of one CPU.
    pub fn apply(pid: u32, percent: u32) -> Result<CpuCap, String> {
        // The shortest period the kernel takes for this share: a throttled server stops for
        // period - quota at a time, and a long stop fills the socket buffers so that every
        // packet arriving in the same phase of each period is dropped. A client retransmitting
        // on a fixed timer (a multiple of the period) then loses every copy: an artefact of the
        // cap, not of overload. With a period of a few milliseconds a stop fits in the buffers.
        let percent = percent.clamp(1, 100);
        let period = (MIN_QUOTA_US * 100).div_ceil(percent);
        let quota = period * percent / 100;
        let name = format!("tern-drill-{}", std::process::id());
        let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
        let v2 = PathBuf::from("/sys/fs/cgroup");
        let (root, settings) = if v1.join("cpu.cfs_quota_us").exists() {
            (
                v1,
                vec![
                    ("cpu.cfs_period_us", period.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
            )
        } else if v2.join("cgroup.controllers").exists() {
            (v2, vec![("cpu.max", format!("{quota} {period}"))])
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
