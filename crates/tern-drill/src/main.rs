//! `tern-drill`: runs the robustness drills of issue 10 against the real `tern` binary and
//! prints `PASS name: summary`, `SKIP name: why` or `FAIL name: reason` per drill; exits 1 on
//! any failure, 2 on arguments it cannot run. See docs/robustness.md.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match tern_drill::cli::run(&args, &mut std::io::stdout()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
