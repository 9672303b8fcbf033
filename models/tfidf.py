"""The classic reference: word + char n-gram TF-IDF -> logistic regression, fitted per fold like the hub models."""
from __future__ import annotations

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from core.config import ModelSpec


def fit_predict(spec: ModelSpec, train_texts: np.ndarray, train_y: np.ndarray, predict_sets: list[np.ndarray]):
    """Fit on the training folds only (the vocabulary too); return the fitted parts and predictions for each set."""
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=spec.max_features, sublinear_tf=True,
                            strip_accents="unicode", token_pattern=r"(?u)\b\w+\b|[^\w\s]")
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=spec.max_features,
                            sublinear_tf=True)
    features = hstack([words.fit_transform(train_texts), chars.fit_transform(train_texts)]).tocsr()
    classifier = LogisticRegression(C=spec.C, solver="liblinear", max_iter=1000, random_state=spec.seed)
    classifier.fit(features, train_y)
    predictions = [classifier.predict_proba(hstack([words.transform(t), chars.transform(t)]).tocsr())[:, 1]
                   .astype(np.float32) for t in predict_sets]
    return (words, chars, classifier), predictions
