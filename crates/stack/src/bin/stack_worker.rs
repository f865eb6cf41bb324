//! A stack worker process on its own (`stack-worker __stack-worker`), for the stack crate's
//! multi-process tests and benchmarks; `syncstorm` runs the same code as a hidden subcommand.

fn main() {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("stack worker: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(syncstorm_stack::workers::run_worker()) {
        eprintln!("stack worker: {e}");
        std::process::exit(1);
    }
}
