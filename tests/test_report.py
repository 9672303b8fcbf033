"""submit.report: one self-contained HTML page."""
import base64
import json
import re
import zipfile

import numpy as np
import pandas as pd

from conftest import here
from submit_fakes import full_world

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAAAJRU5ErkJggg==")


def test_report_embeds_figures_and_leaderboard_without_external_links(tmp_path, monkeypatch):
    from submit.report import write_report
    full_world(tmp_path, monkeypatch)
    (tmp_path / "models" / "training_curves.png").write_bytes(PNG)
    (tmp_path / "ensembles" / "mean" / "thresholds.png").write_bytes(PNG)
    page = write_report(here()).read_text()
    assert page.count("data:image/png;base64,") == 3           # the two files and the members' correlation
    assert "ensembles/mean/thresholds.png" in page and '<td class="name">alpha</td>' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_report_shows_each_blends_confusion_weights_fold_spread_and_public_place(tmp_path, monkeypatch):
    from submit.report import write_report
    facts = full_world(tmp_path, monkeypatch, solution=False)
    blend = tmp_path / "ensembles" / "mean"
    metrics = json.loads((blend / "metrics.json").read_text())
    metrics["nested"]["per_fold"] = [{"fold": k, "score": s, "threshold": 0.45} for k, s in enumerate([0.3, 0.5, 0.4])]
    metrics["stable_threshold"] = {"threshold": 0.42}
    (blend / "metrics.json").write_text(json.dumps(metrics))
    (blend / "weights.json").write_text(json.dumps({"by_member": {"alpha": 0.75, "beta": 0.25}}))
    public = tmp_path / "submit" / "public-leaderboard"
    public.mkdir(parents=True)
    with zipfile.ZipFile(public / "fake-comp.zip", "w") as z:
        z.writestr("lb.csv", pd.DataFrame({"TeamId": [1, 2], "Score": [0.9, 0.1]}).to_csv(index=False))
    page = write_report(here()).read_text()
    oof, y = np.load(blend / "oof.npy"), facts["y"].astype(bool)
    tp, fp = int(np.sum((oof >= 0.45) & y)), int(np.sum((oof >= 0.45) & ~y))
    row = re.search(r"<tr><td class=\"name\">mean</td>.*?</tr>", page).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[2:6] == ["0.450000", "0.420000", str(tp), str(fp)]
    assert cells[-1] == "20.00%"                               # train's positive rate: 12 of 60
    assert "0.750" in page and "0.250" in page                   # the weights
    assert "<th>fold 2</th>" in page and "0.2000" in page        # per-fold scores and their range
    assert "would place 2nd of 3" in page
    assert page.count("data:image/png;base64,") == 2           # the fold spread and the correlation
