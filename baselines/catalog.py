"""What the built-in methods are, without importing them (no torch): name, module, description, sizes,
options. `eqbench methods`, `--help` and `--version` read only this. The module's `@register_method`
must agree with its entry here: `eqbench.method.register_method` raises at import time when a
description, size list or option list differs, so this table cannot drift from the factories."""

from __future__ import annotations

from typing import NamedTuple


class MethodInfo(NamedTuple):
    name: str
    module: str  # the module (under baselines) whose import registers the factory
    description: str
    sizes: tuple[str, ...]
    options: tuple[str, ...]


_SIZES = ("paper", "tiny")
_EQSR_TILING = ("scale_input", "tile", "tile_overlap", "band_rows")
_EQSR_OPTIONS = (*_EQSR_TILING, "official_order")

BUILTIN: tuple[MethodInfo, ...] = (
    MethodInfo("arbsr", "arbsr", "ArbSR (ICCV 2021): scale-aware adapters + upsampler on a fixed-scale backbone; "
               "backbone rcan (ArbRCAN) | edsr (ArbEDSR)", _SIZES, ("backbone",)),
    MethodInfo("bicubic", "bicubic", "MATLAB-compatible bicubic interpolation (no parameters)", _SIZES, ("uint8",)),
    MethodInfo("eqsr", "eqsr", "EQSR (CVPR 2023): HAT-style backbone with scale-modulated AFE blocks + Neural "
               "Kriging upsampler; variants baseline/A-E of the paper's ablation", _SIZES,
               ("variant", *_EQSR_TILING, "param_key", "sincos_arith", "official_order")),
    MethodInfo("eqsr-edsr", "eqsr_plugins", "EDSR-baseline + EQSR's AFE blocks + Neural Kriging (EQSR Table 3)",
               _SIZES, _EQSR_OPTIONS),
    MethodInfo("eqsr-swinir", "eqsr_plugins", "SwinIR (LTE's) + EQSR's AFE blocks + Neural Kriging (EQSR Table 3)",
               _SIZES, _EQSR_OPTIONS),
    MethodInfo("liif", "liif", "LIIF (CVPR 2021): local implicit image function; edsr-baseline/rdn/swinir", _SIZES,
               ("encoder", "local_ensemble", "feat_unfold", "cell_decode", "hidden", "encoder_args", "cell_clip",
                "official_order")),
    MethodInfo("lte", "lte", "LTE (CVPR 2022): local texture estimator; encoders edsr-baseline/rdn/swinir", _SIZES,
               ("encoder", "hidden_dim", "mlp_hidden", "cell_clip", "encoder_args")),
    MethodInfo("metasr", "metasr", "Meta-SR (CVPR 2019): per-pixel conv weights from (scale, offset); variant "
               "official (MetaRDN) | liif (encoder edsr-baseline | rdn)", _SIZES, ("variant", "encoder")),
)

BY_NAME: dict[str, MethodInfo] = {m.name: m for m in BUILTIN}
