"""Sites: the places in a model that can be ablated or patched.

A site is one token position in one layer: an attention head (its ``hook_z`` output
at that position), the MLP layer (``hook_post``), an explicit set of MLP neurons, or
the residual stream after the layer (``hook_resid_post``). Sites print as in the
paper and parse back::

    P16.L0.H1        head 1 of layer 0 at position 16
    P16.L1.MLP       the MLP of layer 1 at position 16
    P16.L1.N[12,907] neurons 12 and 907 of that MLP
    P16.L1.RESID     the residual stream after layer 1 at position 16

Sites are frozen, hashable and ordered by (position, layer, kind, head, neurons), the
order the paper lists them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from circuitspec.errors import EngineError, unknown
from circuitspec.vocabulary import SITE_KINDS, ModelShape

_KIND_RANK = {k: i for i, k in enumerate(SITE_KINDS)}

# TransformerLens hook names, one per kind of site.
HOOKS = {
    "head": "blocks.{layer}.attn.hook_z",
    "mlp": "blocks.{layer}.mlp.hook_post",
    "neurons": "blocks.{layer}.mlp.hook_post",
    "resid": "blocks.{layer}.hook_resid_post",
}


@dataclass(frozen=True)
class Site:
    """One place in a model. Build with ``Site.for_head`` / ``for_mlp`` / ``for_neurons`` /
    ``for_resid`` or ``Site.parse``."""

    kind: str
    layer: int
    position: int
    head: int | None = None
    neurons: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in _KIND_RANK:
            raise unknown("site kind", self.kind, SITE_KINDS, EngineError)
        for name in ("layer", "position"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise EngineError(f"site {name} must be a non-negative integer, got {value!r}")
        if self.kind == "head":
            if not isinstance(self.head, int) or isinstance(self.head, bool) or self.head < 0:
                raise EngineError(f"a head site needs a non-negative head index, got {self.head!r}")
        elif self.head is not None:
            raise EngineError(f"a {self.kind} site has no head index (got {self.head!r})")
        if self.kind == "neurons":
            idx = tuple(self.neurons)
            if not idx:
                raise EngineError("a neurons site needs at least one neuron index")
            if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in idx):
                raise EngineError(f"neuron indices must be non-negative integers, got {list(idx)}")
            object.__setattr__(self, "neurons", tuple(sorted(set(idx))))
        elif self.neurons:
            raise EngineError(f"a {self.kind} site has no neuron indices")

    # -- constructors -------------------------------------------------------------
    @classmethod
    def for_head(cls, layer: int, position: int, head: int) -> "Site":
        return cls("head", layer, position, head=head)

    @classmethod
    def for_mlp(cls, layer: int, position: int) -> "Site":
        return cls("mlp", layer, position)

    @classmethod
    def for_neurons(cls, layer: int, position: int, neurons: Iterable[int]) -> "Site":
        return cls("neurons", layer, position, neurons=tuple(neurons))

    @classmethod
    def for_resid(cls, layer: int, position: int) -> "Site":
        return cls("resid", layer, position)

    _PATTERN = re.compile(r"P(\d+)\.L(\d+)\.(?:H(\d+)|(MLP)|N\[([\d,\s]*)\]|(RESID))")

    @classmethod
    def parse(cls, text: str) -> "Site":
        """Parse ``P16.L0.H1``, ``P16.L1.MLP``, ``P16.L1.N[12,907]`` or ``P16.L1.RESID``."""
        if isinstance(text, Site):
            return text
        m = cls._PATTERN.fullmatch(str(text).strip())
        if not m:
            raise EngineError(
                f"cannot parse site {text!r}",
                hint="write P<position>.L<layer>.H<head>, P<position>.L<layer>.MLP, "
                "P<position>.L<layer>.N[i,j,...] or P<position>.L<layer>.RESID",
            )
        pos, layer = int(m.group(1)), int(m.group(2))
        if m.group(3) is not None:
            return cls.for_head(layer, pos, int(m.group(3)))
        if m.group(4):
            return cls.for_mlp(layer, pos)
        if m.group(5) is not None:
            parts = [p for p in m.group(5).replace(" ", "").split(",") if p]
            return cls.for_neurons(layer, pos, (int(p) for p in parts))
        return cls.for_resid(layer, pos)

    # -- printing and ordering ----------------------------------------------------
    def __str__(self) -> str:
        base = f"P{self.position}.L{self.layer}."
        if self.kind == "head":
            return base + f"H{self.head}"
        if self.kind == "mlp":
            return base + "MLP"
        if self.kind == "neurons":
            return base + "N[" + ",".join(str(i) for i in self.neurons) + "]"
        return base + "RESID"

    @property
    def sort_key(self) -> tuple:
        return (self.position, self.layer, _KIND_RANK[self.kind], -1 if self.head is None else self.head, self.neurons)

    def __lt__(self, other: "Site") -> bool:
        if not isinstance(other, Site):
            return NotImplemented
        return self.sort_key < other.sort_key

    def __le__(self, other: "Site") -> bool:
        if not isinstance(other, Site):
            return NotImplemented
        return self.sort_key <= other.sort_key

    def __gt__(self, other: "Site") -> bool:
        if not isinstance(other, Site):
            return NotImplemented
        return self.sort_key > other.sort_key

    def __ge__(self, other: "Site") -> bool:
        if not isinstance(other, Site):
            return NotImplemented
        return self.sort_key >= other.sort_key

    @property
    def hook(self) -> str:
        """The TransformerLens hook this site lives on."""
        return HOOKS[self.kind].format(layer=self.layer)

    # -- validation ---------------------------------------------------------------
    def check(self, shape: ModelShape) -> "Site":
        """Raise ``EngineError`` unless the site exists in a model of this shape."""
        if self.layer >= shape.n_layers:
            raise EngineError(
                f"site {self}: layer {self.layer} is outside the model (layers 0..{shape.n_layers - 1})",
                hint=f"the model has {shape.n_layers} layer(s)",
            )
        if self.position >= shape.n_ctx:
            raise EngineError(
                f"site {self}: position {self.position} is outside the model (positions 0..{shape.n_ctx - 1})",
                hint=f"the model's context is {shape.n_ctx} tokens",
            )
        if self.kind == "head" and self.head >= shape.n_heads:
            raise EngineError(
                f"site {self}: head {self.head} is out of range (heads 0..{shape.n_heads - 1})",
                hint=f"the model has {shape.n_heads} head(s) per layer",
            )
        if self.kind in ("mlp", "neurons") and shape.d_mlp == 0:
            raise EngineError(f"site {self}: the model is attention-only (it has no MLPs)", hint="place the node on a head")
        if self.kind == "neurons" and self.neurons[-1] >= shape.d_mlp:
            raise EngineError(
                f"site {self}: neuron {self.neurons[-1]} is out of range (neurons 0..{shape.d_mlp - 1})",
                hint=f"the MLP has {shape.d_mlp} neurons",
            )
        return self


def parse_sites(items: Iterable[str | Site]) -> list[Site]:
    return [Site.parse(x) for x in items]


def check_sites(sites: Iterable[Site], shape: ModelShape) -> tuple[Site, ...]:
    out = []
    for site in sites:
        if not isinstance(site, Site):
            site = Site.parse(site)
        out.append(site.check(shape))
    return tuple(out)


def all_sites(
    shape: ModelShape,
    *,
    kinds: Sequence[str] = ("head", "mlp"),
    positions: Iterable[int] | None = None,
    layers: Iterable[int] | None = None,
) -> list[Site]:
    """Every head and MLP site (or the given ``kinds`` of 'head', 'mlp', 'resid') of a model, sorted
    (an attention-only model has no MLP sites)."""
    for k in kinds:
        if k not in ("head", "mlp", "resid"):
            raise unknown("site kind to enumerate", k, ("head", "mlp", "resid"), EngineError)
    pos = list(range(shape.n_ctx)) if positions is None else list(positions)
    lay = list(range(shape.n_layers)) if layers is None else list(layers)
    out: list[Site] = []
    for p in pos:
        for layer in lay:
            if "head" in kinds:
                out.extend(Site.for_head(layer, p, h) for h in range(shape.n_heads))
            if "mlp" in kinds and shape.d_mlp:
                out.append(Site.for_mlp(layer, p))
            if "resid" in kinds:
                out.append(Site.for_resid(layer, p))
    return sorted(check_sites(out, shape))
