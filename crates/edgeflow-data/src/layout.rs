//! Listing of `root/<class_name>/<files>` dataset folders, shared by images and text.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::error::{DataError, Result};

/// One file found under a class folder.
#[derive(Debug, Clone)]
pub(crate) struct ListedFile {
    /// Full path of the file.
    pub path: PathBuf,
    /// Class index (position of its folder among the sorted class folders).
    pub label: u32,
    /// Size in bytes when listed.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch, 0 if unavailable.
    pub mtime_ns: u128,
}

/// A listed class-folder dataset: sorted class names and the files of every class, sorted by
/// file name within a class and grouped by class in label order.
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    /// The root folder as given.
    pub root: PathBuf,
    /// Sorted class folder names.
    pub class_names: Vec<String>,
    /// All files, class by class.
    pub files: Vec<ListedFile>,
}

/// Lists `root/<class>/<file>`, keeping files for which `keep` returns true.
///
/// Entries whose name starts with `.` are ignored at both levels. `expected` describes the
/// layout in error messages.
pub(crate) fn list_class_folders(
    root: &Path,
    expected: &'static str,
    keep: impl Fn(&Path) -> bool,
) -> Result<Listing> {
    let layout_err = |path: &Path, problem: String| DataError::Layout {
        path: path.to_path_buf(),
        problem,
        expected,
    };
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(layout_err(root, "it is not a folder".into())),
        Err(e) => {
            return Err(layout_err(
                root,
                format!("the folder cannot be opened ({e})"),
            ))
        }
    }

    let class_dirs: Vec<(String, PathBuf)> = sorted_entries(root)?
        .into_iter()
        .filter(|(_, path)| path.is_dir())
        .collect();
    if class_dirs.is_empty() {
        return Err(layout_err(root, "it has no class sub-folders".into()));
    }

    let mut files = Vec::new();
    for (label, (name, dir)) in class_dirs.iter().enumerate() {
        // Labels are bounded by the number of sub-folders, far below u32::MAX.
        let class_files = list_files(dir, label as u32, &keep)?;
        if class_files.is_empty() {
            let problem = format!("class folder `{name}` holds no usable file");
            return Err(layout_err(dir, problem));
        }
        files.extend(class_files);
    }

    let class_names = class_dirs.into_iter().map(|(name, _)| name).collect();
    Ok(Listing {
        root: root.to_path_buf(),
        class_names,
        files,
    })
}

/// The regular files of one class folder accepted by `keep`, sorted by name.
fn list_files(dir: &Path, label: u32, keep: impl Fn(&Path) -> bool) -> Result<Vec<ListedFile>> {
    let mut files = Vec::new();
    for (_, path) in sorted_entries(dir)? {
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io("stat", &path, e))?;
        if !meta.is_file() || !keep(&path) {
            continue;
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        files.push(ListedFile {
            path,
            label,
            size: meta.len(),
            mtime_ns,
        });
    }
    Ok(files)
}

/// Non-hidden entries of `dir` as (name, path), sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let read = std::fs::read_dir(dir).map_err(|e| DataError::io("list", dir, e))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| DataError::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

/// Whether `path` has one of `extensions` (lower-case, without dot), ignoring case.
pub(crate) fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_sorted_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (class, file) in [
            ("b", "2.png"),
            ("b", "1.JPG"),
            ("a", "x.jpeg"),
            ("a", "notes.txt"),
        ] {
            std::fs::create_dir_all(root.join(class)).unwrap();
            std::fs::write(root.join(class).join(file), b"x").unwrap();
        }
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::write(root.join("stray.png"), b"x").unwrap();
        let listing = list_class_folders(root, "r/<c>/<f>", |p| {
            has_extension(p, &["jpg", "png", "jpeg"])
        })
        .unwrap();
        assert_eq!(listing.class_names, vec!["a", "b"]);
        let names: Vec<_> = listing
            .files
            .iter()
            .map(|f| {
                (
                    f.label,
                    f.path.file_name().unwrap().to_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                (0, "x.jpeg".into()),
                (1, "1.JPG".into()),
                (1, "2.png".into())
            ]
        );
        assert_eq!(listing.files[0].size, 1);
    }
}
