//! The model file: one safetensors file whose header metadata carries the architecture, the
//! model metadata, the compile settings, a format version and a SHA-256 checksum.
//!
//! The checksum covers the architecture, metadata and compile JSON and every tensor's name,
//! dtype, shape and bytes, so a truncated file, a flipped byte or a foreign safetensors file
//! is refused with a message naming the file.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use edgeflow_tensor::Tensor;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use crate::error::{NnError, Result};
use crate::model::{Architecture, CompileConfig, ModelMetadata, Sequential};

/// Value of the `format` header key.
pub const FORMAT: &str = "edgeflow-model";
/// The version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

fn file_error(path: &Path, reason: impl Into<String>) -> NnError {
    NnError::ModelFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn checksum(texts: &[&str], tensors: &[(String, Vec<usize>, &[u8])]) -> String {
    let mut h = Sha256::new();
    for t in texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    for (name, shape, bytes) in tensors {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update("F32");
        h.update((shape.len() as u64).to_le_bytes());
        shape
            .iter()
            .for_each(|d| h.update((*d as u64).to_le_bytes()));
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Sequential {
    /// Writes the model to `path` atomically: a temporary file in the same folder is written,
    /// flushed to disk, then renamed over `path`, so a crash never leaves half a model.
    ///
    /// # Errors
    /// [`NnError::Io`] or [`NnError::ModelFile`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes().map_err(|r| file_error(path, r))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let io = |source| NnError::Io {
            path: path.to_path_buf(),
            source,
        };
        // A temporary file is private (0600) by default; the model file gets the permissions
        // any new file would (0666 less the umask, which the kernel applies at creation).
        let mut builder = tempfile::Builder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let mut tmp = builder.tempfile_in(dir).map_err(io)?;
        tmp.write_all(&bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        tracing::info!(path = %path.display(), bytes = bytes.len(), "model saved");
        Ok(())
    }

    /// The model file's bytes.
    ///
    /// # Errors
    /// A description of what could not be serialized.
    pub fn to_bytes(&self) -> std::result::Result<Vec<u8>, String> {
        let arch = serde_json::to_string(&self.architecture()).map_err(|e| e.to_string())?;
        let meta = serde_json::to_string(&self.metadata).map_err(|e| e.to_string())?;
        let compile = serde_json::to_string(&self.compile_config()).map_err(|e| e.to_string())?;
        let params = self.named_params();
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = params
            .iter()
            .map(|(name, p)| {
                let v = p.value.to_vec_f32().map_err(|e| format!("{name}: {e}"))?;
                Ok((
                    name.clone(),
                    p.value.dims().to_vec(),
                    v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                ))
            })
            .collect::<std::result::Result<_, String>>()?;
        let refs: Vec<(String, Vec<usize>, &[u8])> = data
            .iter()
            .map(|(n, s, b)| (n.clone(), s.clone(), b.as_slice()))
            .collect();
        let mut by_name = refs.clone();
        by_name.sort_by(|a, b| a.0.cmp(&b.0));
        let version = FORMAT_VERSION.to_string();
        let sum = checksum(&[FORMAT, &version, &arch, &meta, &compile], &by_name);
        let header: HashMap<String, String> = [
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".into(), FORMAT_VERSION.to_string()),
            ("architecture".into(), arch),
            ("metadata".into(), meta),
            ("compile".into(), compile),
            ("checksum".into(), sum),
        ]
        .into();
        let views: Vec<(String, TensorView<'_>)> = refs
            .iter()
            .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| e.to_string())?;
        safetensors::serialize(views, Some(header)).map_err(|e| e.to_string())
    }

    /// Reads a model written by [`Sequential::save`], with its metadata and compile settings.
    ///
    /// # Errors
    /// [`NnError::ModelFile`] naming the file and the problem: not a safetensors file, not an
    /// edgeflow model, a newer format version, a checksum mismatch (corruption), a missing or
    /// misshapen tensor.
    pub fn load(path: impl AsRef<Path>) -> Result<Sequential> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let model = Self::from_bytes(&bytes).map_err(|r| file_error(path, r))?;
        tracing::info!(path = %path.display(), params = model.param_count(), "model loaded");
        Ok(model)
    }

    /// Parses model file bytes.
    ///
    /// # Errors
    /// A description of what is wrong with them.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Sequential, String> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
            format!("not an edgeflow model file (no readable safetensors header: {e})")
        })?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(
                "not an edgeflow model file (a safetensors file without edgeflow metadata)".into(),
            );
        }
        let version: u32 = meta
            .get("format_version")
            .and_then(|v| v.parse().ok())
            .ok_or("missing format version")?;
        if version == 0 {
            return Err("format version 0 does not exist (the file is corrupted)".into());
        }
        if version > FORMAT_VERSION {
            return Err(format!(
                "format version {version} is newer than this build reads ({FORMAT_VERSION})"
            ));
        }
        let get = |k: &str| {
            meta.get(k)
                .map(String::as_str)
                .ok_or(format!("header has no {k:?} entry"))
        };
        let (arch_json, meta_json, compile_json) =
            (get("architecture")?, get("metadata")?, get("compile")?);
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| format!("damaged tensor data: {e}"))?;
        let texts = [
            FORMAT,
            get("format_version")?,
            arch_json,
            meta_json,
            compile_json,
        ];
        verify_checksum(&st, &texts, get("checksum")?)?;

        let arch: Architecture =
            serde_json::from_str(arch_json).map_err(|e| format!("bad architecture: {e}"))?;
        let mut model = Sequential::from_architecture(&arch, 0).map_err(|e| e.to_string())?;
        model.metadata = serde_json::from_str::<ModelMetadata>(meta_json)
            .map_err(|e| format!("bad metadata: {e}"))?;
        if let Some(c) = serde_json::from_str::<Option<CompileConfig>>(compile_json)
            .map_err(|e| format!("bad compile settings: {e}"))?
        {
            model
                .compile(c.optimizer, c.loss, c.metrics)
                .map_err(|e| e.to_string())?;
        }
        load_params(&mut model, &st)?;
        Ok(model)
    }
}

fn verify_checksum(
    st: &SafeTensors<'_>,
    texts: &[&str],
    expected: &str,
) -> std::result::Result<(), String> {
    let mut names = st.names();
    names.sort();
    let mut tensors = Vec::new();
    for name in names {
        let view = st.tensor(name).map_err(|e| e.to_string())?;
        if view.dtype() != Dtype::F32 {
            return Err(format!(
                "tensor {name} has dtype {:?}, expected F32",
                view.dtype()
            ));
        }
        tensors.push((name.to_string(), view.shape().to_vec(), view.data()));
    }
    // Tensors are hashed in name order on both sides.
    if checksum(texts, &tensors) != expected {
        return Err("checksum mismatch: the file is corrupted".into());
    }
    Ok(())
}

fn load_params(model: &mut Sequential, st: &SafeTensors<'_>) -> std::result::Result<(), String> {
    for (name, p) in model.params_mut() {
        let view = st
            .tensor(&name)
            .map_err(|_| format!("tensor {name} is missing"))?;
        if view.shape() != p.value.dims() {
            return Err(format!(
                "tensor {name} has shape {:?}, the layer needs {:?}",
                view.shape(),
                p.value.dims()
            ));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let t = Tensor::from_vec(values, view.shape().to_vec()).map_err(|e| e.to_string())?;
        p.value = t.with_requires_grad(p.trainable);
    }
    Ok(())
}
