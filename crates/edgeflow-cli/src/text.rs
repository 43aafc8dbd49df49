//! Text folders for the `text_folder` format: the word tokenizer fitted on the training split,
//! texts encoded to token ids, and the vocabulary file that travels beside the model.
//!
//! The model file's metadata has no place for a vocabulary, so `train` writes it next to the
//! model as `MODEL.vocab.json` (e.g. `spam.efm.vocab.json`), with the SHA-256 of the model
//! file it belongs to; `evaluate` and `predict` refuse a model that takes token ids when that
//! file is missing or belongs to another model.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use edgeflow_data::{TextDataset, WordTokenizer};
use edgeflow_nn::{LayerConfig, Sequential};
use edgeflow_tensor::Tensor;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::TextSource;
use crate::samples::{map_labels, Samples};
use crate::BadInput;

/// Format name written in every vocabulary file.
const VOCAB_FORMAT: &str = "edgeflow-vocab";
/// Version of the vocabulary file layout.
const VOCAB_VERSION: u32 = 1;

/// The train and test splits of a `text_folder` config, ready for `fit`.
pub struct TextTraining {
    /// Training samples: token ids `[n, sequence_length]` as f32, labels `[n]`.
    pub train: Samples,
    /// Test samples.
    pub test: Samples,
    /// Class names (the sorted class folders).
    pub class_names: Vec<String>,
    /// The tokenizer fitted on the training texts.
    pub tokenizer: WordTokenizer,
}

/// Loads the split, fits the tokenizer on the training texts only and encodes both splits.
///
/// # Errors
/// A model input that is not `[sequence_length]`; a bad folder or split list.
pub fn load_training(src: &TextSource, input_shape: &[usize]) -> Result<TextTraining> {
    if input_shape != [src.sequence_length] {
        return Err(BadInput(format!(
            "text_folder encodes each text to sequence_length = {} token ids, so the model's \
             input_shape must be [{}], not {input_shape:?}",
            src.sequence_length, src.sequence_length
        ))
        .into());
    }
    check_folder(&src.root)?;
    let (train, test) = edgeflow_data::load_text_split(&src.root, &src.split_file)
        .with_context(|| format!("cannot load the text folder {}", src.root.display()))?;
    let tokenizer = WordTokenizer::fit(&train.texts, src.max_tokens, 1)?;
    tracing::info!(
        words = tokenizer.vocab_size(),
        "word tokenizer fitted on the training texts"
    );
    let names = train.class_names.clone();
    let encode = |ds: &TextDataset, what: &str| {
        text_samples(ds, &tokenizer, src.sequence_length, &names, what)
    };
    Ok(TextTraining {
        train: encode(&train, "the training split")?,
        test: encode(&test, "the test split")?,
        class_names: names.clone(),
        tokenizer,
    })
}

fn check_folder(root: &Path) -> Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    Err(BadInput(format!(
        "text folder {} does not exist; expected <class>/<text files> with a \
         `train|test<TAB>class/file` split list, such as ../shared/datasets/spamassassin",
        root.display()
    ))
    .into())
}

/// Token ids `[n, seq_len]` of `texts`, as f32 for an `Embedding` layer.
pub fn encode_texts<S: AsRef<str> + Sync>(
    texts: &[S],
    tokenizer: &WordTokenizer,
    seq_len: usize,
) -> Result<Tensor> {
    let ids: Vec<f32> = tokenizer
        .encode_batch(texts, seq_len)
        .into_iter()
        .map(|id| id as f32)
        .collect();
    Ok(Tensor::from_vec(ids, [texts.len(), seq_len])?)
}

/// Encoded texts with their labels mapped to `class_names`.
///
/// # Errors
/// A class the model does not know.
pub fn text_samples(
    ds: &TextDataset,
    tokenizer: &WordTokenizer,
    seq_len: usize,
    class_names: &[String],
    what: &str,
) -> Result<Samples> {
    Ok(Samples {
        x: encode_texts(&ds.texts, tokenizer, seq_len)?,
        y: map_labels(&ds.labels, &ds.class_names, class_names, what)?,
        naive: None,
    })
}

/// The texts to evaluate in `root`: the test entries of the split list when there is one
/// (`split`, else `root/split.tsv`), otherwise every file of the class folders. Returns the
/// texts and a description of what they are.
///
/// # Errors
/// A bad folder, split list or file.
pub fn evaluation_texts(root: &Path, split: Option<&Path>) -> Result<(TextDataset, String)> {
    check_folder(root)?;
    let split_file = split.map_or_else(
        || root.join(crate::config::DEFAULT_SPLIT_FILE),
        Path::to_path_buf,
    );
    if split.is_some() || split_file.is_file() {
        let (_, test) = edgeflow_data::load_text_split(root, &split_file)?;
        let what = format!("test split of {}", split_file.display());
        return Ok((test, what));
    }
    let all = edgeflow_data::load_text_folder(root)?;
    Ok((all, format!("every file of {}", root.display())))
}

/// What the vocabulary file holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabFile {
    format: String,
    version: u32,
    /// SHA-256 of the model file this vocabulary belongs to, hex.
    model_sha256: String,
    /// How texts are split: lower-cased runs of alphanumeric characters.
    tokenizer: String,
    /// Token ids per text: the first tokens, padded with 0 at the end.
    sequence_length: usize,
    /// Words in id order: word `i` has id `i + 2` (0 is padding, 1 out of vocabulary).
    words: Vec<String>,
}

/// Where the vocabulary of the model at `model` lives: `MODEL.vocab.json`.
pub fn vocab_path(model: &Path) -> PathBuf {
    let mut name = model.as_os_str().to_os_string();
    name.push(".vocab.json");
    PathBuf::from(name)
}

fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Writes the vocabulary of the model saved at `model` beside it, atomically (a temporary file
/// renamed into place).
///
/// # Errors
/// I/O errors.
pub fn write_vocab(model: &Path, tokenizer: &WordTokenizer, sequence_length: usize) -> Result<()> {
    let doc = VocabFile {
        format: VOCAB_FORMAT.into(),
        version: VOCAB_VERSION,
        model_sha256: file_sha256(model)?,
        tokenizer: "word: lower-case alphanumeric runs".into(),
        sequence_length,
        words: tokenizer.words().to_vec(),
    };
    let path = vocab_path(model);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(&mut tmp, &doc)?;
        tmp.write_all(b"\n")?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    };
    write().with_context(|| format!("cannot write the vocabulary file {}", path.display()))
}

/// The tokenizer of the model at `model_path`, read from its vocabulary file and checked
/// against the model.
///
/// # Errors
/// [`BadInput`] when the file is missing, malformed, belongs to another model file or does not
/// fit the model's input length or embedding size.
pub fn read_vocab(model_path: &Path, model: &Sequential) -> Result<WordTokenizer> {
    let path = vocab_path(model_path);
    let bad = |msg: String| anyhow::Error::from(BadInput(format!("{}: {msg}", path.display())));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BadInput(format!(
                "{} takes token ids, but its vocabulary file {} is missing; `edgeflow train` \
                 writes it next to the model: keep the two files together",
                model_path.display(),
                path.display()
            ))
            .into())
        }
        Err(e) => return Err(bad(format!("cannot read: {e}"))),
    };
    let doc: VocabFile = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not an edgeflow vocabulary file: {e}")))?;
    if doc.format != VOCAB_FORMAT || doc.version != VOCAB_VERSION {
        return Err(bad(format!(
            "format {:?} version {}, expected {VOCAB_FORMAT:?} version {VOCAB_VERSION}",
            doc.format, doc.version
        )));
    }
    if doc.model_sha256 != file_sha256(model_path)? {
        return Err(bad(format!(
            "written for another model file than {}; retrain, or put the model's own \
             vocabulary file beside it",
            model_path.display()
        )));
    }
    let tokenizer = WordTokenizer::from_words(doc.words);
    if model.input_shape() != [doc.sequence_length] {
        return Err(bad(format!(
            "sequence_length {} does not match the model input {:?}",
            doc.sequence_length,
            model.input_shape()
        )));
    }
    check_embedding(model, &tokenizer).map_err(|e| bad(e.to_string()))?;
    Ok(tokenizer)
}

/// Refuses a model whose first `Embedding` has fewer rows than the tokenizer has ids.
///
/// # Errors
/// The sizes, named.
pub fn check_embedding(model: &Sequential, tokenizer: &WordTokenizer) -> Result<()> {
    let arch = model.architecture();
    let Some(LayerConfig::Embedding(e)) = arch.layers.first() else {
        anyhow::bail!("text_folder data needs a model that starts with an Embedding layer");
    };
    if e.input_dim < tokenizer.vocab_size() {
        anyhow::bail!(
            "the Embedding layer has input_dim {} but the vocabulary has {} ids (padding and \
             OOV included); set input_dim to at least max_tokens",
            e.input_dim,
            tokenizer.vocab_size()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_path_appends_to_the_model_name() {
        assert_eq!(
            vocab_path(Path::new("out/spam.efm")),
            PathBuf::from("out/spam.efm.vocab.json")
        );
    }

    #[test]
    fn encoded_texts_are_f32_ids() {
        let tok = WordTokenizer::fit(&["a b a"], 10, 1).unwrap();
        let x = encode_texts(&["b a zz", ""], &tok, 4).unwrap();
        assert_eq!(x.dims(), &[2, 4]);
        assert_eq!(
            x.to_vec_f32().unwrap(),
            vec![3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
    }
}
