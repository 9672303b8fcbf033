"""The full MiniLM fine-tuning recipe in PyTorch + transformers: an outside reference for bench_finetune.

    <its venv>/bin/python tests/benchmarks/torch_reference.py --model DIR --data data.json --out held.npy
                                                              --recipe '{"module_lr": 5e-5, ...}'

Runs in the bench's own venv (torch, transformers), never the pipeline's: it imports nothing of the project.
The same recipe as the pipeline's `minilm-tuned` (models/networks.top_model, from token ids): all-MiniLM-L6-v2
from the weights our minilm builder reads, its dropout on in training, mean pooling over real tokens +
L2 norm, a dense head (ReLU layers with dropout, one sigmoid), Adam at module_lr decaying linearly to 0
for the encoder and at lr for the head, the global gradient norm clipped, length-bucketed batches in a
new order every epoch, and the held-out predictions of the epoch with the best validation loss (early
stopping with the best weights restored). Prints one JSON line: seconds and validation losses.
With --speed ROWS it only times training steps: one epoch over the first ROWS "fit" rows after a two-batch
warm-up, in float32 or (--autocast) under torch.autocast(device_type="cpu", dtype=torch.bfloat16), and prints
{"wall": s, "cpu": s, "examples": ROWS}.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer


class Classifier(torch.nn.Module):
    def __init__(self, model_dir: str, head: list[int], dropout: float):
        super().__init__()
        self.encoder = AutoModel.from_pretrained(model_dir)
        layers, width = [], self.encoder.config.hidden_size
        for units in head:
            layers += [torch.nn.Linear(width, units), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
            width = units
        self.head = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
        for layer in self.head:
            if isinstance(layer, torch.nn.Linear):      # Keras' glorot-uniform kernels, zero biases
                torch.nn.init.xavier_uniform_(layer.weight)
                torch.nn.init.zeros_(layer.bias)

    def forward(self, ids, mask):
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return self.head(torch.nn.functional.normalize(pooled, dim=1)).squeeze(-1)


def batches(ids: list[list[int]], order: np.ndarray, size: int):
    for start in range(0, len(order), size):
        rows = order[start:start + size]
        longest = max(len(ids[r]) for r in rows)
        tokens = torch.zeros((len(rows), longest), dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, r in enumerate(rows):
            tokens[i, :len(ids[r])] = torch.tensor(ids[r])
            mask[i, :len(ids[r])] = 1
        yield rows, tokens, mask


def predict(model, ids, size: int) -> np.ndarray:
    model.eval()
    order = np.argsort([len(i) for i in ids], kind="stable")
    out = np.empty(len(ids), np.float32)
    with torch.no_grad():
        for rows, tokens, mask in batches(ids, order, size):
            out[rows] = torch.sigmoid(model(tokens, mask)).numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--speed", type=int, help="only time one epoch of training steps over this many rows")
    ap.add_argument("--autocast", action="store_true", help="with --speed: under torch.autocast bfloat16")
    args = ap.parse_args()
    recipe = json.loads(args.recipe)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(recipe["seed"])
    rng = np.random.default_rng(recipe["seed"])
    data = json.load(open(args.data))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    ids = {part: tokenizer(d["texts"], truncation=True, max_length=recipe["max_length"])["input_ids"]
           for part, d in data.items()}
    y = {part: np.asarray(d["labels"], np.float32) for part, d in data.items()}
    model = Classifier(args.model, recipe["head"], recipe["dropout"])
    size, epochs = recipe["batch_size"], recipe["epochs"]
    lengths = np.array([len(i) for i in ids["fit"]])
    sorted_rows = np.lexsort((rng.random(len(lengths)), lengths))       # similar lengths batched together
    fixed = [sorted_rows[s:s + size] for s in range(0, len(sorted_rows), size)]
    total = epochs * len(fixed)
    encoder_opt = torch.optim.Adam(model.encoder.parameters(), lr=recipe["module_lr"], eps=1e-7)
    head_opt = torch.optim.Adam(model.head.parameters(), lr=recipe["lr"], eps=1e-7)
    decay = torch.optim.lr_scheduler.LambdaLR(encoder_opt, lambda step: max(0.0, 1 - step / total))
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step(rows):
        _, tokens, mask = next(batches(ids["fit"], rows, len(rows)))
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=args.autocast):
            loss = loss_fn(model(tokens, mask).float(), torch.from_numpy(y["fit"][rows]))
        encoder_opt.zero_grad()
        head_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["clipnorm"])
        encoder_opt.step()
        head_opt.step()
        decay.step()

    if args.speed:
        model.train()
        rows = np.arange(min(args.speed, len(lengths)))
        order = rows[np.lexsort((rng.random(len(rows)), lengths[rows]))]
        speed_batches = [order[s:s + size] for s in range(0, len(order), size)]
        for b in speed_batches[:2]:
            step(b)                                               # warm-up: not throughput
        wall, cpu = time.perf_counter(), time.process_time()
        for b in rng.permutation(len(speed_batches)):
            step(speed_batches[b])
        print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                          "examples": len(rows), "torch": torch.__version__, "autocast": args.autocast}))
        return
    start, best, val_losses, held = time.time(), np.inf, [], None
    for _ in range(epochs):
        model.train()
        for b in rng.permutation(len(fixed)):
            step(fixed[b])
        scores = predict(model, ids["held"], 4 * size)
        p = np.clip(scores, 1e-7, 1 - 1e-7)
        val = float(-np.mean(y["held"] * np.log(p) + (1 - y["held"]) * np.log(1 - p)))
        val_losses.append(val)
        if val < best:
            best, held = val, scores
    np.save(args.out, held)
    print(json.dumps({"fit_seconds": time.time() - start, "val_loss": val_losses,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
