"""submit.report: one self-contained HTML page."""
import base64

from submit_fakes import full_world

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_report_embeds_figures_and_leaderboard_without_external_links(tmp_path, monkeypatch):
    from submit.report import write_report
    full_world(tmp_path, monkeypatch)
    (tmp_path / "models" / "training_curves.png").write_bytes(PNG)
    (tmp_path / "ensembles" / "mean" / "thresholds.png").write_bytes(PNG)
    page = write_report().read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "ensembles/mean/thresholds.png" in page and "<td>alpha</td>" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
