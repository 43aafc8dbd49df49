//! Text classification folders (`root/<class_name>/<text files>`) and split lists.

use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::layout::list_class_folders;

const TEXT_LAYOUT: &str = "root/<class_name>/<text files>";

/// Labelled texts, e.g. e-mails of the SpamAssassin corpus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextDataset {
    /// The texts; invalid UTF-8 was replaced by U+FFFD.
    pub texts: Vec<String>,
    /// Class index of each text.
    pub labels: Vec<u32>,
    /// Class names; label `i` means `class_names[i]`.
    pub class_names: Vec<String>,
    /// Source file of each text.
    pub paths: Vec<PathBuf>,
}

impl TextDataset {
    /// Number of texts.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether the dataset holds no text.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Number of texts per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// A new dataset holding the selected texts in the given order.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] if an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Result<TextDataset> {
        if let Some(&index) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        Ok(TextDataset {
            texts: indices.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
            paths: indices.iter().map(|&i| self.paths[i].clone()).collect(),
        })
    }
}

/// Loads every file of `root/<class_name>/` as one text. Classes are the sorted sub-folder
/// names; files are sorted by name within a class; names starting with `.` are ignored.
/// Files are read in parallel and decoded as UTF-8, lossily.
///
/// # Errors
/// [`DataError::Layout`] if `root` is missing, has no class sub-folder or a class folder is
/// empty; [`DataError::Io`] if a file cannot be read.
pub fn load_text_folder(root: impl AsRef<Path>) -> Result<TextDataset> {
    let listing = list_class_folders(root.as_ref(), TEXT_LAYOUT, |_| true)?;
    let paths: Vec<PathBuf> = listing.files.iter().map(|f| f.path.clone()).collect();
    let texts = read_texts(&paths)?;
    let labels = listing.files.iter().map(|f| f.label).collect();
    tracing::info!(root = %root.as_ref().display(), texts = texts.len(), "loaded text folder");
    Ok(TextDataset {
        texts,
        labels,
        class_names: listing.class_names,
        paths,
    })
}

fn read_texts(paths: &[PathBuf]) -> Result<Vec<String>> {
    paths
        .par_iter()
        .map(|p| {
            let bytes = std::fs::read(p).map_err(|e| DataError::io("read", p, e))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

/// Which split a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training split.
    Train,
    /// Test split.
    Test,
}

/// One line of a split list: the split and the file path relative to the dataset root
/// (`class/file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitEntry {
    /// The split.
    pub split: Split,
    /// Path relative to the dataset root; its first component is the class folder.
    pub relative_path: PathBuf,
    /// One-based line number in the split file.
    pub line: usize,
}

/// Reads a split list: one `train|test<TAB>class/file` entry per line; blank lines are
/// skipped.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read; [`DataError::Parse`] naming the line if it
/// has no tab, an unknown split word, or a path that is absolute, contains `..`, or is not
/// `class/file`.
pub fn read_split_file(path: impl AsRef<Path>) -> Result<Vec<SplitEntry>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let parse_err = |reason: String| DataError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let (word, rel) = line
            .split_once('\t')
            .ok_or_else(|| parse_err("expected `train|test<TAB>class/file`".into()))?;
        let split = match word.trim() {
            "train" => Split::Train,
            "test" => Split::Test,
            other => {
                return Err(parse_err(format!(
                    "unknown split `{other}` (train or test)"
                )))
            }
        };
        let relative_path = PathBuf::from(rel.trim());
        let comps: Vec<_> = relative_path.components().collect();
        if comps.len() < 2 || !comps.iter().all(|c| matches!(c, Component::Normal(_))) {
            return Err(parse_err(format!(
                "`{}` is not a relative `class/file` path",
                rel.trim()
            )));
        }
        entries.push(SplitEntry {
            split,
            relative_path,
            line: i + 1,
        });
    }
    Ok(entries)
}

/// Loads the files listed in `split_file` (see [`read_split_file`]) from `root`, as
/// (train, test), in the order of the list. Class names are the sorted sub-folders of `root`
/// (as in [`load_text_folder`]), so labels agree with a whole-folder load.
///
/// # Errors
/// As [`read_split_file`]; [`DataError::Layout`] for a bad root; [`DataError::Parse`] if an
/// entry names a class folder that does not exist; [`DataError::Io`] if a file is missing.
pub fn load_text_split(
    root: impl AsRef<Path>,
    split_file: impl AsRef<Path>,
) -> Result<(TextDataset, TextDataset)> {
    let root = root.as_ref();
    let split_file = split_file.as_ref();
    let listing = list_class_folders(root, TEXT_LAYOUT, |_| true)?;
    let entries = read_split_file(split_file)?;

    let mut train = TextDataset {
        class_names: listing.class_names.clone(),
        ..Default::default()
    };
    let mut test = train.clone();
    for e in &entries {
        let class = e
            .relative_path
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy());
        let label = class
            .as_deref()
            .and_then(|c| listing.class_names.iter().position(|n| n == c))
            .ok_or_else(|| DataError::Parse {
                path: split_file.to_path_buf(),
                line: e.line,
                reason: format!("unknown class folder in `{}`", e.relative_path.display()),
            })?;
        let target = if e.split == Split::Train {
            &mut train
        } else {
            &mut test
        };
        // Class positions are bounded by the number of sub-folders.
        target.labels.push(label as u32);
        target.paths.push(root.join(&e.relative_path));
    }

    train.texts = read_texts(&train.paths)?;
    test.texts = read_texts(&test.paths)?;
    tracing::info!(train = train.len(), test = test.len(), "loaded text split");
    Ok((train, test))
}
