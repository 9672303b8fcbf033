"""One self-contained HTML page: the leaderboard and every figure, for reading offline.

    python -m submit.report      (make report) -> submit/report.html

Figures (models/training_curves.png, models/*/*.png, ensembles/*/*.png) are embedded as base64
data URIs and the page links nothing outside itself, so it can be mailed or opened anywhere.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

from core.artifacts import write_text
from core.cli import entry_point
from core.config import load_config
from core.paths import submit_dir, workspace
from submit import leaderboard

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:nth-child(-n+2),th{text-align:left}figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}
.note{color:#666;font-size:13px}"""


def figures() -> list[Path]:
    root = workspace()
    found = [root / "models" / "training_curves.png"]
    found += sorted((root / "models").glob("*/*.png")) + sorted((root / "ensembles").glob("*/*.png"))
    return [p for p in dict.fromkeys(found) if p.is_file()]


def figure_html(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(path.relative_to(workspace()).as_posix())
    return (f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>")


def table_html(rows: list[leaderboard.Row], metric) -> str:
    if not rows:
        return "<p>Nothing trained yet: run <code>make train ensemble</code>.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in leaderboard.header(metric))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in leaderboard.cells(r)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(board: leaderboard.Board, pictures: list[Path], title: str) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>", "<h2>Leaderboard</h2>", table_html(board.rows, board.metric)]
    if board.files:
        parts += ["<h2>Submission files scored on input/solution.csv</h2>", table_html(board.files, board.metric)]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in board.notes]
    parts += ["<h2>Figures</h2>"] + ([figure_html(p) for p in pictures] or ["<p>No figures yet.</p>"])
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def write_report() -> Path:
    cfg = load_config()
    board = leaderboard.build(cfg=cfg)
    leaderboard.write(board)
    path = submit_dir() / "report.html"
    write_text(path, page(board, figures(), f"{cfg.competition.slug}: models and blends"))
    return path


@entry_point
def main() -> None:
    path = write_report()
    print(f"{path}: {len(figures())} figure(s) embedded")


if __name__ == "__main__":
    main()
