//! Loads CIFAR-10 from its JPEG folder twice, through the decoded-array cache, and prints how
//! long the first (decoding) and the second (cached) load took.
//!
//! ```text
//! cargo run --release -p edgeflow-data --example load_cifar -- [ROOT] [CACHE_DIR]
//! ```
//!
//! ROOT defaults to `shared/datasets/cifar10-jpg` beside the repository. Without CACHE_DIR a
//! fresh folder under the system temp dir is used and removed afterwards, so the first load
//! always decodes.

use std::path::PathBuf;
use std::time::Instant;

use edgeflow_data::load_cifar10_jpg_cached;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/datasets/cifar10-jpg"
        ))
    });
    let (cache_dir, temporary) = match args.next() {
        Some(dir) => (PathBuf::from(dir), false),
        None => {
            let dir =
                std::env::temp_dir().join(format!("edgeflow-load-cifar-{}", std::process::id()));
            (dir, true)
        }
    };
    println!("root:  {}", root.display());
    println!("cache: {}", cache_dir.display());
    println!("threads: {}", rayon::current_num_threads());

    for attempt in ["first", "second"] {
        let start = Instant::now();
        let (train, test) = load_cifar10_jpg_cached(&root, &cache_dir)?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{attempt} load: {secs:.3} s  (train {} images, test {}, per-class train {:?})",
            train.len(),
            test.len(),
            train.class_counts()
        );
    }

    if temporary {
        std::fs::remove_dir_all(&cache_dir)?;
    }
    Ok(())
}
