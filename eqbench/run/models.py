"""Which model each method name means in a run: size, options and weights, resolved once at the edge.

Per method, in order: parameter-free methods need nothing; `--weights METHOD=PATH` is the user's
checkpoint at `--size` (default paper); `--random-init` evaluates an untrained model (smoke tests);
otherwise the CPU zoo's model (its `tiny` size and options, checksum-verified). A learned method with
none of these is an error when named explicitly and skipped with a warning under `--methods all`:
never a silent fallback to random weights.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import EqbenchError


@dataclass(frozen=True)
class ModelSpec:
    method: str
    size: str
    source: str  # "parameter-free" | "user" | "zoo" | "random" | "plugin" (a plugin's own weights)
    weights: str | None = None
    options: tuple[tuple[str, object], ...] = ()

    def build(self, device: str = "cpu", seed: int | None = None):
        import torch

        from ..method import create_method

        if seed is not None:
            torch.manual_seed(seed)
        model = create_method(self.method, size=self.size, **dict(self.options))
        if self.weights:
            from ..checkpoint import load_weights

            load_weights(model, self.weights)
        return model.to(device).eval()

    def describe(self) -> dict:
        d = {"method": self.method, "size": self.size, "source": self.source, "options": dict(self.options),
             "weights": self.weights, "sha256": None}
        if self.weights:
            from ..zoo import sha256_file

            d["sha256"] = sha256_file(Path(self.weights))
        from ..method import method_entry

        plugin = method_entry(self.method).plugin
        if plugin is not None:
            from ..plugins import provenance

            d["plugin"] = provenance(plugin)
        return d


def resolve_models(requested: list[str], *, weights: dict[str, str], size: str | None = None,
                   random_init: bool = False, use_zoo: bool = True, fallback_random: bool = False) -> list[ModelSpec]:
    """ModelSpecs for `requested` (names or ['all']); validates every name before any work.

    `fallback_random`: methods with neither weights nor a zoo model get random weights (for profiles,
    whose costs do not depend on the weights)."""
    from ..method import list_methods, method_entry
    from ..zoo import verify, zoo_entry

    everything = "all" in requested  # `all` = the built-in methods; plugins are named (`all mypkg.m:make`)
    names = list(dict.fromkeys([*(list_methods(plugins=False) if everything else []),
                                *(r for r in requested if r != "all")]))
    entries = {n: method_entry(n) for n in names}
    if size not in (None, "paper", "tiny"):
        raise EqbenchError(f"unknown --size {size!r}: use paper or tiny")
    for m in weights:
        if m not in names:
            raise EqbenchError(f"--weights names {m!r}, which is not among --methods {' '.join(names)}")
    specs, missing = [], []
    for n in names:
        if not method_entry(n).learned:
            specs.append(ModelSpec(n, "paper", "parameter-free"))
        elif n in weights:
            _check_weights_file(n, str(weights[n]))
            specs.append(ModelSpec(n, size or "paper", "user", str(weights[n])))
        elif entries[n].plugin is not None:
            specs.append(ModelSpec(n, "paper", "plugin"))
        elif random_init:
            specs.append(ModelSpec(n, size or "paper", "random"))
        elif use_zoo and (z := zoo_entry(n)) is not None and size in (None, z.size):
            specs.append(ModelSpec(n, z.size, "zoo", str(verify(z)), tuple(sorted(z.options.items()))))
        elif fallback_random:
            specs.append(ModelSpec(n, size or "paper", "random"))
        else:
            missing.append(n)
    if missing:
        why = f" at size {size} (the zoo has tiny models)" if size == "paper" else ""
        msg = (f"no weights for {', '.join(missing)}{why}: pass --weights {missing[0]}=PATH "
               "(or --random-init to use untrained weights, e.g. for a smoke test)")
        if not everything:
            raise EqbenchError(msg)
        from ..errors import EqbenchWarning

        warnings.warn(f"skipping {', '.join(missing)}: {msg}", EqbenchWarning, stacklevel=2)
    return specs


def _check_weights_file(method: str, path: str) -> None:
    from ..checkpoint import check_weights_file

    p = Path(path)
    if p.is_dir():
        raise EqbenchError(f"--weights {method}={path} is a folder; give the weights file in it "
                           "(e.g. final.safetensors)")
    if not p.is_file():
        raise EqbenchError(f"--weights {method}={path}: file not found; check the path")
    check_weights_file(p)
