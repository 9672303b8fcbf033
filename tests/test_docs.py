"""The README and docs/ name only what exists: every `make` target they show is a Makefile rule, and every project
file they name or link is in the repository, or is an artifact that .gitignore marks as made at run time."""
import re
import shlex
import subprocess
from pathlib import Path

from core.paths import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TOP = {p.name for p in REPO.iterdir() if not p.name.startswith(".")} | {".ci"}   # where project paths start
CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`]+)`", re.S)
TARGET = re.compile(r"^[a-z][a-z0-9-]*$")
LINK = re.compile(r"\]\(([^)#\s]+)[^)]*\)")


def code_texts(markdown: str) -> list[str]:
    """The contents of code blocks and `code spans`: where commands and paths are written."""
    return [block or span for block, span in CODE.findall(markdown)]


def make_targets(markdown: str) -> set[str]:
    """Targets of each `make ...` command in the code: the target-like words after `make` up to the first shell
    separator, comment or run of spaces (a diagram's description), leaving out VAR=value settings and options."""
    targets = set()
    for text in code_texts(markdown):
        for line in text.splitlines():
            for command in re.split(r"\||;|&&|#|\s{2,}", line):
                words = _words(command.replace("[", "").replace("]", ""))
                if "make" in words:
                    targets |= {w for w in words[words.index("make") + 1:] if TARGET.match(w)}
    return targets


def _words(command: str) -> list[str]:
    """Shell words (a quoted value with spaces is one); prose with an apostrophe is split at spaces."""
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def project_paths(markdown: str) -> set[str]:
    """Code spans that are paths inside the project: one word, starting at one of its top-level files or folders."""
    words = {span.strip() for _, span in CODE.findall(markdown) if len(span.split()) == 1}
    return {w for w in words if w.split("/")[0] in TOP and "://" not in w}


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", (REPO / "Makefile").read_text(), re.M))


def missing(paths: set[str]) -> list[str]:
    """The paths that neither exist (a <placeholder> or * matching anything) nor are ignored by git as artifacts."""
    absent = sorted(p for p in paths if not any(REPO.glob(re.sub(r"<[^>]+>", "*", p).rstrip("/"))))
    if not absent:
        return []
    done = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=REPO, input="\n".join(absent),
                          capture_output=True, text=True)
    return sorted(set(absent) - set(done.stdout.splitlines()))


def test_make_targets_are_read_from_commands_only():
    text = "make skips finished work: `make train MODELS=a,b`; `CONFIG=k.toml make kernel-standins demo # note`\n" \
           "```bash\nmake folds train   # the main job\nmake data | make help\n-> f.csv    make submit    every model\n```\n"
    assert make_targets(text) == {"train", "kernel-standins", "demo", "folds", "data", "help", "submit"}


def test_project_paths_are_code_spans_inside_the_project():
    text = "`submit/report.html`, `pipeline.toml`, `~/.kaggle/kaggle.json`, `make demo`, `labelled.csv`, " \
           "[a link](docs/x.md), `input/<name>.csv`"
    assert project_paths(text) == {"submit/report.html", "pipeline.toml", "input/<name>.csv"}


def test_an_ignored_artifact_counts_as_named_and_a_missing_source_file_does_not():
    assert missing({"submit/report.html", "models/<model>/metrics.json", "core/nowhere.py"}) == ["core/nowhere.py"]


def test_every_make_target_the_docs_show_is_a_makefile_rule():
    unknown = {doc.name: sorted(make_targets(doc.read_text()) - makefile_targets()) for doc in DOCS}
    assert {name: targets for name, targets in unknown.items() if targets} == {}


def test_every_project_file_the_docs_name_exists_or_is_a_run_time_artifact():
    absent = {doc.name: missing(project_paths(doc.read_text())) for doc in DOCS}
    assert {name: paths for name, paths in absent.items() if paths} == {}


def test_every_link_between_the_docs_leads_to_a_file():
    broken = [f"{doc.name}: {link}" for doc in DOCS for link in LINK.findall(doc.read_text())
              if "://" not in link and not (doc.parent / link).exists()]
    assert broken == []
