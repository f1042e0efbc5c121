//! mimalloc's settings through a run. mimalloc is the binary's global allocator (see
//! `main.rs`); where another allocator is in use, as inside the Python package, these
//! set options of an allocator nothing allocates from, and change nothing.

use std::ffi::c_long;

use libmimalloc_sys::{mi_option_set, mi_option_t};

/// mimalloc's `arena_eager_commit` and `purge_delay` options (their places in
/// `mi_option_e`, the same in mimalloc 2 and 3; libmimalloc-sys names neither).
const MI_OPTION_ARENA_EAGER_COMMIT: mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// Milliseconds freed memory stays with the process once requests flow: mimalloc's own
/// default. Given back at once, the pages a request's buffers free are faulted in again
/// by the next request's. On 10,000,000 requests this took the run's CPU from 174.6 to
/// 156.0 s and its peak RSS from 61.2 to 62.9 MiB; 100 ms saved a little more CPU
/// (149.9 s) but went over the 64 MiB bound (64.5 MiB). docs/BENCHMARKS.md, "Page faults".
const STEADY_PURGE_DELAY_MS: c_long = 10;

/// For start-up: memory freed is given back to the system at once, and arenas are
/// committed as they are used rather than up front. Loading a tokenizer's vocabulary
/// allocates tens of MB that are freed a moment later: with mimalloc's defaults they stay
/// resident and nearly double the peak RSS of a run with a TPM budget (77 MB against
/// 37 MB measured on 50,000 requests).
///
/// The first arena is made at the first allocation, which the Rust runtime makes before
/// `main`, so the binary calls this from a constructor (`.init_array`), before any.
pub fn for_start_up() {
    // SAFETY: plain option setters; options may be set before the allocator initializes,
    // and take effect for the arenas and purges that follow.
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

/// For sending, once the vocabulary a run counts with is loaded (or at once when it
/// counts none): freed memory is kept [`STEADY_PURGE_DELAY_MS`] for the next requests.
pub fn for_sending() {
    // SAFETY: as above; the option is read at each purge, from any thread.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, STEADY_PURGE_DELAY_MS) };
}
