"""One self-contained HTML page: the leaderboard, what each blend submits, and every figure, for reading offline.

    python -m submit.report      (make report) -> submit/report.html

Sections: the leaderboard (with public-leaderboard places when a downloaded leaderboard is in
submit/public-leaderboard/); for each blend its thresholds (OOF and stable), its OOF confusion counts at
the submitted threshold, the test set's predicted positive rate against train's, and its members' weights
(ensembles/<blend>/weights.json); each model's and blend's score fold by fold (nested, from metrics.json);
the correlation of the members' OOF predictions; then the figures the stages drew (models/training_curves.png,
models/*/*.png, ensembles/*/*.png). Figures are embedded as base64 data URIs and the page links nothing outside
itself, so it can be mailed or opened anywhere.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.artifacts import read_json, write_text
from core.cli import entry_point
from core.config import Config
from core.data import load_competition
from core.errors import PipelineError
from core.results import Result, all_results, rebuild_hint
from core.run import Run
from submit import leaderboard
from submit.leaderboard import _num

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222;
line-height:1.4}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:14px;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right;white-space:nowrap}th{background:#f3f3f3;text-align:center;white-space:normal;min-width:4em}td.name,td.text{text-align:left}
td.note{text-align:left;white-space:normal;max-width:28em;color:#a33}tbody tr:nth-child(even){background:#fafafa}
.wide{overflow-x:auto}.figures{display:flex;flex-wrap:wrap;gap:0 1.5em}
.figures figure{flex:1 1 440px}.figures figure:first-child{flex-basis:100%}figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}
figcaption,.note{color:#555;font-size:13px}nav a{margin-right:1em}"""
TEXT_COLUMNS = {"kind", "name", "blend", "method", "member", "commit", "public place"}


@dataclass(frozen=True)
class Data:
    """What the tables and figures are computed from: the labels and every finished, readable result."""
    cfg: Config
    y: np.ndarray | None                    # train.csv's labels
    n_test: int | None
    results: list[Result]                   # schema-checked models and blends


def gather(run: Run) -> Data:
    try:
        train, test = load_competition(run)
        y, n_test = train.target.astype(np.int64), len(test)
    except PipelineError:                   # the report still shows what the metrics files say, nothing of test.npy
        y, n_test, test = None, None, None
    results = []
    for r in all_results(run):
        try:
            r.check()
            if test is not None:
                r.test_scores(test)         # none that predicts another test set
            results.append(r)
        except PipelineError:
            continue                        # the leaderboard's note says why
    return Data(run.config, y, n_test, results)


# ---- tables ---------------------------------------------------------------------------------------------------

def html_table(header: list[str], rows: list[list[str]], empty: str = "nothing yet") -> str:
    if not rows:
        return f"<p>{html.escape(empty)}</p>"

    def cell(h, c):
        kind = "note" if h == "note" else "name" if h.lower() in TEXT_COLUMNS else "num"
        return f'<td class="{kind}">{html.escape(c)}</td>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(h, c) for h, c in zip(header, r)) + "</tr>" for r in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def board_table(rows: list[leaderboard.Row], metric) -> str:
    header = leaderboard.header(metric)
    cells = [leaderboard.cells(r) for r in rows]
    used = [j for j, h in enumerate(header) if h in ("kind", "name") or any(c[j] for c in cells)]  # no empty columns
    return html_table([header[j] for j in used], [[c[j] for j in used] for c in cells],
                      "Nothing trained yet: run make train ensemble.")


def blend_rows(data: Data) -> list[list[str]]:
    """Per blend: thresholds, OOF confusion counts at the submitted threshold, predicted positive rates."""
    rows = []
    for r in (r for r in data.results if r.kind == "blend"):
        stable = (r.metrics.get("stable_threshold") or {}).get("threshold")
        row = [r.name, r.metrics.get("method", ""), _num(r.threshold, 6), _num(stable, 6)]
        if r.threshold is None or data.y is None:
            rows.append(row + [""] * 9)
            continue
        oof, test = r.scores("oof", len(data.y)), r.scores("test", data.n_test)
        tp, fp, fn, tn = confusion(data.y, oof, r.threshold)
        rows.append(row + [f"{tp:,}", f"{fp:,}", f"{fn:,}", f"{tn:,}", _num(tp / max(tp + fp, 1)),
                           _num(tp / max(tp + fn, 1)),
                           _pct((test >= r.threshold).mean()), _pct(data.y.mean())])
    return rows


BLEND_HEADER = ["blend", "method", "OOF threshold", "stable threshold", "TP", "FP", "FN", "TN", "precision",
                "recall", "test predicted positive", "train positive"]


def confusion(y: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """TP, FP, FN, TN of predicting positive where score >= threshold."""
    predicted, actual = scores >= threshold, y.astype(bool)
    return (int(np.sum(predicted & actual)), int(np.sum(predicted & ~actual)), int(np.sum(~predicted & actual)),
            int(np.sum(~predicted & ~actual)))


def weight_table(data: Data) -> str:
    """Members down, blends across: each blend's weight of each member (weights.json's by_member)."""
    weights = {}
    for r in (r for r in data.results if r.kind == "blend"):
        path = r.folder / "weights.json"
        if path.exists():
            weights[r.name] = read_json(path, rebuild_hint("blend", r.name)).get("by_member", {})
    members = list(dict.fromkeys(m for w in weights.values() for m in w))
    rows = [[m] + [_num(w.get(m), 3) if m in w else "" for w in weights.values()] for m in members]
    note = ('<p class="note">Stacking weights are the mean logistic-regression coefficients of the fold '
            "stackers (on the members' logits), not shares; the others sum to 1.</p>"
            if any(r.metrics.get("method") == "stacking" for r in data.results) else "")
    return html_table(["member", *weights], rows, "No blend has weights yet.") + note


def spread_rows(data: Data, order: list[str]) -> tuple[list[str], list[list[str]]]:
    """Each result's nested score fold by fold, with their mean, spread and range."""
    by_name = {r.name: r for r in data.results}
    results = [by_name[n] for n in order if n in by_name]
    k = max((len(_per_fold(r)) for r in results), default=0)
    rows = []
    for r in results:
        scores = _per_fold(r)
        cells = [_num(s) for s in scores] + [""] * (k - len(scores))
        rows.append([r.kind, r.name, *cells, _num(np.mean(scores)), _num(np.std(scores)),
                     _num(max(scores) - min(scores))] if scores else [r.kind, r.name] + [""] * (k + 3))
    return ["kind", "name", *(f"fold {f}" for f in range(k)), "mean", "std", "max - min"], rows


def _per_fold(r: Result) -> list[float]:
    return [float(f["score"]) for f in (r.metrics.get("nested") or {}).get("per_fold", [])]


# ---- figures drawn here ----------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def spread_figure(data: Data, order: list[str]) -> bytes | None:
    """Each model's and blend's per-fold nested scores as dots on one line, best at the top."""
    by_name = {r.name: r for r in data.results}
    results = [by_name[n] for n in order if n in by_name and _per_fold(by_name[n])]
    if not results:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.34 * len(results)))
    for i, r in enumerate(reversed(results)):
        scores = _per_fold(r)
        colour = "tab:orange" if r.kind == "blend" else "tab:blue"
        ax.plot([min(scores), max(scores)], [i, i], color=colour, alpha=0.35, linewidth=3)
        ax.scatter(scores, [i] * len(scores), color=colour, s=18, zorder=3)
        ax.scatter([np.mean(scores)], [i], color="black", marker="|", s=200, zorder=4)
    ax.set_yticks(range(len(results)), [f"{r.name} ({r.kind})" for r in reversed(results)], fontsize=9)
    ax.set(xlabel=f"nested {data.cfg.metric.label} of each fold (dots; bar: their mean)",
           title="Score fold by fold: models blue, blends orange")
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def correlation_figure(data: Data) -> bytes | None:
    """Pearson correlation of the blend members' OOF predictions."""
    members = list(dict.fromkeys(m for r in data.results if r.kind == "blend" for m in r.members))
    models = {r.name: r for r in data.results if r.kind == "model"}
    members = [m for m in members if m in models] or list(models)
    if data.y is None or len(members) < 2:
        return None
    oof = np.stack([models[m].scores("oof", len(data.y)) for m in members])
    corr = np.corrcoef(oof)
    plt = _pyplot()
    size = 1.6 + 0.75 * len(members)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(corr, cmap="viridis", vmin=min(0.0, float(corr.min())), vmax=1.0)
    for i in range(len(members)):
        for j in range(len(members)):
            ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=9,
                    color="black" if corr[i, j] > 0.6 else "white")
    ax.set_xticks(range(len(members)), members, rotation=40, ha="right", fontsize=9)
    ax.set_yticks(range(len(members)), members, fontsize=9)
    ax.set_title("Correlation of the members' OOF predictions (Pearson)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return png(fig)


def image_html(data: bytes, caption: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def figures(root: Path) -> list[Path]:
    found = [root / "models" / "training_curves.png"]
    found += sorted((root / "models").glob("*/*.png")) + sorted((root / "ensembles").glob("*/*.png"))
    return [p for p in dict.fromkeys(found) if p.is_file()]


def figure_html(path: Path, root: Path) -> str:
    return image_html(path.read_bytes(), path.relative_to(root).as_posix())


# ---- the page ----------------------------------------------------------------------------------------------------

def public_leaderboard(run: Run) -> Path | None:
    """The newest downloaded public leaderboard (`make kaggle-leaderboard`), if any."""
    found = sorted((run.submit_dir / "public-leaderboard").glob("*.zip"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def page(board: leaderboard.Board, data: Data, pictures: list[Path], root: Path, title: str) -> str:
    order = [r.name for r in board.rows]
    label = board.metric.label
    sections = [("leaderboard", "Leaderboard"), ("blends", "Blends: what each submits"),
                ("folds", "Score fold by fold"), ("correlation", "Member correlation"), ("figures", "Figures")]
    parts = [f"<h1>{html.escape(title)}</h1>", _summary(data),
             "<nav>" + "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in sections) + "</nav>",
             '<h2 id="leaderboard">Leaderboard</h2>', board_table(board.rows, board.metric)]
    if board.files:
        parts += ["<h3>Submission files scored on input/solution.csv</h3>", board_table(board.files, board.metric)]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in board.notes]
    parts += ['<h2 id="blends">Blends: what each submits</h2>',
              '<p class="note">Counts are on the OOF predictions at the submitted (OOF) threshold; the stable '
              "threshold is the one that loses least across folds. A test positive rate far from train's warns "
              "that the threshold does not carry over to the test set.</p>"
              if board.metric.thresholded else
              f'<p class="note">{html.escape(label)} scores probabilities: no threshold, no confusion counts.</p>',
              html_table(BLEND_HEADER, blend_rows(data), "No blend yet: run make ensemble."),
              "<h3>Weights</h3>", weight_table(data)]
    header, rows = spread_rows(data, order)
    parts += ['<h2 id="folds">Score fold by fold</h2>',
              f'<p class="note">Nested {html.escape(label)} of each fold (every choice made on the other folds); '
              "a wide range means the leaderboard's order between close rows is not settled.</p>",
              html_table(header, rows)]
    if spread := spread_figure(data, order):
        parts.append(image_html(spread, f"nested {label} per fold"))
    parts.append('<h2 id="correlation">Member correlation</h2>')
    corr = correlation_figure(data)
    parts.append(image_html(corr, "Pearson correlation of OOF predictions; low correlation is what a blend gains "
                                  "from") if corr else "<p>Fewer than two trained models.</p>")
    shown = "".join(figure_html(p, root) for p in pictures)
    parts += ['<h2 id="figures">Figures</h2>', f'<div class="figures">{shown}</div>' if shown else
              "<p>No figures yet.</p>"]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def _summary(data: Data) -> str:
    facts = [f"metric: {data.cfg.metric.label}"]
    if data.y is not None:
        facts += [f"{len(data.y):,} train rows, {data.y.mean():.2%} positive", f"{data.n_test:,} test rows"]
    facts.append(f"{sum(r.kind == 'model' for r in data.results)} models, "
                 f"{sum(r.kind == 'blend' for r in data.results)} blends")
    return f'<p class="note">{html.escape("; ".join(facts))}</p>'


def write_report(run: Run) -> Path:
    board = leaderboard.build(run, public_leaderboard(run))
    leaderboard.write(run, board)
    path = run.submit_dir / "report.html"
    write_text(path, page(board, gather(run), figures(run.workspace), run.workspace,
                          f"{run.config.competition.slug}: models and blends"))
    return path


def _pct(value: float) -> str:
    return f"{value:.2%}"


@entry_point
def main() -> None:
    run = Run.from_environment()
    path = write_report(run)
    print(f"{path}: {len(figures(run.workspace))} figure(s) embedded; open it in a browser")


if __name__ == "__main__":
    main()
