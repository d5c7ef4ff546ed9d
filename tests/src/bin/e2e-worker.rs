//! The worker binary, built inside the test crate so tests can run (and `kill -9`) it as a
//! process: Cargo only hands a package's tests the paths of that package's own binaries.

fn main() -> std::process::ExitCode {
    worker::main()
}
