//! The `wadash` binary: everything lives in the library; see `wadash --help`.

fn main() -> std::process::ExitCode {
    wadash::cli::main()
}
