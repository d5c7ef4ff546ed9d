//! `worker`: see `worker --help`.

fn main() -> std::process::ExitCode {
    worker::main()
}
