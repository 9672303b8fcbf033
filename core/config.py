"""The pipeline's configuration: one TOML file (pipeline.toml, or CONFIG=path) read into frozen dataclasses.

A model entry starts from the [train] table and overrides what it names, so adding a model is
one table. Every artifact records the spec it was made from (`ModelSpec.as_dict`).
"""
from __future__ import annotations

import dataclasses
import os
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from core.errors import PipelineError
from core.paths import REPO
from core.tables import read_tables


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
    rows: tuple[int, ...] = ()        # the real competition's train and test rows: `make plan` without input/

    @property
    def text_columns(self) -> tuple[str, ...]:
        return self.text if isinstance(self.text, tuple) else (self.text,)


@dataclass(frozen=True)
class Folds:
    k: int = 5
    seed: int = 42


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str = "hub"                 # "hub": a text-embedding module + dense head; "tfidf": the classic baseline
    handle: str | tuple[str, ...] = ""  # a [modules] name, a tfhub.dev / Kaggle Models URL, or a SavedModel path;
                                      # a list: the modules' embeddings side by side, into one head
    output_dim: int = 0
    trainable: bool = False           # fine-tune the module (True) or keep it frozen (False)
    trainable_layers: int | None = None  # fine-tune only the module's top n layers, on cached states below them
    features: str = "sentence"        # "tokens": a pooling head over the frozen module's per-token outputs
    token_precision: str = "float16"  # tokens: how the token cache stores vectors; "int8" takes half the disk
    token_head: str = "pooling"       # tokens: "pooling" (mean, max, attention) or "gru" / "lstm" (bidirectional
    rnn_units: int = 128              # recurrent layers, then max + mean pooling); units each way, and
    rnn_layers: int = 1               # 1 or 2 layers
    enabled: bool | str = True        # true, false, or "gpu": only on a machine with a GPU
    head: tuple[int, ...] = (256, 64)
    dropout: float = 0.2
    lr: float = 1e-3
    module_lr: float = 3e-5
    clipnorm: float = 1.0
    batch_size: int = 128
    epochs: int = 10
    patience: int = 2
    seed: int = 42
    seeds: int = 1                    # networks trained per fold from different seeds, predictions averaged
    C: float = 4.0                    # tfidf: inverse regularization of the logistic regression
    max_features: int = 200000        # tfidf: vocabulary size per vectorizer

    @property
    def handles(self) -> tuple[str, ...]:
        return self.handle if isinstance(self.handle, tuple) else (self.handle,)

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class ModuleSpec:
    """A hub module the project builds itself into models/hub/<name>/."""
    name: str
    builder: str                      # "use-m3", "minilm", "pypi-glove", "word-vectors"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BlendSpec:
    name: str
    method: str                       # mean, rank_mean, weighted, stacking, caruana
    members: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class WorkspaceSettings:
    """The [workspace] table: limits of the machine the pipeline runs on."""
    disk_budget_gb: float = 20.0         # caches refused beyond it: a Kaggle kernel's writable disk


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
    time_limit_minutes: float = 120.0    # the kernel's run limit; `make plan` and `make kernel` check the catalogue
    accelerator: str = "T4"              # the kernel's hardware for the plan: T4, P100 or H100


@dataclass(frozen=True)
class Config:
    path: Path
    competition: Competition
    folds: Folds
    models: dict[str, ModelSpec]
    modules: dict[str, ModuleSpec]
    blends: dict[str, BlendSpec]
    default_blend: str
    kaggle: KaggleSettings = KaggleSettings()
    workspace: WorkspaceSettings = WorkspaceSettings()

    @property
    def metric(self):
        """The competition's metric (core.metrics.Metric), checked when the configuration is loaded."""
        from core.metrics import metric_named
        return metric_named(self.competition.metric)

    def model(self, name: str) -> ModelSpec:
        if name not in self.models:
            raise PipelineError(f"{self.path}: no model named {name!r}; known models: {', '.join(self.models)}")
        return self.models[name]

    def enabled_models(self) -> list[ModelSpec]:
        return [m for m in self.models.values() if runs_here(m)]

    def modules_of(self, models: list[ModelSpec]) -> list[str]:
        """The locally built modules ([modules] names, in their order) that the models load."""
        handles = {handle for m in models if m.kind == "hub" for handle in m.handles}
        return [name for name in self.modules if name in handles]

    def blend(self, name: str) -> BlendSpec:
        if name not in self.blends:
            raise PipelineError(f"{self.path}: no blend named {name!r}; known blends: {', '.join(self.blends)}")
        return self.blends[name]


def gpu_present() -> bool:
    """Whether training here runs on a GPU: TensorFlow sees one and DEVICES does not ask for the CPU.

    The driver is checked first, so that make's calls on a CPU machine never import TensorFlow; where a
    driver is, TensorFlow is asked, since it may lack the CUDA libraries (`make doctor` says why).
    """
    gpus = Path("/proc/driver/nvidia/gpus")
    asked_for_cpu = os.environ.get("DEVICES", "").strip().lower().startswith("cpu")
    if asked_for_cpu or not (gpus.is_dir() and any(gpus.iterdir())):
        return False
    return _tensorflow_sees_a_gpu()


@lru_cache(maxsize=1)
def _tensorflow_sees_a_gpu() -> bool:
    import tensorflow as tf
    return bool(tf.config.list_physical_devices("GPU"))


def runs_here(spec: ModelSpec) -> bool:
    return spec.enabled is True or (spec.enabled == "gpu" and gpu_present())


def _without_gpu_only(blend: BlendSpec, models: dict[str, ModelSpec]) -> BlendSpec:
    """A blend's members that need a GPU are left out on a machine without one, so one blend serves both."""
    members = tuple(m for m in blend.members if not (m in models and not runs_here(models[m])
                                                     and models[m].enabled == "gpu"))
    return dataclasses.replace(blend, members=members)


def config_path() -> Path:
    return Path(os.environ.get("CONFIG") or REPO / "pipeline.toml").resolve()


def load_config(path: Path | str | None = None) -> Config:
    path = Path(path) if path else config_path()
    raw = read_tables(path)                           # merged over its base file's tables, if it names one
    defaults = raw.get("train", {})
    models = {n: _build(ModelSpec, {**defaults, **t, "name": n}, path, f"[models.{n}]")
              for n, t in raw.get("models", {}).items()}
    for wrong, rule in ((lambda m: m.enabled not in (True, False, "gpu"), 'enabled must be true, false or "gpu"'),
                        (lambda m: m.features not in ("sentence", "tokens"), 'features must be "sentence" or "tokens"'),
                        (lambda m: not isinstance(m.seeds, int) or m.seeds < 1, "seeds must be a whole number >= 1"),
                        (lambda m: m.token_precision not in ("float16", "int8"),
                         'token_precision must be "float16" or "int8"'),
                        (lambda m: m.trainable_layers is not None and (not isinstance(m.trainable_layers, int)
                                                                       or isinstance(m.trainable_layers, bool)
                                                                       or m.trainable_layers < 1),
                         "trainable_layers must be a whole number >= 1 (how many of the module's top layers "
                         "fine-tune; at most its layer count, 6 for minilm)"),
                        (lambda m: m.trainable_layers is not None and (m.kind != "hub" or not m.trainable
                                                                       or len(m.handles) > 1
                                                                       or m.features != "sentence"),
                         "trainable_layers takes one fine-tuned module (trainable = true, a single handle, "
                         'features = "sentence")'),
                        (lambda m: m.features == "tokens" and (m.trainable or len(m.handles) > 1),
                         'features = "tokens" takes one frozen module (trainable = false, a single handle)'),
                        (lambda m: m.token_head not in ("pooling", "gru", "lstm"),
                         'token_head must be "pooling", "gru" or "lstm"'),
                        (lambda m: m.token_head != "pooling" and m.features != "tokens",
                         'token_head = "gru" or "lstm" runs over per-token vectors: it needs features = "tokens"'),
                        (lambda m: not _whole(m.rnn_units) or m.rnn_units < 1,
                         "rnn_units must be a whole number >= 1"),
                        (lambda m: not _whole(m.rnn_layers) or m.rnn_layers not in (1, 2),
                         "rnn_layers must be 1 or 2")):
        bad = [m.name for m in models.values() if wrong(m)]
        if bad:
            raise PipelineError(f"{path}: [models.{bad[0]}] {rule}")
    competition = _build(Competition, raw.get("competition", {}), path, "[competition]")
    if problem := competition_problem(competition):
        raise PipelineError(f"{path}: [competition] {problem}")
    from core.metrics import METRICS
    if competition.metric not in METRICS:
        raise PipelineError(f"{path}: [competition] metric {competition.metric!r} is not known; known metrics: "
                            f"{', '.join(METRICS)}")
    return Config(
        path=path,
        competition=competition,
        folds=_build(Folds, raw.get("folds", {}), path, "[folds]"),
        models=models,
        modules={n: ModuleSpec(name=n, builder=_require(t, "builder", path, f"[modules.{n}]"),
                               options={k: v for k, v in t.items() if k != "builder"})
                 for n, t in raw.get("modules", {}).items()},
        blends={n: _without_gpu_only(_build(BlendSpec, {**t, "name": n}, path, f"[blends.{n}]"), models)
                for n, t in raw.get("blends", {}).items()},
        default_blend=raw.get("ensemble", {}).get("default", ""),
        kaggle=_build(KaggleSettings, raw.get("kaggle", {}), path, "[kaggle]"),
        workspace=_build(WorkspaceSettings, raw.get("workspace", {}), path, "[workspace]"),
    )


def competition_problem(c: Competition) -> str:
    """What is wrong with the [competition] table's text columns and format keys; "" when nothing."""
    columns = c.text_columns
    if not columns or not all(isinstance(col, str) and col for col in columns) or len(set(columns)) < len(columns):
        return 'text must be a column name or a list of distinct column names, like text = ["keyword", "text"]'
    if c.target in columns:
        return f"text must not name the target column {c.target!r}: the label would be in the text"
    if not isinstance(c.text_template, str) or not isinstance(c.numeric_ids, bool) or \
            not isinstance(c.extra_columns, tuple) or not all(isinstance(col, str) for col in c.extra_columns):
        return "text_template must be a string, numeric_ids true or false, extra_columns a list of column names"
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(c.text_template) if f is not None]
    except ValueError as e:
        return (f"text_template {c.text_template!r} is not a template ({e}); write columns as {{name}}, "
                f"braces as {{{{ }}}}")
    unknown = [f for f in fields if f not in columns]
    if unknown:
        return (f"text_template names {unknown}, not among the text columns {list(columns)}; add them to text, "
                f"or write each column as {{name}}")
    if c.rows and (not isinstance(c.rows, tuple) or len(c.rows) != 2 or not all(_whole(n) and n > 0 for n in c.rows)):
        return "rows must be the train and test row counts, like rows = [7613, 3263]"
    return ""


def _whole(value) -> bool:
    """A whole number, and no bool (TOML's true is not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _require(table: dict, key: str, path: Path, where: str):
    if key not in table:
        raise PipelineError(f"{path}: {where} needs a {key!r} entry")
    return table[key]


def _build(cls, table: dict, path: Path, where: str):
    """Make a frozen dataclass from a TOML table, naming the table and key of any mistake."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise PipelineError(f"{path}: {where} has unknown key(s) {unknown}; known keys: {sorted(known)}")
    missing = [n for n, f in known.items() if n not in table
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise PipelineError(f"{path}: {where} is missing key(s) {missing}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return cls(**values)
