"""TF-IDF: word + char n-gram TF-IDF -> logistic regression, fitted per fold like the networks: the classic reference.

Sized for the full competition (a million training texts per fold): the vocabularies are chosen on at most
VOCABULARY_ROWS of the training texts (the most frequent n-grams of a large sample are those of all of
them; counting every char n-gram of a million texts is what costs memory), the texts are then transformed
in chunks, and the features are float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.schema import setting
from models.kinds.base import NO_DEVICES, Kind, Options

VOCABULARY_ROWS = 250_000       # texts the vocabularies (and idf weights) are fitted on, at most
CHUNK = 100_000                 # texts transformed at a time


@dataclass(frozen=True, kw_only=True)
class TfidfOptions(Options):
    C: float = setting(4.0, above=0)                      # inverse regularization of the logistic regression
    max_features: int = setting(200000, at_least=1)       # vocabulary size per vectorizer


class Tfidf(Kind):
    description = "TF-IDF + logistic regression"
    Options = TfidfOptions

    def module_paths(self):
        return []

    def device(self):
        return NO_DEVICES

    def fit_predict(self, fold):
        import joblib
        t = self.train
        fitted, (held, test) = fit_predict(self.options, t.texts[fold.fit_rows], t.target[fold.fit_rows],
                                           [t.texts[fold.held_rows], self.test.texts])
        joblib.dump(fitted, fold.folder / "model.joblib")
        return held, test, {}

    def predict_test(self, fold):
        import joblib
        *vectorizers, classifier = joblib.load(fold.folder / "model.joblib")
        return classifier.predict_proba(features(vectorizers, self.test.texts))[:, 1].astype(np.float32)


def vectorizers(options: TfidfOptions) -> list:
    from sklearn.feature_extraction.text import TfidfVectorizer
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=options.max_features, sublinear_tf=True,
                            strip_accents="unicode", token_pattern=r"(?u)\b\w+\b|[^\w\s]", dtype=np.float32)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=options.max_features,
                            sublinear_tf=True, dtype=np.float32)
    return [words, chars]


def features(fitted: list, texts: np.ndarray):
    """The texts' TF-IDF rows, word and char side by side, built a chunk at a time (CSR, float32)."""
    from scipy.sparse import hstack, vstack
    chunks = [hstack([v.transform(texts[i:i + CHUNK]) for v in fitted]).tocsr() for i in range(0, len(texts), CHUNK)]
    return vstack(chunks).tocsr() if len(chunks) > 1 else chunks[0]


def fit_predict(options: TfidfOptions, train_texts: np.ndarray, train_y: np.ndarray, predict_sets: list[np.ndarray]):
    """Fit on the training folds only (the vocabulary too); return the fitted parts and predictions for each set."""
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(options.seed)
    sample = train_texts if len(train_texts) <= VOCABULARY_ROWS else \
        train_texts[np.sort(rng.choice(len(train_texts), VOCABULARY_ROWS, replace=False))]
    fitted = [v.fit(sample) for v in vectorizers(options)]
    classifier = LogisticRegression(C=options.C, solver="liblinear", max_iter=1000, random_state=options.seed)
    classifier.fit(features(fitted, train_texts), train_y)
    predictions = [classifier.predict_proba(features(fitted, t))[:, 1].astype(np.float32) for t in predict_sets]
    return (*fitted, classifier), predictions
