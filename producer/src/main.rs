//! `producer`: see `producer --help`.

fn main() -> std::process::ExitCode {
    producer::main()
}
