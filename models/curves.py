"""Training curves of every trained model in one PNG: models/training_curves.png."""
from __future__ import annotations

from core.artifacts import read_json
from core.config import Config
from core.paths import model_dir, workspace


def plot_training_curves(cfg: Config) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = {m.name: model_dir(m.name) / "fold0" / "history.json" for m in cfg.models.values()}
    histories = {n: read_json(p) for n, p in histories.items() if p.exists()}
    histories = {n: h for n, h in histories.items() if h.get("loss")}
    if not histories:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, h in histories.items():
        for ax, metric in zip(axes, ("loss", "accuracy")):
            line, = ax.plot(range(1, len(h[metric]) + 1), h[f"val_{metric}"], label=f"{name} (validation)")
            ax.plot(range(1, len(h[metric]) + 1), h[metric], "--", color=line.get_color(), alpha=0.6,
                    label=f"{name} (train)")
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch, fold 0")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = workspace() / "models" / "training_curves.png"
    tmp = out.with_name(".training_curves.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
