"""The one place that talks to Kaggle: credentials first, each request once, failures as clear errors.

Two ways in. `run` runs the kaggle CLI (input.download, submit.kaggle_cli): an argument list that
starts with "kaggle"; tests check those lists and monkeypatch `_execute`. `api()` gives the kaggle
package's Python API (KaggleApi, kaggle 2.2.4), and `call` runs one of its methods: the kernel loop
(submit.kernel_api) reads what the API returns (a push's error, a run's status and log) instead of the
CLI's printed text, which says "Kernel push error: ..." and exits 0. Tests monkeypatch `_client`.

Secrets: nothing here prints, logs or returns a key or token. Messages name the variables and
files that hold credentials, never their values, and the CLI's own output is passed through
`redact` before it is shown or put into an error message.

The [kaggle] table of the configuration (optional; core.config ignores unknown top-level tables)
holds the account-side settings: owner, kernel slug and title, sources attached to the kernel.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, TypeVar

from core.config import KaggleSettings
from core.errors import PipelineError

SECRET_VARS = ("KAGGLE_KEY", "KAGGLE_API_TOKEN")
TOKEN_FILES = ("access_token", "access_token.txt")                  # in ~/.kaggle/, as the CLI reads them
TOKEN_PATH_VARS = ("KAGGLE_API_TOKEN", "KAGGLE_API_V1_TOKEN")        # may name a file holding the token
SECRET_KEY = re.compile(r"(token|secret|key|password)s?$", re.I)     # credentials.json keys that hold secrets
OFFLINE_ALTERNATIVES = ("offline alternatives: `make demo` (a synthetic demo competition) or "
                        "`make local-competition SOURCE=file.csv` (split a labelled CSV you have)")
HOW_TO_AUTHENTICATE = (
    "kaggle credentials not found. Create an API token at https://www.kaggle.com/settings/api, then either "
    "export KAGGLE_USERNAME=<user> and KAGGLE_KEY=<key>, or save the downloaded kaggle.json as {config} "
    "(chmod 600), or export KAGGLE_API_TOKEN=<token> / save the token as ~/.kaggle/access_token, "
    "or run `kaggle auth login`. KAGGLE_CONFIG_DIR=dir moves kaggle.json to dir/kaggle.json")


# ---------------------------------------------------------------- settings
def owner(settings: KaggleSettings) -> str:
    """The Kaggle user name (not a secret): [kaggle] owner, KAGGLE_USERNAME, or kaggle.json's username."""
    if settings.owner:
        return settings.owner
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    data = _read_kaggle_json()
    if data.get("username"):
        return data["username"]
    raise PipelineError("the kernel needs a Kaggle owner: set owner = \"<your kaggle user name>\" in the [kaggle] "
                        "table of pipeline.toml, or export KAGGLE_USERNAME")


# ---------------------------------------------------------------- credentials
def config_dir() -> Path:
    """Where the installed CLI (kaggle 2.x) looks for kaggle.json, in its own order."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    legacy = Path.home() / ".kaggle"
    if legacy.exists() or not sys.platform.startswith("linux"):
        return legacy
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "kaggle"


def credentials_source() -> str | None:
    """Which credentials the kaggle CLI would use (a description, never a value), or None."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "the KAGGLE_API_TOKEN environment variable"
    for name in TOKEN_FILES:
        if _nonempty(Path.home() / ".kaggle" / name):
            return f"~/.kaggle/{name}"
    data = _read_kaggle_json()
    has_user = bool(os.environ.get("KAGGLE_USERNAME") or data.get("username"))
    has_key = bool(os.environ.get("KAGGLE_KEY") or data.get("key"))
    if has_user and has_key:
        env = os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")
        return "the KAGGLE_USERNAME / KAGGLE_KEY environment variables" if env else str(config_dir() / "kaggle.json")
    if _nonempty(Path.home() / ".kaggle" / "credentials.json"):
        return "~/.kaggle/credentials.json (kaggle auth login)"
    return None


def require_credentials(offline_hint: str = "") -> str:
    source = credentials_source()
    if source is None:
        message = HOW_TO_AUTHENTICATE.format(config=config_dir() / "kaggle.json")
        raise PipelineError(message + (f"; {offline_hint}" if offline_hint else ""))
    return source


def _read_kaggle_json() -> dict:
    path = config_dir() / "kaggle.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # Never echo the file: it holds the key. Name it and say what is expected.
        raise PipelineError(f"{path}: not readable JSON; it should be {{\"username\": ..., \"key\": ...}} as "
                            f"downloaded from https://www.kaggle.com/settings/api") from None
    return data if isinstance(data, dict) else {}


def _nonempty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def secrets() -> list[str]:
    """Every credential value the kaggle CLI could read now (to redact, and to refuse in written files):
    KAGGLE_KEY, KAGGLE_API_TOKEN (a token, or a file holding one), kaggle.json's key, ~/.kaggle/access_token
    (and .txt), the token values of ~/.kaggle/credentials.json (`kaggle auth login`), and the token file a
    Kaggle notebook names in KAGGLE_API_V1_TOKEN. The user name is not secret; short values are ignored."""
    values = [os.environ.get(v, "") for v in SECRET_VARS]
    values += [_file_text(Path(os.environ[v])) for v in TOKEN_PATH_VARS if os.environ.get(v)]
    values.append(str(_read_kaggle_json().get("key", "")))
    values += [_file_text(Path.home() / ".kaggle" / name) for name in TOKEN_FILES]
    values += _login_tokens(Path.home() / ".kaggle" / "credentials.json")
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)   # longest first: none hides another


def redact(text: str) -> str:
    for value in secrets():
        text = text.replace(value, "***")
    return text


def _file_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() if path.is_file() else ""
    except OSError:                # e.g. a KAGGLE_API_TOKEN too long to be a file name: then it is no file
        return ""


def _login_tokens(path: Path) -> list[str]:
    """Every string under a token-like key of credentials.json; all of it when it is not JSON."""
    text = _file_text(path)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return [text]

    def under_tokens(node, key: str = ""):
        if isinstance(node, dict):
            return [v for k, child in node.items() for v in under_tokens(child, str(k))]
        if isinstance(node, list):
            return [v for child in node for v in under_tokens(child, key)]
        return [node] if isinstance(node, str) and SECRET_KEY.search(key) else []
    return under_tokens(data)


# ---------------------------------------------------------------- running
def run(args: list[str], *, offline_hint: str = "", what: str = "") -> str:
    """Run one kaggle CLI command once (no retries) and return its redacted output.

    args starts with "kaggle". The output is echoed as it arrives (downloads show progress).
    Any failure becomes a PipelineError saying what went wrong and what to do.
    """
    if not args or args[0] != "kaggle":
        raise ValueError(f"a kaggle command starts with 'kaggle', not {args[:1]}")
    require_credentials(offline_hint)
    returncode, output = _execute(_executable() + args[1:])
    output = redact(output)
    problem = classify_failure(returncode, output)
    if problem:
        what = what or " ".join(args[:3])
        hint = f"; {offline_hint}" if offline_hint and problem.startswith("could not reach") else ""
        raise PipelineError(f"`{what}` failed: {problem}{hint}\n{_tail(output)}".rstrip())
    return output


def _executable() -> list[str]:
    """The CLI installed beside this Python (the project venv), else `python -m kaggle`."""
    beside = Path(sys.executable).with_name("kaggle")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "kaggle"]


def _execute(argv: list[str]) -> tuple[int, str]:
    """Run argv, echoing its (redacted) output as it comes, and return (exit status, all output)."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        raise PipelineError(f"{argv[0]}: the kaggle CLI is not installed; run `make setup`") from None
    chunks, held = [], ""
    hold = max(map(len, secrets()), default=1) - 1      # a secret split between two chunks is held back whole
    for chunk in iter(lambda: proc.stdout.read1(65536), b""):
        text = chunk.decode("utf-8", errors="replace")
        chunks.append(text)
        shown = redact(held + text)
        held = shown[len(shown) - hold:] if hold else ""
        sys.stdout.write(shown[:len(shown) - len(held)])
        sys.stdout.flush()
    sys.stdout.write(held)
    return proc.wait(), "".join(chunks)


# The CLI sometimes prints an error and still exits 0 (a 404 on submit, a failed upload): read the text too.
_NETWORK = ("NameResolutionError", "Temporary failure in name resolution", "Failed to resolve",
            "Name or service not known", "nodename nor servname", "Max retries exceeded", "ConnectionError",
            "Connection refused", "Network is unreachable", "ConnectTimeout", "ReadTimeout")
_HTTP = {
    "401": "Kaggle rejected the credentials (401 Unauthorized): create a new API token at "
           "https://www.kaggle.com/settings/api and replace the old one",
    "403": "Kaggle refused access (403 Forbidden): accept the competition's rules on its Kaggle page "
           "(Join Competition / I Understand and Accept), and check the account owns what it pushes",
    "404": "Kaggle does not know it (404 Not Found): check the competition slug in pipeline.toml, "
           "the kernel id and version, and that the competition still accepts submissions",
    "429": "Kaggle is rate-limiting this account (429 Too Many Requests): wait, and check the daily submission limit",
}
_SILENT_FAILURES = {
    "Could not find competition": _HTTP["404"],
    "Could not submit to competition": "the upload did not complete; nothing was submitted",
    "Authentication required": _HTTP["401"],
}


def classify_failure(returncode: int, output: str) -> str | None:
    """What went wrong, in words, or None when the command succeeded."""
    if any(marker in output for marker in _NETWORK):
        return "could not reach kaggle.com (no network or DNS); check the connection and any proxy"
    for code, message in _HTTP.items():
        if f"{code} Client Error" in output or f"status code {code}" in output or f"HTTP {code}" in output:
            return message
    for marker, message in _SILENT_FAILURES.items():
        if marker in output:
            return message
    if returncode != 0:
        return f"the kaggle CLI exited with status {returncode}"
    return None


# ---------------------------------------------------------------- the Python API
T = TypeVar("T")


def api():
    """An authenticated KaggleApi; PipelineError with HOW_TO_AUTHENTICATE when there are no credentials."""
    require_credentials()
    return _client()


def _client():
    """KaggleApi().authenticate(), quietly: the package prints its own help and exits where it cannot."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi   # its package authenticates once on import
            client = KaggleApi()
            client.authenticate()
        except SystemExit:
            raise PipelineError(f"the kaggle package did not accept the credentials in {credentials_source()}: "
                                + HOW_TO_AUTHENTICATE.format(config=config_dir() / "kaggle.json")) from None
        except ImportError:
            raise PipelineError("the kaggle package is not installed; run `make setup`") from None
    return client


def call(what: str, request: Callable[..., T], *, offline_hint: str = "") -> T:
    """request(api()) once (no retries) and its result; any exception becomes a PipelineError saying what went
    wrong, in the words `classify_failure` uses for the CLI (`what`: the request, as a user would name it)."""
    try:
        return request(api())            # authenticating may reach Kaggle too (an access token is looked up)
    except PipelineError:
        raise
    except Exception as e:   # requests' HTTPError / ConnectionError, the API's ValueError, kagglesdk's errors
        status = getattr(getattr(e, "response", None), "status_code", None)
        text = redact(f"{type(e).__name__}: {e}" + (f" (HTTP {status})" if status else ""))
        problem = classify_failure(0, text)
        hint = f"; {offline_hint}" if offline_hint and (problem or "").startswith("could not reach") else ""
        raise PipelineError(f"`{what}` failed: {problem}{hint}\n  {text}" if problem else f"`{what}` failed: {text}") \
            from None


def _tail(output: str, lines: int = 8) -> str:
    kept = [line for line in output.replace("\r", "\n").splitlines() if line.strip()][-lines:]
    return "\n".join("  " + line for line in kept)
