//! Tokenizers turning text into fixed-length id sequences.
//!
//! Conventions shared by both tokenizers:
//! - id 0 is padding ([`PAD_ID`]); sequences shorter than `seq_len` are padded **at the end**;
//! - longer sequences are truncated, keeping the **first** `seq_len` tokens;
//! - batch encoders return a flat `Vec<u32>` laid out `[batch, seq_len]`.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::{DataError, Result};

/// Padding id of both tokenizers.
pub const PAD_ID: u32 = 0;
/// Out-of-vocabulary id of [`WordTokenizer`].
pub const OOV_ID: u32 = 1;

/// Calls `f` on each token of `text`: maximal runs of alphanumeric characters (Unicode
/// `char::is_alphanumeric`), lower-cased. `f` returns false to stop early.
fn for_each_token(text: &str, mut f: impl FnMut(&str) -> bool) {
    let mut buf = String::new();
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            buf.extend(ch.to_lowercase());
        } else if !buf.is_empty() {
            if !f(&buf) {
                return;
            }
            buf.clear();
        }
    }
    if !buf.is_empty() {
        f(&buf);
    }
}

/// Splits `text` into lower-case alphanumeric tokens, the rule [`WordTokenizer`] uses.
pub fn word_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(text, |t| {
        out.push(t.to_string());
        true
    });
    out
}

/// Word-level tokenizer with a vocabulary of the most frequent training tokens.
///
/// Tokens are as in [`word_tokens`]. Ids: 0 = padding, 1 = out-of-vocabulary, then the
/// vocabulary from id 2 on, most frequent first; equal counts are ordered by the token's
/// byte order, so fitting is deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordTokenizer {
    /// Vocabulary words; word `i` has id `i + 2`.
    words: Vec<String>,
    index: HashMap<String, u32>,
}

impl WordTokenizer {
    /// Fits a vocabulary on `texts`.
    ///
    /// `max_vocab` is the total number of ids **including** the padding and OOV ids (like
    /// Keras `TextVectorization(max_tokens=...)`), so at most `max_vocab - 2` words are kept;
    /// tokens seen fewer than `min_count` times are dropped.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] if `max_vocab < 2`.
    pub fn fit<S: AsRef<str> + Sync>(
        texts: &[S],
        max_vocab: usize,
        min_count: usize,
    ) -> Result<Self> {
        if max_vocab < 2 {
            return Err(DataError::invalid(
                "max_vocab",
                format!("{max_vocab} < 2 (pad + OOV)"),
            ));
        }
        let counts = texts
            .par_iter()
            .fold(HashMap::<String, u64>::new, |mut m, t| {
                for_each_token(t.as_ref(), |tok| {
                    match m.get_mut(tok) {
                        Some(c) => *c += 1,
                        None => {
                            m.insert(tok.to_string(), 1);
                        }
                    }
                    true
                });
                m
            })
            .reduce(HashMap::new, merge_counts);

        let mut ranked: Vec<(String, u64)> = counts
            .into_iter()
            .filter(|&(_, c)| c >= min_count as u64)
            .collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(max_vocab - 2);
        Ok(Self::from_words(
            ranked.into_iter().map(|(w, _)| w).collect(),
        ))
    }

    /// Builds a tokenizer from an ordered word list (word `i` gets id `i + 2`), e.g. one saved
    /// from [`WordTokenizer::words`]. Later duplicates are ignored for lookup.
    pub fn from_words(words: Vec<String>) -> Self {
        let mut index = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            // Vocabulary sizes are far below u32::MAX.
            index.entry(w.clone()).or_insert(i as u32 + 2);
        }
        Self { words, index }
    }

    /// Number of ids, padding and OOV included (the embedding table size).
    pub fn vocab_size(&self) -> usize {
        self.words.len() + 2
    }

    /// The vocabulary words in id order (word `i` has id `i + 2`).
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Id of `token` (already lower-case), or [`OOV_ID`].
    pub fn token_id(&self, token: &str) -> u32 {
        self.index.get(token).copied().unwrap_or(OOV_ID)
    }

    /// Word of `id`; `None` for padding, OOV and unknown ids.
    pub fn word(&self, id: u32) -> Option<&str> {
        let i = (id as usize).checked_sub(2)?;
        self.words.get(i).map(String::as_str)
    }

    /// Encodes `text` to exactly `seq_len` ids: the first `seq_len` tokens, padded with 0 at
    /// the end.
    pub fn encode(&self, text: &str, seq_len: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(seq_len);
        if seq_len > 0 {
            for_each_token(text, |t| {
                out.push(self.token_id(t));
                out.len() < seq_len
            });
        }
        out.resize(seq_len, PAD_ID);
        out
    }

    /// Encodes many texts in parallel into a flat `[texts.len(), seq_len]` buffer.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S], seq_len: usize) -> Vec<u32> {
        texts
            .par_iter()
            .flat_map_iter(|t| self.encode(t.as_ref(), seq_len))
            .collect()
    }
}

fn merge_counts(mut a: HashMap<String, u64>, b: HashMap<String, u64>) -> HashMap<String, u64> {
    if a.len() < b.len() {
        return merge_counts(b, a);
    }
    for (k, v) in b {
        *a.entry(k).or_insert(0) += v;
    }
    a
}

/// Byte-level tokenizer: byte `b` of the UTF-8 text has id `b + 1`; 0 is padding.
/// The vocabulary size is 257 and nothing is out of vocabulary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    /// Offset added to each byte (ids 1..=256).
    pub const OFFSET: u32 = 1;

    /// Number of ids, padding included (257).
    pub fn vocab_size(&self) -> usize {
        256 + Self::OFFSET as usize
    }

    /// Encodes to exactly `seq_len` ids: the first `seq_len` bytes, padded with 0 at the end.
    pub fn encode(&self, text: &[u8], seq_len: usize) -> Vec<u32> {
        let mut out: Vec<u32> = text
            .iter()
            .take(seq_len)
            .map(|&b| u32::from(b) + Self::OFFSET)
            .collect();
        out.resize(seq_len, PAD_ID);
        out
    }

    /// Encodes many texts in parallel into a flat `[texts.len(), seq_len]` buffer.
    pub fn encode_batch<S: AsRef<[u8]> + Sync>(&self, texts: &[S], seq_len: usize) -> Vec<u32> {
        texts
            .par_iter()
            .flat_map_iter(|t| self.encode(t.as_ref(), seq_len))
            .collect()
    }

    /// Turns ids back into bytes, dropping padding and ids outside 1..=256.
    pub fn decode(&self, ids: &[u32]) -> Vec<u8> {
        ids.iter()
            .filter_map(|&id| {
                id.checked_sub(Self::OFFSET)
                    .and_then(|b| u8::try_from(b).ok())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lowercase_alphanumeric_runs() {
        assert_eq!(
            word_tokens("Hello, WORLD! it's 42x"),
            vec!["hello", "world", "it", "s", "42x"]
        );
        assert_eq!(word_tokens("Ünïcode—Straße"), vec!["ünïcode", "straße"]);
        assert!(word_tokens(" ,;- ").is_empty());
    }

    #[test]
    fn vocabulary_order_and_ties() {
        let texts = ["b a c", "a b", "a d"];
        // counts: a 3, b 2, c 1, d 1 -> c before d on the tie.
        let tok = WordTokenizer::fit(&texts, 10, 1).unwrap();
        assert_eq!(tok.words(), &["a", "b", "c", "d"]);
        assert_eq!(tok.vocab_size(), 6);
        let small = WordTokenizer::fit(&texts, 4, 1).unwrap();
        assert_eq!(small.words(), &["a", "b"]);
        let frequent = WordTokenizer::fit(&texts, 10, 2).unwrap();
        assert_eq!(frequent.words(), &["a", "b"]);
        assert!(WordTokenizer::fit(&texts, 1, 1).is_err());
        assert_eq!(tok.word(2), Some("a"));
        assert_eq!(tok.word(1), None);
    }

    #[test]
    fn encode_truncates_first_and_pads_end() {
        let tok = WordTokenizer::fit(&["x y z"], 10, 1).unwrap();
        // x=2, y=3, z=4 (tie broken alphabetically)
        assert_eq!(tok.encode("X y Q", 5), vec![2, 3, OOV_ID, 0, 0]);
        assert_eq!(tok.encode("z y x z", 2), vec![4, 3]);
        assert_eq!(tok.encode("anything", 0), Vec::<u32>::new());
        assert_eq!(tok.encode_batch(&["x", "y z x"], 2), vec![2, 0, 3, 4]);
    }

    #[test]
    fn byte_tokenizer() {
        let t = ByteTokenizer;
        assert_eq!(t.vocab_size(), 257);
        assert_eq!(t.encode(b"\x00AB", 5), vec![1, 66, 67, 0, 0]);
        assert_eq!(t.encode("é".as_bytes(), 1), vec![0xC3 + 1]);
        assert_eq!(t.decode(&[66, 67, 0, 999]), b"AB".to_vec());
        assert_eq!(t.encode_batch(&["a", "bc"], 2), vec![98, 0, 99, 100]);
    }
}
