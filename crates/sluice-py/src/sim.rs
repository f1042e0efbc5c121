//! `NativeSim`: the simulator on 127.0.0.1, on the package's runtime.

use std::num::NonZeroU64;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3_async_runtimes::tokio::get_runtime;
use sluice_sim::{Fault, Latency, Sim, SimHandle};

/// A running simulator.
#[pyclass(frozen, module = "sluice._sluice")]
pub struct NativeSim {
    handle: Mutex<Option<SimHandle>>,
    #[pyo3(get)]
    base_url: String,
}

#[pymethods]
impl NativeSim {
    #[new]
    #[allow(clippy::too_many_arguments)] // keywords of the Python constructor
    #[pyo3(signature = (*, rpm=None, tpm=None, faults=Vec::new(), latency=0.0, seed=None, send_headers=true, max_concurrency=None))]
    fn new(
        py: Python<'_>,
        rpm: Option<u64>,
        tpm: Option<u64>,
        faults: Vec<(String, f64)>,
        latency: f64,
        seed: Option<u64>,
        send_headers: bool,
        max_concurrency: Option<usize>,
    ) -> PyResult<Self> {
        let mut builder = Sim::builder()
            .rpm(rpm.and_then(NonZeroU64::new))
            .tpm(tpm.and_then(NonZeroU64::new))
            .send_headers(send_headers)
            .max_concurrency(max_concurrency)
            .latency(Latency {
                ttft: Duration::try_from_secs_f64(latency)
                    .map_err(|_| PyValueError::new_err("latency must be seconds >= 0"))?,
                per_token: Duration::ZERO,
                jitter: 0.3,
            });
        for (name, probability) in faults {
            let fault: Fault = name
                .parse()
                .map_err(|e| PyValueError::new_err(format!("fault {name:?}: {e}")))?;
            builder = builder.fault(fault, probability);
        }
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        let sim = builder
            .build()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let handle = py
            .detach(|| get_runtime().block_on(sim.spawn()))
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the simulator: {e}")))?;
        Ok(NativeSim {
            base_url: handle.base_url(),
            handle: Mutex::new(Some(handle)),
        })
    }

    /// The statistics so far, as JSON.
    fn stats_json(&self) -> PyResult<String> {
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner());
        let handle = handle
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the simulator is closed"))?;
        serde_json::to_string(&handle.stats()).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Stops it and waits for its connections to close.
    fn close(&self, py: Python<'_>) {
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            py.detach(|| get_runtime().block_on(handle.shutdown()));
        }
    }
}
