//! `sluice._sluice`: the native half of the `sluice` Python package (distribution
//! `sluice-llm`). It holds no logic of its own: the engine is the `sluice` crate, the CLI is
//! `sluice-cli`, the simulator `sluice-sim`; this is their face to Python, with the
//! Python-side API (`Client`, `gather`, `run`, typed exceptions) in `python/sluice/`.
//!
//! Every call that waits returns an asyncio awaitable driven by a tokio runtime on its own
//! threads (`pyo3-async-runtimes`), so the GIL is free while the engine works; an awaitable
//! cancelled by asyncio drops its Rust future, which cancels what it was doing.

mod batch;
mod client;
mod outcome;
mod sim;

use pyo3::prelude::*;

pyo3::create_exception!(
    _sluice,
    RequestFailed,
    pyo3::exceptions::PyException,
    "A request failed for good: args are (code, status, message, request_id, body, gave_up, attempts)."
);

/// Runs the `sluice` command line `argv` (program name first) and returns its exit code:
/// what the package's `sluice` command calls.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| {
        let code = sluice_cli::main_with(argv);
        // `ExitCode` hides its value; its Debug form is `ExitCode(unix_exit_status(N))`.
        exit_code_value(&format!("{code:?}"))
    })
}

/// The number in `ExitCode`'s Debug text.
fn exit_code_value(debug: &str) -> i32 {
    let digits: String = debug
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(1)
}

/// Lets the runtime's threads finish handing results to Python before the interpreter
/// shuts down; registered with `atexit`, which runs before finalization. An awaitable's
/// result is set from a tokio thread holding the GIL while it schedules the result on the
/// event loop; waking the loop releases the GIL in the middle of that call, so the main
/// thread can finish and start finalizing before that thread takes the GIL back, and a
/// thread that takes the GIL during finalization is stopped by Python, which aborts the
/// process (seen in 8 of 20 runs of an example). Released here for a moment, the GIL
/// goes to any thread waiting for it.
#[pyfunction]
fn settle_before_exit(py: Python<'_>) {
    py.detach(|| std::thread::sleep(std::time::Duration::from_millis(50)));
}

#[pymodule]
fn _sluice(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(settle_before_exit, m)?)?;
    m.add_class::<client::NativeClient>()?;
    m.add_class::<batch::NativeBatch>()?;
    m.add_class::<outcome::NativeResult>()?;
    m.add_class::<sim::NativeSim>()?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add("RequestFailed", m.py().get_type::<RequestFailed>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
