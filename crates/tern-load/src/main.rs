//! `tern-load`: a TURN load generator for loopback benchmarks (see the `tern_load` library).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::ExitCode::from(u8::try_from(tern_load::main(&args)).unwrap_or(1))
}
