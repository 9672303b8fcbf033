"""The kernel loop through the kaggle package's Python API: push a version, follow its run, fetch its output,
submit it.

Kaggle is reached only through core.kaggle's API client: a push Kaggle refuses, a failed run and
a submission of a version whose run failed are errors with Kaggle's message (and the run's log).
What this machine pushed and saw of each version is kept in submit/kernel-runs.json.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from core import kaggle
from core.artifacts import read_json, write_json
from core.errors import PipelineError
from core.run import Run
from submit.kernel_bundle import kernel_folder, validate

RUNNING = ("queued", "running", "new_script", "cancel_requested")     # kagglesdk's KernelWorkerStatus, lower-cased
COMPLETE = "complete"


def runs_file(run: Run) -> Path:
    """What this machine pushed and saw of each kernel version's run (Kaggle reports only the latest run)."""
    return run.submit_dir / "kernel-runs.json"


def kernel_id(run: Run) -> str:
    return validate(kernel_folder(run))["id"]


def runs(run: Run) -> dict:
    """{"kernel": id, "versions": {"<n>": {"status": ..., ...}}}: what this machine pushed and saw."""
    path = runs_file(run)
    if not path.exists():
        return {"kernel": "", "versions": {}}
    return read_json(path, "it records the kernel versions pushed from here; fix or delete it")


def record_run(run: Run, kernel: str, version: int | None, **facts) -> None:
    if version is None:
        return
    seen = runs(run)
    if seen["kernel"] != kernel:
        seen = {"kernel": kernel, "versions": {}}
    seen["versions"][str(version)] = {**seen["versions"].get(str(version), {}), **facts}
    write_json(runs_file(run), seen)


def latest_version(run: Run, kernel: str) -> int | None:
    seen = runs(run)
    return max(map(int, seen["versions"]), default=None) if seen["kernel"] == kernel else None


def push(run: Run) -> int:
    """Push submit/kernel/ as a new version; its number. Kaggle's refusal (the response's error) is an error here."""
    folder = kernel_folder(run)
    kernel = validate(folder)["id"]
    response = kaggle.call(f"kaggle kernels push -p {folder}", lambda api: api.kernels_push(str(folder)))
    if response is None or response.error:
        raise PipelineError(f"`kaggle kernels push` failed: Kaggle refused kernel {kernel}: "
                            f"{kaggle.redact(str(response.error if response else 'no response'))}")
    invalid = {what: list(getattr(response, f"invalid_{what}_sources", None) or [])
               for what in ("dataset", "competition", "kernel", "model")}
    version, url = response.version_number or None, kaggle.redact(str(response.url or ""))
    record_run(run, kernel, version, status="pushed", url=url, pushed=time.strftime("%Y-%m-%d %H:%M:%S"))
    if any(invalid.values()):
        named = "; ".join(f"{what} sources {', '.join(v)}" for what, v in invalid.items() if v)
        raise PipelineError(f"kernel {kernel} version {version} was pushed without what Kaggle does not know: {named}. "
                            f"Its run will miss them: fix [kaggle] in the configuration, `make kernel`, push again")
    print(f"kernel {kernel} version {version or '?'} pushed: {url}", flush=True)
    return version


def state_of(response) -> str:
    """The run's state from kernels_status: a KernelWorkerStatus (its name) or a string, lower-cased."""
    status = response.status
    return str(getattr(status, "name", status)).lower()


def log_tail(text: str, lines: int = 30) -> str:
    """The last lines of a kernel's log: Kaggle's JSON list of {stream_name, time, data}, or plain text."""
    try:
        entries = json.loads(text)
        text = "".join(e.get("data", "") for e in entries if isinstance(e, dict)) if isinstance(entries, list) else text
    except ValueError:
        pass
    kept = [line for line in kaggle.redact(text).splitlines() if line.strip()][-lines:]
    return "\n".join("  " + line for line in kept)


def status(run: Run, wait: bool = True, poll_seconds: float = 30.0) -> str:
    """The latest run's state, polled until it is complete or has failed (wait); a failed run is an error
    showing Kaggle's failure message and the tail of the run's log."""
    kernel = kernel_id(run)
    version = latest_version(run, kernel)
    label = f"kernel {kernel}" + (f" version {version}" if version else " (latest version)")
    last = None
    while True:
        response = kaggle.call(f"kaggle kernels status {kernel}", lambda api: api.kernels_status(kernel))
        state = state_of(response)
        if state != last:
            print(f"{label}: {state}", flush=True)
            last = state
        if not (wait and state in RUNNING):
            break
        time.sleep(poll_seconds)
    failure = kaggle.redact(str(getattr(response, "failure_message", "") or ""))
    record_run(run, kernel, version, status=state, failure=failure)
    if state in RUNNING or state == COMPLETE:
        if state == COMPLETE:
            print(f"next: make kernel-output, then make kernel-submit VERSION={version or '<n>'} MESSAGE=\"...\"")
        return state
    try:
        log = log_tail(kaggle.call(f"kaggle kernels logs {kernel}", lambda api: api.kernels_logs(kernel)))
    except PipelineError as e:
        log = f"  (its log could not be read: {e})"
    raise PipelineError(f"{label}: the run ended {state}" + (f": {failure}" if failure else "") +
                        f"\nthe log's last lines:\n{log}")


def output(run: Run) -> Path:
    """Download the latest run's output into submit/kernel-output/; its submission.csv must be there."""
    cfg = run.config
    kernel = kernel_id(run)
    folder = run.submit_dir / "kernel-output"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files, _ = kaggle.call(f"kaggle kernels output {kernel}",
                           lambda api: api.kernels_output(kernel, str(folder), force=True, quiet=True))
    submission = folder / "submission.csv"
    if not submission.is_file():
        raise PipelineError(f"kernel {kernel}: its output holds no submission.csv (got: "
                            f"{', '.join(Path(f).name for f in files) or 'nothing'}); `make kernel-status` says "
                            f"whether its run failed")
    c = cfg.competition
    header = submission.open(encoding="utf-8").readline().strip()
    if header != f"{c.id},{c.prediction}":
        raise PipelineError(f"{submission}: header {header!r}, expected {c.id},{c.prediction}")
    print(f"{folder}: {', '.join(Path(f).name for f in files)}", flush=True)
    return submission


def submit(run: Run, version: int, message: str):
    """Submit a version's submission.csv; refused when that version's run failed or is not finished."""
    cfg = run.config
    if version < 1:
        raise PipelineError(f"kernel version must be 1 or more, not {version}; `make kernel-push` prints it")
    if not message.strip():
        raise PipelineError("a submission needs a message: MESSAGE=\"what changed\"")
    kernel = kernel_id(run)
    latest = latest_version(run, kernel)
    seen = runs(run)["versions"].get(str(version), {}) if runs(run)["kernel"] == kernel else {}
    if latest is None or version >= latest:      # Kaggle reports the latest run only
        state = state_of(kaggle.call(f"kaggle kernels status {kernel}", lambda api: api.kernels_status(kernel)))
        record_run(run, kernel, latest, status=state)
    else:
        state = seen.get("status", "")
        if not state:
            print(f"warning: no record here of how version {version}'s run ended; submitting it as asked")
    if state in RUNNING or state == "pushed":
        raise PipelineError(f"kernel {kernel} version {version} is still {state}: wait for `make kernel-status`")
    if state and state != COMPLETE:
        raise PipelineError(f"kernel {kernel} version {version}: its run ended {state}"
                            + (f" ({seen['failure']})" if seen.get("failure") else "")
                            + "; a submission of it would fail. Fix it, `make kernel kernel-push kernel-status`")
    slug = cfg.competition.slug
    response = kaggle.call(f"kaggle competitions submit {slug} -k {kernel} -v {version}",
                           lambda api: api.competition_submit_code("submission.csv", message, slug, kernel, version,
                                                                   quiet=True))
    print(f"submitted kernel {kernel} version {version} to {slug}: "
          f"{kaggle.redact(str(getattr(response, 'message', '') or 'ok'))}")
    return response
