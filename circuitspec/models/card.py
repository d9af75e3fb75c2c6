"""The model card: everything known about a trained model, as one pydantic object.

A card records the architecture, the task, the training recipe (with the exact
command that reproduces it), the measured results and the sha256 of the weights
file. It is written next to the weights as ``NAME.json``. This module does not
import torch, so listing a zoo stays cheap.

Names follow the paper: ``[ins1_]{add|sub|mix}_d{digits}_l{layers}_h{heads}_t{steps/1000}K_s{seed}``,
e.g. ``add_d6_l2_h3_t15K_s372001``; ``add_rev_d5_...`` is a model in the reversed layout (answer
digits units first), ``_nosign`` without the sign token, ``_unpad`` with blank operand padding
(``add_rev_nosign_d5_...`` combines them). ``parse_name`` also accepts a name without the ``_tNK`` part (the training
length then comes from elsewhere).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from circuitspec.errors import ModelError, TaskError
from circuitspec.tasks.layout import MAX_DIGITS, layout_name
from circuitspec.tasks.registry import check_ref, vocabulary
from circuitspec.vocabulary import DEFAULT_WIDTH, ModelShape, zoo_shape

CARD_VERSION = 1
# Far above any arithmetic transformer, low enough that a corrupt or hostile card cannot make
# shape checks or expansion allocate without bound.
MAX_LAYERS = 256
MAX_HEADS_PER_LAYER = 256
MAX_WIDTH = 65_536  # d_model, d_head, d_mlp
MAX_VOCAB = 65_536
MAX_CTX = 4_096

_NAME_RE = re.compile(
    r"^(?P<ins1>ins1_)?(?P<op>add|sub|mix)(?P<rev>_rev)?(?P<nosign>_nosign)?(?P<unpad>_unpad)?_d(?P<digits>\d+)_l(?P<layers>\d+)_h(?P<heads>\d+)"
    r"(?:_t(?P<ksteps>\d+(?:\.\d+)?)K)?_s(?P<seed>\d+)$"
)
NAME_PATTERN = "[ins1_]{add|sub|mix}[_rev][_nosign][_unpad]_d{digits}_l{layers}_h{heads}[_t{steps/1000}K]_s{seed}"
_LAYOUT_MARKS = (("reversed", "_rev"), ("nosign", "_nosign"), ("unpadded", "_unpad"))  # name part of each layout change
NAME_CHARS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")  # a file name in any folder: no '/', no leading '.'
NAME_RULE = "a model name is up to 200 letters, digits, '_', '.' and '-', not starting with '.' or '-'"


def check_name(name: str, file: str | None = None) -> str:
    """A name usable as NAME.json / NAME.safetensors inside a folder (ModelError otherwise)."""
    if not isinstance(name, str) or not NAME_CHARS.fullmatch(name):
        raise ModelError(f"{name!r:.80} is not a usable model name", file=file, hint=NAME_RULE)
    return name


@dataclass(frozen=True)
class ParsedName:
    """The fields a model name carries."""

    op: str
    digits: int
    n_layers: int
    n_heads: int
    seed: int
    steps: int | None
    ins1: bool
    layout: str | None = None  # from _rev, _nosign, _unpad (``layout.layout_name``); None: the default

    def name(self, steps: int | None = None) -> str:
        steps = self.steps if steps is None else steps
        prefix = "ins1_" if self.ins1 else ""
        t = f"_t{format_ksteps(steps)}K" if steps is not None else ""
        changes = set((self.layout or "paper").split("_"))
        marks = "".join(mark for change, mark in _LAYOUT_MARKS if change in changes)
        return f"{prefix}{self.op}{marks}_d{self.digits}_l{self.n_layers}_h{self.n_heads}{t}_s{self.seed}"


def format_ksteps(steps: int) -> str:
    """6000 -> '6', 1500 -> '1.5' (the ``tNK`` part of a name)."""
    k = steps / 1000
    return str(int(k)) if k == int(k) else f"{k:g}"


def parse_name(name: str) -> ParsedName:
    """Split a paper-style model name into its fields (ModelError if it is not one)."""
    m = _NAME_RE.match(name)
    if not m:
        raise ModelError(
            f"{name!r} is not a model name",
            hint=f"names look like {NAME_PATTERN}, e.g. add_d6_l2_h3_t15K_s372001",
        )
    steps = None
    if m["ksteps"] is not None:
        steps = round(float(m["ksteps"]) * 1000)
    if m["ins1"] and m["op"] != "mix":
        raise ModelError(f"{name!r}: ins1 initialisation is defined for mixed models only", hint="use ins1_mix_...")
    return ParsedName(
        op=m["op"],
        digits=int(m["digits"]),
        n_layers=int(m["layers"]),
        n_heads=int(m["heads"]),
        seed=int(m["seed"]),
        steps=steps,
        ins1=bool(m["ins1"]),
        layout=None if not (m["rev"] or m["nosign"] or m["unpad"]) else layout_name(bool(m["rev"]), not m["nosign"], not m["unpad"]),
    )


def strip_steps(name: str) -> str:
    """The name without its ``_tNK`` part: ``add_d6_l2_h3_t6K_s1`` -> ``add_d6_l2_h3_s1``."""
    return re.sub(r"_t\d+(?:\.\d+)?K(?=_s\d+$)", "", name)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ACT_FNS = ("relu", "gelu", "gelu_new", "silu")
NORMALIZATIONS = ("LN", "LNPre", "RMS", None)
POSITIONAL_EMBEDDINGS = ("standard", "rotary")


class Architecture(_Strict):
    """A TransformerLens decoder (``TransformerBridge.boot_native``): attention then an MLP in each
    block (attention only with ``attn_only``, then ``d_mlp`` is 0), pre-normalization of the
    given type (None: none), learned absolute positions or rotary ones over the whole head.
    The zoo's models are the first family (LN, standard, relu / gelu); the engine runs the rest
    through its hooked path."""

    n_layers: int = Field(ge=1, le=MAX_LAYERS)
    n_heads: int = Field(ge=1, le=MAX_HEADS_PER_LAYER)
    d_model: int = Field(ge=1, le=MAX_WIDTH)
    d_head: int = Field(ge=1, le=MAX_WIDTH)
    d_mlp: int = Field(ge=0, le=MAX_WIDTH)
    n_ctx: int = Field(ge=2, le=MAX_CTX)
    d_vocab: int = Field(default=15, ge=2, le=MAX_VOCAB)
    act_fn: Literal["relu", "gelu", "gelu_new", "silu"] = "relu"
    normalization: Literal["LN", "LNPre", "RMS"] | None = "LN"
    positional_embedding: Literal["standard", "rotary"] = "standard"
    attn_only: bool = False

    @model_validator(mode="after")
    def _mlp_or_not(self) -> "Architecture":
        if self.attn_only != (self.d_mlp == 0):
            raise ValueError("d_mlp is 0 exactly when attn_only is set (an attention-only model has no MLPs)")
        return self


class TaskSpec(_Strict):
    """The task a model answers: ``op`` is add, sub, mix or a plug-in task's import path
    (``module:Class``, see ``tasks.registry``); ``digits`` is its size."""

    op: str
    digits: int = Field(ge=1, le=MAX_DIGITS)
    layout: str | None = Field(default=None, description="token layout (tasks.layout.LAYOUTS for arithmetic: paper, reversed, nosign, unpadded and their combinations); None: the task's default")

    @field_validator("op")
    @classmethod
    def _task_loads(cls, v: str) -> str:
        try:
            return check_ref(v)
        except TaskError as err:
            raise ValueError(err.render()) from None


class Recipe(_Strict):
    """How the model was trained. ``command`` reproduces it exactly (same seed, same thread count)."""

    steps: int = Field(ge=1)
    batch: int = Field(default=64, ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_fraction: float = Field(default=0.2, ge=0, le=1)
    warmup_start: float = Field(default=0.01, gt=0, le=1, description="warm-up starts at this fraction of lr")
    schedule: Literal["warmup-cosine"] = "warmup-cosine"
    enrich: bool = True
    hard_fraction: float = Field(default=0.0, ge=0, le=1, description="share of each batch drawn from sparse and cascade questions (tasks.hard)")
    sub_fraction: float | None = Field(default=None, ge=0, le=1, description="mixed models: probability that a training row is subtraction")
    seed: int
    init_from: str | None = Field(default=None, description="ins1: the addition model copied into the first layers/heads")
    device: str = "cpu"
    threads: int | None = Field(default=1, description="torch.set_num_threads during training (None: torch default)")
    checkpoint_every: int | None = None
    command: str = ""
    train_seconds: float | None = None
    torch_version: str | None = None


class Interval(_Strict):
    """A Clopper-Pearson interval on failures per million."""

    low: float
    high: float
    confidence: float = 0.95


class UniformResult(_Strict):
    """Teacher-forced accuracy on uniformly drawn questions (any answer token wrong = failure)."""

    op: str
    questions: int
    failures: int
    failures_per_million: float
    interval: Interval
    seed: int


class ClassResult(_Strict):
    questions: int
    failures: int
    accuracy: float


class FamilyResult(_Strict):
    """Teacher-forced accuracy on one hard-question family (``circuitspec.tasks.families``)."""

    op: str
    questions: int
    failures: int
    interval: Interval
    exhaustive: bool
    seed: int
    size: int = Field(description="the size the family was built with (sampled families have this many questions)")
    failed_classes: dict[str, int] = Field(default_factory=dict, description="failures per question class")
    examples: list[str] = Field(default_factory=list, description="a few failed questions with the model's answer")


class SearchResult(_Strict):
    """A structured search for failing questions (``models.search``), each failure shrunk to its simplest form."""

    questions: int
    failures: int
    seed: int
    shrunk: list[str] = Field(default_factory=list, description="distinct shrunk failures, with the model's answer")
    shrunk_from: list[int] = Field(default_factory=list, description="how many failures shrank to each")


class Results(_Strict):
    final_loss: float | None = Field(default=None, description="mean training loss over the last steps")
    uniform: UniformResult
    per_op: dict[str, UniformResult] = Field(default_factory=dict, description="mixed models: each operation alone")
    per_class: dict[str, ClassResult] = Field(default_factory=dict)
    class_seed: int | None = None
    families: dict[str, FamilyResult] = Field(default_factory=dict, description="hard-question families (zoo eval --families)")
    search: SearchResult | None = Field(default=None, description="zoo eval --search N")
    eval_seconds: float | None = None

    @property
    def questions(self) -> int:
        return self.uniform.questions

    @property
    def failures(self) -> int:
        return self.uniform.failures

    @property
    def failures_per_million(self) -> float:
        return self.uniform.failures_per_million

    @property
    def min_class_accuracy(self) -> float | None:
        return min((c.accuracy for c in self.per_class.values()), default=None)


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_version: int = CARD_VERSION
    name: str
    architecture: Architecture
    task: TaskSpec
    recipe: Recipe | None = None
    results: Results | None = None
    weights_sha256: str = Field(default="", description="sha256 of NAME.safetensors, checked on load")
    notes: str = ""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not NAME_CHARS.fullmatch(v):
            raise ValueError(NAME_RULE)
        return v

    @model_validator(mode="after")
    def _fits_task(self) -> ModelCard:
        """The task's questions must fit the architecture, or every forward pass fails."""
        a, t = self.architecture, self.task
        voc = vocabulary(t.op)
        if t.digits > voc.max_digits:
            raise ValueError(f"{t.op} takes at most {voc.max_digits} digits, got {t.digits}")
        try:
            n_ctx = voc.layout(t.digits, t.layout).n_ctx
        except TaskError as err:
            raise ValueError(err.render()) from None
        if a.n_ctx != n_ctx:
            raise ValueError(f"{t.digits}-digit questions take {n_ctx} tokens, but the architecture's n_ctx is {a.n_ctx}")
        used = voc.tokens_used(t.digits, t.layout)
        if a.d_vocab < used:
            raise ValueError(f"the task uses {used} tokens, but the architecture's d_vocab is {a.d_vocab}")
        return self

    @property
    def shape(self) -> ModelShape:
        a = self.architecture
        return ModelShape(
            op=self.task.op,
            digits=self.task.digits,
            n_layers=a.n_layers,
            n_heads=a.n_heads,
            n_ctx=a.n_ctx,
            d_mlp=a.d_mlp,
            d_model=a.d_model,
            d_head=a.d_head,
            layout=self.task.layout,
        )

    @property
    def short_name(self) -> str:
        """The name without ``_tNK`` (what ``load`` also accepts)."""
        return strip_steps(self.name)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


ARCH_HELP = "comma-separated: a normalization (LN, LNPre, RMS, none), positions (standard, rotary), an activation (relu, gelu, gelu_new, silu), attn-only"


def parse_arch(text: str) -> dict:
    """``RMS,rotary,silu`` -> the ``Architecture`` fields it sets (ModelError for a word it does not know).
    The zoo's family (LN, standard, relu) is the default, so ``arch_text`` of it is empty."""
    fields: dict = {}
    words = {**{str(n).lower(): ("normalization", n) for n in NORMALIZATIONS}, **{p: ("positional_embedding", p) for p in POSITIONAL_EMBEDDINGS}}
    words.update({a: ("act_fn", a) for a in ACT_FNS})
    words["attn-only"] = ("attn_only", True)
    for word in (w.strip() for w in text.split(",") if w.strip()):
        if word.lower() not in words:
            from circuitspec.errors import unknown

            raise unknown("architecture word", word, [*(str(n) for n in NORMALIZATIONS if n), "none", *POSITIONAL_EMBEDDINGS, *ACT_FNS, "attn-only"], ModelError)
        field, value = words[word.lower()]
        if field in fields and fields[field] != value:
            raise ModelError(f"--arch {text!r} sets {field} twice", hint=ARCH_HELP)
        fields[field] = value
    if fields.get("attn_only"):
        fields["d_mlp"] = 0
    return fields


def arch_text(arch: Architecture) -> str:
    """The ``--arch`` words of an architecture outside the zoo's family ('' for LN, standard, relu)."""
    words = []
    if arch.normalization != "LN":
        words.append(str(arch.normalization) if arch.normalization else "none")
    if arch.positional_embedding != "standard":
        words.append(arch.positional_embedding)
    if arch.act_fn != "relu":
        words.append(arch.act_fn)
    if arch.attn_only:
        words.append("attn-only")
    return ",".join(words)


def default_architecture(digits: int, n_layers: int, n_heads: int, width: int = DEFAULT_WIDTH, d_head: int | None = None) -> Architecture:
    """The zoo's shape (``vocabulary.zoo_shape``): d_head = width / 4 unless given, d_mlp = 4 * width."""
    s = zoo_shape("add", digits, n_layers, n_heads, width=width, d_head=d_head)
    return Architecture(n_layers=s.n_layers, n_heads=s.n_heads, d_model=s.d_model, d_head=s.d_head, d_mlp=s.d_mlp, n_ctx=s.n_ctx)
