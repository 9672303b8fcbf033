"""The pipeline's configuration: one TOML file (pipeline.toml, or CONFIG=path) read into frozen dataclasses.

Every table is checked when it loads (core.schema), but the model tables: a model's options depend on its kind,
which the models stage knows (models.catalogue checks them, starting each from the [train] table, so adding a
model is one table). Every artifact records the spec it was made from.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import PipelineError
from core.schema import build, setting
from core.tables import read_tables

BLEND_METHODS = ("mean", "rank_mean", "weighted", "stacking", "caruana")   # ensembles.blend's METHODS
HARDWARE = ("T4", "P100", "H100", "CPU")                                  # what the kernel's plan knows


@dataclass(frozen=True)
class Competition:
    slug: str
    train: str
    test: str
    sample_submission: str
    solution: str
    id: str
    text: str | tuple[str, ...]       # a column, or several combined into each row's text (core.data)
    target: str
    prediction: str
    metric: str = "f1"
    text_template: str = ""           # how several text columns combine, e.g. "{keyword}: {text}" (a missing
                                      # value is empty); none: their non-empty values joined by a space
    extra_columns: tuple[str, ...] = ()  # columns the files carry that no stage reads (the demo writes them)
    numeric_ids: bool = False         # the ids are whole numbers (the demo writes them so)
    rows: tuple[int, ...] = setting((), at_least=1)  # the real competition's train and test rows: `make plan`
                                                    # without input/

    @property
    def text_columns(self) -> tuple[str, ...]:
        return self.text if isinstance(self.text, tuple) else (self.text,)

    def problems(self) -> list[str]:
        """What the text columns, the template and the rows say against each other."""
        columns = self.text_columns
        if not columns or not all(columns) or len(set(columns)) < len(columns):
            return ['text must be a column name or a list of distinct column names, like text = ["keyword", "text"]']
        if self.target in columns:
            return [f"text must not name the target column {self.target!r}: the label would be in the text"]
        if self.rows and len(self.rows) != 2:
            return ["rows must be the train and test row counts, like rows = [7613, 3263]"]
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.text_template) if f is not None]
        except ValueError as e:
            return [f"text_template {self.text_template!r} is not a template ({e}); write columns as {{name}}, "
                    f"braces as {{{{ }}}}"]
        if unknown := [f for f in fields if f not in columns]:
            return [f"text_template names {unknown}, not among the text columns {list(columns)}; add them to text, "
                    f"or write each column as {{name}}"]
        return []


@dataclass(frozen=True)
class Folds:
    k: int = setting(5, at_least=2)
    seed: int = setting(42, at_least=0)


@dataclass(frozen=True)
class ModelTable:
    """A [models.NAME] table as written. Every stage reads its name and whether it runs here; the models stage
    makes it a typed spec of its kind (models.catalogue: the kind's options, checked, [train]'s defaults)."""
    name: str
    enabled: bool | str = setting(True, choices=(True, False, "gpu", "always"))  # true: the plan may take it;
    # "gpu": only on a machine with a GPU; "always": taken whatever the plan's budget (models.plan)
    table: dict = field(default_factory=dict)                         # its other keys


@dataclass(frozen=True)
class ModuleSpec:
    """A hub module the project builds itself into models/hub/<name>/."""
    name: str
    builder: str                      # "use-m3", "minilm", "pypi-glove", "word-vectors"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BlendSpec:
    name: str
    method: str = setting(choices=BLEND_METHODS)
    members: tuple[str, ...] = setting()
    enabled: bool = True

    def problems(self) -> list[str]:
        if not self.members or len(set(self.members)) != len(self.members):
            return [f"members must be a non-empty list of distinct model names (got {list(self.members)})"]
        return []


@dataclass(frozen=True)
class WorkspaceSettings:
    """The [workspace] table: limits of the machine the pipeline runs on."""
    disk_budget_gb: float = setting(20.0, above=0)   # caches refused beyond it: a Kaggle kernel's writable disk


@dataclass(frozen=True)
class PlanSettings:
    """The [plan] table: what a run may spend (models.plan chooses the models that fit)."""
    budget_minutes: float = setting(45.0, above=0)   # training minutes, module builds included; BUDGET= overrides


@dataclass(frozen=True)
class KaggleSettings:
    """The [kaggle] table: who owns the kernel and what it attaches (all optional)."""
    owner: str = ""                      # Kaggle user name; default: KAGGLE_USERNAME or kaggle.json's username
    kernel: str = ""                     # kernel slug; default: "<competition slug>-pipeline"
    title: str = ""                      # default: derived so that it slugifies to `kernel`
    code_competition: bool = False       # True: file submissions are refused, submit through a kernel
    enable_gpu: bool = True
    dataset_sources: tuple[str, ...] = ()  # e.g. the locally built hub modules uploaded as a dataset
    model_sources: tuple[str, ...] = ()    # Kaggle Models: owner/model/framework/variation/version
    kernel_sources: tuple[str, ...] = ()
    external_data: bool = True           # False: `make kernel` refuses models whose modules are not built from
                                         # the competition's own files (a PyPI builder, a URL, a path)
    dataset: str = ""                    # slug of the modules' dataset `make kernel-dataset` writes;
                                         # default: "<competition slug>-modules"
    time_limit_minutes: float = setting(120.0, above=0)  # the kernel's run limit; `make plan` and `make kernel`
                                                         # check the catalogue
    accelerator: str = setting("T4", choices=HARDWARE)   # the kernel's hardware for the plan


@dataclass(frozen=True)
class Config:
    path: Path
    competition: Competition
    folds: Folds
    models: dict[str, ModelTable]
    modules: dict[str, ModuleSpec]
    blends: dict[str, BlendSpec]
    default_blend: str                                     # "": the best by nested score (ensembles.blend.chosen)
    kaggle: KaggleSettings = KaggleSettings()
    workspace: WorkspaceSettings = WorkspaceSettings()
    plan: PlanSettings = PlanSettings()
    train_defaults: dict = field(default_factory=dict)     # the [train] table: what every model starts from

    @property
    def metric(self):
        """The competition's metric (core.metrics.Metric), checked when the configuration is loaded."""
        from core.metrics import metric_named
        return metric_named(self.competition.metric)

    def model(self, name: str) -> ModelTable:
        if name not in self.models:
            raise PipelineError(f"{self.path}: no model named {name!r}; known models: {', '.join(self.models)}")
        return self.models[name]

    def enabled_models(self, gpu: bool) -> list[ModelTable]:
        """The models that run on this machine (`gpu`: it trains on a GPU, core.run.Run.gpu)."""
        return [m for m in self.models.values() if runs_here(m, gpu)]

    def blend_members(self) -> list[str]:
        """Every model an enabled blend blends, in the catalogue's order: what a submission can use."""
        members = {m for b in self.blends.values() if b.enabled for m in b.members}
        return [m for m in self.models if m in members]

    def blend(self, name: str) -> BlendSpec:
        if name not in self.blends:
            raise PipelineError(f"{self.path}: no blend named {name!r}; known blends: {', '.join(self.blends)}")
        return self.blends[name]


def runs_here(spec: ModelTable, gpu: bool) -> bool:
    """Whether a model may run on this machine: enabled (or always), or enabled = "gpu" where training runs on a
    GPU."""
    return spec.enabled in (True, "always") or (spec.enabled == "gpu" and gpu)


def load_config(path: Path | str) -> Config:
    path = Path(path)
    raw = read_tables(path)                           # merged over its base file's tables, if it names one
    models = {n: build(ModelTable, {"name": n, "table": {k: v for k, v in t.items() if k != "enabled"},
                                    **({"enabled": t["enabled"]} if "enabled" in t else {})}, path, f"[models.{n}]")
              for n, t in raw.get("models", {}).items()}
    competition = build(Competition, raw.get("competition", {}), path, "[competition]")
    from core.metrics import METRICS
    if competition.metric not in METRICS:
        raise PipelineError(f"{path}: [competition] metric {competition.metric!r} is not known; known metrics: "
                            f"{', '.join(METRICS)}")
    blends = {n: build(BlendSpec, {**t, "name": n}, path, f"[blends.{n}]") for n, t in raw.get("blends", {}).items()}
    for blend in blends.values():
        if unknown := [m for m in blend.members if m not in models]:
            raise PipelineError(f"{path}: [blends.{blend.name}] members names unknown model(s) {unknown}; known "
                                f"models: {', '.join(models)}")
    return Config(
        path=path,
        competition=competition,
        folds=build(Folds, raw.get("folds", {}), path, "[folds]"),
        models=models,
        modules={n: ModuleSpec(name=n, builder=_require(t, "builder", path, f"[modules.{n}]"),
                               options={k: v for k, v in t.items() if k != "builder"})
                 for n, t in raw.get("modules", {}).items()},
        blends=blends,
        default_blend=raw.get("ensemble", {}).get("default", ""),
        kaggle=build(KaggleSettings, raw.get("kaggle", {}), path, "[kaggle]"),
        workspace=build(WorkspaceSettings, raw.get("workspace", {}), path, "[workspace]"),
        plan=build(PlanSettings, raw.get("plan", {}), path, "[plan]"),
        train_defaults=raw.get("train", {}),
    )


def _require(table: dict, key: str, path: Path, where: str):
    if key not in table:
        raise PipelineError(f"{path}: {where} needs a {key!r} entry")
    return table[key]
