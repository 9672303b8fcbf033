"""Where the code and the shared real data are. Where a run's artifacts are is the run's (core.run.Run: its
workspace, PIPELINE_ROOT, is the repository itself unless it points elsewhere; tests use a temporary folder, so
they never touch a user's input/ or models/)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"          # real data beside the checkout, for tests and benchmarks
SHARED_SAMPLE = SHARED_DATA / "quora" / "train_sample.csv"
