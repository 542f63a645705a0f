"""Trained models by the CLI's rule, for Python users: `eqbench.load_method` (never random weights).

Above the contract (eqbench/method.py) and the zoo (eqbench/zoo/), which it joins.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import EqbenchError
from .method import SRMethod, create_method, method_entry


def load_method(name: str, weights: str | os.PathLike | None = "zoo", *, size: str | None = None,
                device: str = "cpu", **options) -> SRMethod:
    """A trained model ready for inference (eval mode, on `device`), by the CLI's rule: never random weights.

    weights="zoo": the CPU zoo's checksum-verified model (its `tiny` size and options; size=None or
    "tiny"); weights=PATH: your checkpoint (safetensors, or the method's official .pth) at `size`
    (default "paper") with `options`. Parameter-free methods (bicubic) need no weights. Anything else,
    e.g. weights=None for a learned method, is an EqbenchError naming what to pass.
    """
    import torch

    from .checkpoint import load_weights
    from .devices import check_device

    entry = method_entry(name)
    device = check_device(device, "device")
    if not entry.learned:
        if weights not in (None, "zoo"):
            raise EqbenchError(f"load_method({name!r}): {name} has no weights; leave weights out")
        return create_method(name, size=size or "paper", **options).to(device).eval()
    if weights is None:
        raise EqbenchError(f"load_method({name!r}): no weights; pass weights='zoo' or a checkpoint path "
                           "(create_method gives the untrained architecture)")
    if isinstance(weights, str) and weights == "zoo":
        model = _zoo_model(name, size, options)
    else:
        model = create_method(name, size=size or "paper", **options)
        with torch.no_grad():
            load_weights(model, Path(weights))
    return model.to(device).eval()


def _zoo_model(name: str, size: str | None, options: dict) -> SRMethod:
    from .checkpoint import load_weights
    from .zoo import verify, zoo_entries, zoo_entry

    z = zoo_entry(name)
    if z is None:
        raise EqbenchError(f"load_method({name!r}): the zoo has no {name} model (it has "
                           f"{', '.join(sorted(zoo_entries()))}); pass weights=PATH to your checkpoint")
    if size not in (None, z.size):
        raise EqbenchError(f"load_method({name!r}, size={size!r}): the zoo's {name} is size {z.size!r}; "
                           f"use size={z.size!r} or pass weights=PATH")
    clash = {k: v for k, v in options.items() if z.options.get(k, v) != v}
    if clash:
        raise EqbenchError(f"load_method({name!r}): the zoo model was trained with {z.options}, not {clash}; "
                           "pass weights=PATH for other options")
    model = create_method(name, size=z.size, **{**z.options, **options})
    return load_weights(model, verify(z))
