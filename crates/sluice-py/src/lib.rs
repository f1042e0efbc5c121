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

#[pymodule]
fn _sluice(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::NativeClient>()?;
    m.add_class::<batch::NativeBatch>()?;
    m.add_class::<outcome::NativeResult>()?;
    m.add_class::<sim::NativeSim>()?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add("RequestFailed", m.py().get_type::<RequestFailed>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
