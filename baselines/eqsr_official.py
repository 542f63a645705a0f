"""Reading official EQSR checkpoints (BasicSR `net_g_*.pth`: {'params': sd, 'params_ema': sd}).

The official test configs load `params_ema` (BasicSR `param_key_g: params_ema`); `params` holds the raw
(non-averaged) weights. Keys are renamed to this implementation's module names by the table below;
the two relative-position index buffers of the official model are checked against ours and dropped.
"""

from __future__ import annotations

import re

import torch

from eqbench.checkpoint import torch_load_safe
from eqbench.errors import EqbenchError

PARAM_KEYS = ("params_ema", "params")

_G = r"^layers\.(\d+)\.residual_group\."
_RENAMES = [  # (official regex, ours); first match wins
    (r"^conv_first\.", "encoder.conv_first."),
    (r"^patch_embed\.norm\.", "encoder.embed_norm."),
    (_G + r"mbconv\.net1\.", r"encoder.groups.\1.afe.proj_in."),
    (_G + r"mbconv\.norm1\.0\.", r"encoder.groups.\1.afe.norm1."),
    (_G + r"mbconv\.net2\.weight$", r"encoder.groups.\1.afe.conv.weight"),
    (_G + r"mbconv\.net2\.to_style\.", r"encoder.groups.\1.afe.conv.style."),
    (_G + r"mbconv\.norm2\.0\.", r"encoder.groups.\1.afe.norm2."),
    (_G + r"mbconv\.net3\.0\.gate\.1\.", r"encoder.groups.\1.afe.se.fc1."),
    (_G + r"mbconv\.net3\.0\.gate\.3\.", r"encoder.groups.\1.afe.se.fc2."),
    (_G + r"mbconv\.net3\.1\.", r"encoder.groups.\1.afe.proj_out."),
    (_G + r"blocks\.(\d+)\.attn\.relative_position_bias_table$", r"encoder.groups.\1.wsa.\2.attn.rel_bias"),
    (_G + r"blocks\.(\d+)\.", r"encoder.groups.\1.wsa.\2."),
    (_G + r"overlap_attn\.relative_position_bias_table$", r"encoder.groups.\1.oca.rel_bias"),
    (_G + r"overlap_attn\.", r"encoder.groups.\1.oca."),
    (r"^layers\.(\d+)\.conv\.", r"encoder.groups.\1.conv."),
    (r"^norm\.", "encoder.norm."),
    (r"^conv_after_body\.", "encoder.conv_after_body."),
    (r"^upsample\.head\.0\.", "upsampler.head."),
    (r"^upsample\.inv([12])\.", lambda m: f"upsampler.blocks.{int(m.group(1)) - 1}."),
    (r"^upsample\.to_rgb\.1\.", "upsampler.to_rgb."),
    (r"^upsample\.rbf1\.lengthscale$", "upsampler.lengthscale"),
]
_BLOCK_RENAMES = {  # inside upsampler.blocks.N.
    "norm1.body.weight": "norm1_w", "norm1.body.bias": "norm1_b",
    "norm2.body.weight": "norm2_w", "norm2.body.bias": "norm2_b",
    "attn.seblock.0.weight": "kernel_reduce.weight", "attn.seblock.0.bias": "kernel_reduce.bias",
    "attn.seblock.2.weight": "kernel_expand.weight", "attn.seblock.2.bias": "kernel_expand.bias",
    "ffn.conv1.weight": "fc1.weight", "ffn.conv1.bias": "fc1.bias",
    "ffn.conv2.weight": "fc2.weight", "ffn.conv2.bias": "fc2.bias", "ffn.CA.conv.weight": "eca",
}
_INDEX_BUFFERS = {"relative_position_index_SA": "rel_self", "relative_position_index_OCA": "rel_overlap"}


def rename_key(key: str) -> str:
    """Official key -> ours; keys the table does not know are returned unchanged (reported later)."""
    for pat, rep in _RENAMES:
        new, n = re.subn(pat, rep, key)
        if n:
            m = re.match(r"^(upsampler\.blocks\.\d+\.)(.*)$", new)
            if m and m.group(2) in _BLOCK_RENAMES:
                new = m.group(1) + _BLOCK_RENAMES[m.group(2)]
            return new
    return key


def read_basicsr(path, param_key: str) -> dict:
    """The state_dict under `param_key` of a BasicSR checkpoint, `module.` prefixes removed."""
    if param_key not in PARAM_KEYS:
        raise EqbenchError(f"param_key must be one of {', '.join(PARAM_KEYS)}, got {param_key!r}")
    obj = torch_load_safe(path)
    if not isinstance(obj, dict) or not any(k in obj for k in PARAM_KEYS):
        keys = ", ".join(map(str, list(obj)[:5])) if isinstance(obj, dict) else type(obj).__name__
        raise EqbenchError(f"{path} is not a BasicSR EQSR checkpoint: expected a dict with 'params_ema' "
                           f"and/or 'params', found {keys}")
    if param_key not in obj:
        other = next(k for k in PARAM_KEYS if k in obj)
        raise EqbenchError(f"{path} has no {param_key!r} weights (it has {other!r}); "
                           f"pass param_key={other!r} to load those")
    sd = obj[param_key]
    if not isinstance(sd, dict):
        raise EqbenchError(f"{path}: {param_key!r} is not a state_dict")
    return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}


def convert(sd: dict, encoder: torch.nn.Module, path) -> dict:
    """Rename keys; check the index buffers (they encode the window size) against the model's."""
    out = {}
    for k, v in sd.items():
        if k in _INDEX_BUFFERS:
            ours = getattr(encoder, _INDEX_BUFFERS[k], None)
            if ours is None or tuple(ours.shape) != tuple(v.shape) or not torch.equal(ours.cpu(), v.cpu()):
                shape = None if ours is None else tuple(ours.shape)
                raise EqbenchError(f"{path}: {k} {tuple(v.shape)} does not match this model's {shape}: "
                                   "the checkpoint was trained with another window size or overlap ratio")
            continue
        out[rename_key(k)] = v
    return out
