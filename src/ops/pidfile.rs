//! `pidfile`: the process id, written once every listener is bound and removed at exit.

use std::io;
use std::path::{Path, PathBuf};

/// A written pidfile; removed when dropped.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    pub fn write(path: &Path) -> io::Result<Pidfile> {
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(Pidfile {
            path: path.to_owned(),
        })
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        // After dropping privileges the directory may no longer be writable: nothing to do then.
        let _ = std::fs::remove_file(&self.path);
    }
}
