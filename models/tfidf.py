"""The classic reference: word + char n-gram TF-IDF -> logistic regression, fitted per fold like the hub models.

Sized for the full competition (a million training texts per fold): the vocabularies are chosen on at most
VOCABULARY_ROWS of the training texts (the most frequent n-grams of a large sample are those of all of
them; counting every char n-gram of a million texts is what costs memory), the texts are then transformed
in chunks, and the features are float32.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import hstack, vstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from core.config import ModelSpec

VOCABULARY_ROWS = 250_000       # texts the vocabularies (and idf weights) are fitted on, at most
CHUNK = 100_000                 # texts transformed at a time


def vectorizers(spec: ModelSpec) -> list[TfidfVectorizer]:
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=spec.max_features, sublinear_tf=True,
                            strip_accents="unicode", token_pattern=r"(?u)\b\w+\b|[^\w\s]", dtype=np.float32)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=spec.max_features,
                            sublinear_tf=True, dtype=np.float32)
    return [words, chars]


def features(fitted: list[TfidfVectorizer], texts: np.ndarray):
    """The texts' TF-IDF rows, word and char side by side, built a chunk at a time (CSR, float32)."""
    chunks = [hstack([v.transform(texts[i:i + CHUNK]) for v in fitted]).tocsr() for i in range(0, len(texts), CHUNK)]
    return vstack(chunks).tocsr() if len(chunks) > 1 else chunks[0]


def fit_predict(spec: ModelSpec, train_texts: np.ndarray, train_y: np.ndarray, predict_sets: list[np.ndarray]):
    """Fit on the training folds only (the vocabulary too); return the fitted parts and predictions for each set."""
    rng = np.random.default_rng(spec.seed)
    sample = train_texts if len(train_texts) <= VOCABULARY_ROWS else \
        train_texts[np.sort(rng.choice(len(train_texts), VOCABULARY_ROWS, replace=False))]
    fitted = [v.fit(sample) for v in vectorizers(spec)]
    classifier = LogisticRegression(C=spec.C, solver="liblinear", max_iter=1000, random_state=spec.seed)
    classifier.fit(features(fitted, train_texts), train_y)
    predictions = [classifier.predict_proba(features(fitted, t))[:, 1].astype(np.float32) for t in predict_sets]
    return (*fitted, classifier), predictions
