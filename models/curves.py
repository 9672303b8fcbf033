"""Training curves of every trained model in one PNG: models/training_curves.png."""
from __future__ import annotations

from core.artifacts import read_json
from core.run import Run


def plot_training_curves(run: Run) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = {m: run.model_dir(m) / "fold0" / "history.json" for m in run.config.models}
    histories = {n: read_json(p, f"retrain the fold: rm -r {p.parent} && make train MODELS={n}")
                 for n, p in histories.items() if p.exists()}
    histories = {n: h for n, h in histories.items() if h.get("loss")}
    if not histories:
        return
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for name, h in histories.items():
        for ax, metric in zip(axes, ("loss", "auc")):
            if metric not in h:                 # trained before AUC was recorded: accuracy then
                continue
            epochs = range(1, len(h[metric]) + 1)
            line, = ax.plot(epochs, h[f"val_{metric}"], label=name)
            ax.plot(epochs, h[metric], "--", color=line.get_color(), alpha=0.6)
    for ax, metric in zip(axes, ("loss", "auc")):
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch, fold 0 (solid: validation, dashed: train)")
        ax.grid(alpha=0.3)
    # one entry a model, beside the plots: inside them it hid the curves
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    out = run.workspace / "models" / "training_curves.png"
    tmp = out.with_name(".training_curves.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
