//! Integration tests of the `edgeflow` binary. Everything runs on tiny datasets written to a
//! temp dir (8x8 image folders, a few `.ts` series, a few text files), so the suite stays fast
//! in the dev profile; one test uses a few real CIFAR-10 JPEGs when the shared datasets are
//! present.

mod common;
mod errors;
mod evaluate;
mod inputs;
mod inspect;
mod predict;
mod sequences;
mod train;
