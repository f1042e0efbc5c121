//! The `sluice` command: a thin layer of flags over the `sluice` and `sluice-sim` libraries
//! (see the `sluice_cli` library for the command itself).

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the engine allocates small buffers per request on
/// several threads, where glibc's arenas spend a tenth of the run on locks and bookkeeping.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
/// The allocator's start-up settings ([`sluice_cli::allocator::for_start_up`]), set
/// before the first allocation: on Linux this runs as a constructor (`.init_array`).
extern "C" fn tune_allocator() {
    sluice_cli::allocator::for_start_up();
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

fn main() -> ExitCode {
    #[cfg(not(target_os = "linux"))]
    tune_allocator();
    sluice_cli::main_with(std::env::args_os())
}
