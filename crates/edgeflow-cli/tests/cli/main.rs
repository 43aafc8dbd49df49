//! Integration tests of the `edgeflow` binary. Everything runs on a tiny 8x8 image-folder
//! dataset written to a temp dir, so the suite stays fast in the dev profile; one test uses a
//! few real CIFAR-10 JPEGs when the shared datasets are present.

mod common;
mod errors;
mod evaluate;
mod inspect;
mod predict;
mod train;
