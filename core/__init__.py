"""The common core every stage imports first: configuration, paths, data, metric, artifacts.

Importing this package is the one place where the environment TensorFlow needs is set,
before any stage imports TensorFlow: tensorflow-hub 0.16 works with Keras 2 only, which
TensorFlow 2.16+ serves through tf-keras when TF_USE_LEGACY_KERAS=1.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep C++ start-up chatter out of the logs
