"""BERT's tokenizer in the graph, as tokenizer.json's BertNormalizer + BertPreTokenizer + WordPiece run it.

Shared by the BERT-family encoders built here (MiniLM: [CLS] ... [SEP]; MPNet: <s> ... </s>, RoBERTa's
framing): strings [B] -> ids RaggedTensor [B, (T)] with the start and end tokens, truncated to max_length.
"""
from __future__ import annotations

import core  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf
import tensorflow_text as tf_text

from core.errors import PipelineError

# BertNormalizer(handle_chinese_chars): these code points become words of their own.
CJK = (r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
       r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]")


class WordPiece(tf.Module):
    """strings [B] -> ids [B, (T)]: `start` + the text's word pieces + `end`, at most max_length ids.

    `special`: the added tokens matched verbatim in the raw text (tokenizer.json's added_tokens that are not
    normalized), each becoming its own id; `normalized_special`: those matched in the normalized text (MPNet's
    <unk>: "<UNK>" is it too); `unknown`: WordPiece's token for a word it cannot split.
    """

    def __init__(self, vocab: list[str], max_length: int, special: tuple[str, ...], start: str, end: str,
                 unknown: str, normalized_special: tuple[str, ...] = ()):
        super().__init__(name="wordpiece")
        if max_length < 3:
            raise PipelineError(f"max_length {max_length} leaves no room for text between {start} and {end}; "
                                f"use >= 3")
        missing = [t for t in (*special, *normalized_special, start, end, unknown) if t not in vocab]
        if missing:
            raise PipelineError(f"the vocabulary lacks the special tokens {missing}")
        # Normalisation is done below, so the tokenizer only splits (its own lower-casing applies NFKC).
        # Its word limit counts bytes; the original's counts 100 characters, enforced in long_words_unknown().
        self.tokenizer = tf_text.FastBertTokenizer(vocab=vocab, token_out_type=tf.int64, unknown_token=unknown,
                                                   lower_case_nfd_strip_accents=False, max_bytes_per_word=400)
        self.max_length = max_length
        self.special = {t: vocab.index(t) for t in special}
        self.normalized_special = {t: vocab.index(t) for t in normalized_special}
        self.start, self.end = vocab.index(start), vocab.index(end)

    @staticmethod
    def normalize(texts: tf.Tensor) -> tf.Tensor:
        """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase), in its order."""
        texts = tf.strings.regex_replace(texts, r"[\t\n\r]", " ")
        texts = tf.strings.regex_replace(texts, r"[\p{C}\x{FFFD}]", "")  # control/format chars are dropped
        texts = tf.strings.regex_replace(texts, f"({CJK})", r" \1 ")
        texts = tf.strings.regex_replace(tf_text.normalize_utf8(texts, "NFD"), r"\p{Mn}", "")
        # Lower-casing is per character in the original; ICU would turn a word-final Σ into ς.
        return tf.strings.lower(tf.strings.regex_replace(texts, "Σ", "σ"), encoding="utf-8")

    @staticmethod
    def long_words_unknown(texts: tf.Tensor) -> tf.Tensor:
        """A word (between spaces and punctuation) over 100 characters is unknown, as in the original."""
        rows = tf.where(tf.strings.regex_full_match(texts, r"(?s).*\S{101}.*"))  # cheap filter: rare texts
        gaps = r"[\p{Z}\s]+|[\p{P}!-/:-@\[-`{-~]"  # what the pre-tokenizer splits on
        pieces = tf_text.regex_split(tf.gather_nd(texts, rows), gaps, gaps)  # words and gaps, all kept
        flat = pieces.flat_values
        long = (tf.strings.length(flat, unit="UTF8_CHAR") > 100) & ~tf.strings.regex_full_match(flat, gaps)
        flat = tf.where(long, "x" * 401, flat)  # over the 400-byte limit, so unknown
        fixed = tf.strings.reduce_join(pieces.with_flat_values(flat), axis=-1)
        return tf.tensor_scatter_nd_update(texts, rows, fixed)

    @staticmethod
    def split_off(texts: tf.Tensor, special: dict[str, int], then) -> tf.RaggedTensor:
        """Ids [N, (T)] of texts [N]: each of the `special` tokens found in a text its own id, in place; the
        text between them through `then` (strings [M] -> ids [M, (T)])."""
        if not special:
            return then(texts)
        pattern = "|".join(tf_text_escape(t) for t in special)
        pieces = tf_text.regex_split(texts, pattern, pattern)       # the tokens kept as pieces of their own
        flat = pieces.flat_values
        hits = tf.equal(flat[:, None], tf.constant(list(special), tf.string)[None, :])
        is_special = tf.reduce_any(hits, axis=1)
        special_ids = tf.boolean_mask(tf.gather(tf.constant(list(special.values()), tf.int64),
                                                tf.argmax(tf.cast(hits, tf.int32), axis=1)), is_special)
        specials = tf.RaggedTensor.from_row_lengths(special_ids, tf.cast(is_special, tf.int64))
        words = then(tf.where(is_special, "", flat))
        return pieces.with_flat_values(tf.concat([words, specials], axis=1)).merge_dims(1, 2)

    def __call__(self, texts: tf.Tensor) -> tf.RaggedTensor:
        # The added tokens are matched as the original's: verbatim in the raw text, or (normalized ones) in the
        # normalized text. regex_split stops at a NUL byte; \x01 is another control character normalize() drops.
        texts = tf.strings.regex_replace(texts, r"\x00", "\x01")
        words = lambda t: self.tokenizer.tokenize(self.long_words_unknown(t))      # noqa: E731
        ids = self.split_off(texts, self.special, lambda raw: self.split_off(
            self.normalize(raw), self.normalized_special, words))
        ids = ids[:, :self.max_length - 2]
        batch = tf.shape(ids.row_lengths())[0]
        start = tf.fill([batch, 1], tf.constant(self.start, tf.int64))
        end = tf.fill([batch, 1], tf.constant(self.end, tf.int64))
        return tf.concat([start, ids, end], axis=1)


def tf_text_escape(token: str) -> str:
    """A literal token as an RE2 pattern."""
    return "".join("\\" + c if c in r"\^$.|?*+()[]{}" else c for c in token)
