//! Text folders for the `text_folder` format: the word tokenizer fitted on the training split,
//! texts encoded to token ids, and the vocabulary that `train` stores in the model file's
//! metadata, so that `evaluate` and `predict` turn text into the same ids from the model file
//! alone.

use std::path::Path;

use anyhow::{Context, Result};
use edgeflow_data::{TextDataset, WordTokenizer};
use edgeflow_nn::{LayerConfig, Sequential, Vocabulary};
use edgeflow_tensor::Tensor;

use crate::config::TextSource;
use crate::samples::{map_labels, Samples};
use crate::BadInput;

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
    let Some(what) = crate::dataset::not_a_folder(root) else {
        return Ok(());
    };
    Err(BadInput(format!(
        "text folder {} {what}; expected <class>/<text files> with a \
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
        if test.is_empty() {
            return Err(BadInput(format!(
                "{} lists no `test` entries: there is nothing to evaluate",
                split_file.display()
            ))
            .into());
        }
        let what = format!("test split of {}", split_file.display());
        return Ok((test, what));
    }
    let all = edgeflow_data::load_text_folder(root)?;
    Ok((all, format!("every file of {}", root.display())))
}

/// How [`WordTokenizer`] splits texts, as written in the model file.
const TOKENIZER: &str = "word: lower-case alphanumeric runs";

/// The vocabulary to store in the model file's metadata.
pub fn vocabulary(tokenizer: &WordTokenizer, sequence_length: usize) -> Vocabulary {
    Vocabulary {
        tokenizer: TOKENIZER.into(),
        sequence_length,
        words: tokenizer.words().to_vec(),
    }
}

/// The tokenizer of the model read from `model_path`, from the vocabulary in its metadata,
/// checked against the model.
///
/// # Errors
/// [`BadInput`] when the model holds no vocabulary, or one of another tokenizer, or one that
/// does not fit its input length or embedding size.
pub fn tokenizer_of(model_path: &Path, model: &Sequential) -> Result<WordTokenizer> {
    let bad =
        |msg: String| anyhow::Error::from(BadInput(format!("{}: {msg}", model_path.display())));
    let Some(vocab) = &model.metadata.vocabulary else {
        return Err(bad(
            "the model takes token ids but holds no vocabulary to make them from text; train \
             it with `edgeflow train` on a text_folder config"
                .into(),
        ));
    };
    if vocab.tokenizer != TOKENIZER {
        return Err(bad(format!(
            "the vocabulary is for tokenizer {:?}; this edgeflow splits texts as {TOKENIZER:?}",
            vocab.tokenizer
        )));
    }
    if model.input_shape() != [vocab.sequence_length] {
        return Err(bad(format!(
            "the vocabulary's sequence_length {} does not match the model input {:?}",
            vocab.sequence_length,
            model.input_shape()
        )));
    }
    let tokenizer = WordTokenizer::from_words(vocab.words.clone());
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
