//! The producer binary, built inside the test crate so tests can run it as a process.

fn main() -> std::process::ExitCode {
    producer::main()
}
