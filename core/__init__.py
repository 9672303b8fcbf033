"""The common core every stage imports first: configuration, paths, data, metric, artifacts.

Importing this package is the one place where the environment TensorFlow needs is set,
before any stage imports TensorFlow: tensorflow-hub 0.16 works with Keras 2 only, which
TensorFlow 2.16+ serves through tf-keras when TF_USE_LEGACY_KERAS=1; and TensorFlow's C++
start-up lines stay out of the output unless VERBOSE=1 (core/quiet.py).
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
if os.environ.get("VERBOSE", "").strip() in ("", "0"):
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
