//! `EDGEFLOW_NUM_THREADS` sets the size of the kernel pool. The pool is built once per process,
//! so this file holds a single test, run in a process of its own before anything else builds
//! the pool.

use edgeflow_tensor::threading::{num_threads, NUM_THREADS_ENV};

#[test]
fn the_environment_variable_sizes_the_pool() {
    std::env::set_var(NUM_THREADS_ENV, "3");

    assert_eq!(num_threads(), 3);
}
