//! Shared helpers: a tiny image-folder dataset and config in a temp dir, and a way to run the
//! `edgeflow` binary and look at what it did.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Exit code of a failed run (see `exit_code` in src/main.rs).
pub const EXIT_RUN: i32 = 1;
/// Exit code of bad command-line usage.
pub const EXIT_USAGE: i32 = 2;
/// Exit code of bad input data or a bad model file.
pub const EXIT_INPUT: i32 = 3;

/// Side of the tiny dataset's square images.
pub const SIDE: u32 = 8;
/// Class folders of the tiny dataset, in label order (sorted).
pub const CLASSES: [&str; 2] = ["blue", "red"];
/// Images per class in train/.
pub const TRAIN_PER_CLASS: usize = 6;
/// Images per class in test/.
pub const TEST_PER_CLASS: usize = 3;

/// The tiny config: an 8x8x3 input, Conv2D(4, 3x3) -> Flatten -> Dense(2, softmax), data in
/// `data/` next to the config file.
pub const CONFIG: &str = r#"[data]
path = "data"
format = "image_folder"
scale = 0.00392156862745098

[model]
name = "tiny"
input_shape = [8, 8, 3]

[[model.layers]]
type = "Conv2D"
filters = 4
kernel_size = [3, 3]
activation = "relu"

[[model.layers]]
type = "Flatten"

[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"

[compile]
optimizer = "adam"
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]

[fit]
epochs = 2
batch_size = 4
seed = 0
"#;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts exit code 0 and returns the run.
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }

    /// Asserts a clean failure: exit code `code`, an `error:` line on stderr that contains
    /// every string of `needles`, and no panic.
    #[track_caller]
    pub fn fails(self, code: i32, needles: &[&str]) -> Run {
        assert!(!self.stderr.contains("panicked"), "panic: {self:#?}");
        assert_eq!(self.code, code, "wrong exit code: {self:#?}");
        assert!(self.stderr.contains("error:"), "no error line: {self:#?}");
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}: {self:#?}");
        }
        self
    }
}

/// A temp dir holding `data/{train,test}/{blue,red}/*.png` (8x8) and `config.toml`.
pub struct Fixture {
    dir: TempDir,
}

impl Fixture {
    /// Builds the tiny dataset and writes [`CONFIG`].
    pub fn new() -> Fixture {
        let fixture = Fixture::empty();
        for (split, per_class) in [("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)] {
            for (label, class) in CLASSES.iter().enumerate() {
                for i in 0..per_class {
                    let path = fixture.path(&format!("data/{split}/{class}/{i:02}.png"));
                    write_png(&path, SIDE, SIDE, label, i as u32);
                }
            }
        }
        fixture.write("config.toml", CONFIG);
        fixture
    }

    /// A temp dir with nothing in it.
    pub fn empty() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `rel` inside the temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `text` to `rel` (creating folders) and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Writes [`CONFIG`] with `from` replaced by `to` as `rel`; returns its path and the
    /// one-based line where `to` starts.
    pub fn config_with(&self, rel: &str, from: &str, to: &str) -> (PathBuf, usize) {
        assert!(CONFIG.contains(from), "{from:?} is not in the config");
        let text = CONFIG.replacen(from, to, 1);
        let at = text.find(to).expect("replacement");
        let line = text[..at].matches('\n').count() + 1;
        (self.write(rel, &text), line)
    }

    /// Runs `edgeflow` in the temp dir with `args`, the decoded-image cache kept in the temp
    /// dir and no RUST_LOG from the environment.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
            .args(args)
            .current_dir(self.dir.path())
            .env("EDGEFLOW_CACHE_DIR", self.path("cache"))
            .env_remove("RUST_LOG")
            .env_remove("EDGEFLOW_NUM_THREADS")
            .output()
            .expect("run edgeflow");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Trains the tiny config quietly on one thread and returns the model path.
    pub fn train_model(&self) -> PathBuf {
        self.run(&[
            "train",
            "config.toml",
            "--quiet",
            "--threads",
            "1",
            "--out",
            "model.efm",
        ])
        .success();
        self.path("model.efm")
    }
}

/// Writes a `width`x`height` PNG: class 0 mostly blue, class 1 mostly red, with a pattern that
/// differs per `variant` so no two images are equal.
pub fn write_png(path: &Path, width: u32, height: u32, class: usize, variant: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let noise = ((x * 31 + y * 17 + variant * 53) % 64) as u8;
        let (strong, weak) = (180 + noise, noise);
        if class == 0 {
            image::Rgb([weak, weak, strong])
        } else {
            image::Rgb([strong, weak, weak])
        }
    });
    img.save(path).expect("write png");
}

/// The first `n` files (sorted) of `split/class` in the shared CIFAR-10 JPEG folder, or `None`
/// when this checkout has no shared datasets.
pub fn cifar_jpegs(split: &str, class: &str, n: usize) -> Option<Vec<PathBuf>> {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets/cifar10-jpg"
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(split).join(class))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files.truncate(n);
    (files.len() == n).then_some(files)
}

/// Parses a JSON document, failing the test with the text on error.
#[track_caller]
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

/// Asserts that `value` is an object holding at least `keys`.
#[track_caller]
pub fn assert_keys(value: &serde_json::Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    for k in keys {
        assert!(object.contains_key(*k), "{value} lacks {k:?}");
    }
}
