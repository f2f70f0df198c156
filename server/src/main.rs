use clap::Parser;
use server::config::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any other thread exists, so that every thread's allocations follow it.
    server::tune_allocator();
    let cli = Cli::parse();
    server::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("opsdeck: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(server::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opsdeck: {e}");
            ExitCode::from(2)
        }
    }
}
