"""Linear CKA (centred kernel alignment) between feature sets, full-batch and minibatch.

Features are flattened per example: an (n, ...) tensor becomes (n, D), and only its n x n linear
Gram matrix K = X X^T enters, so two feature sets may have different D (e.g. decoder features at two
output sizes). Everything is accumulated in float64.

Estimators (Kornblith et al. 2019; Nguyen et al. 2021 for the minibatch form):
  * HSIC_0(K, L) = tr(K H L H) / (n-1)^2 with H = I - 11^T/n (biased);
    CKA_biased = HSIC_0(K, L) / sqrt(HSIC_0(K, K) HSIC_0(L, L)).
  * HSIC_1(K, L) = [tr(Kt Lt) + (1^T Kt 1)(1^T Lt 1) / ((n-1)(n-2)) - 2/(n-2) 1^T Kt Lt 1] / (n(n-3)),
    Kt, Lt = K, L with zero diagonal, n >= 4 (unbiased).
  * minibatch CKA = sum_i HSIC_1(K_i, L_i) / sqrt(sum_i HSIC_1(K_i, K_i) * sum_i HSIC_1(L_i, L_i)) over
    minibatches i: the HSICs are summed first and the ratio taken once.

The EQSR supplement's Eq. 5 prints the minibatch form with a 1/k (k = number of batches) in the
numerator only, which would give CKA(X, X) = 1/k. That is a typo: with 1/k in the numerator and in
both sums of the denominator the factors cancel. This module implements the corrected form.

A ratio whose denominator is not positive (a constant feature map, for which CKA is undefined, or an
unbiased self-HSIC that came out <= 0 on a tiny batch) is returned as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..errors import EqbenchError

# Elements per float64 chunk when forming a Gram matrix: bounds the float64 copy of wide features
_CHUNK_ELEMS = 1 << 23


def _as_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise EqbenchError(f"{what} must be a torch.Tensor or numpy array of shape (n, ...), got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] < 1:
        raise EqbenchError(f"{what} must have shape (n, ...) with n >= 1, got {tuple(x.shape)}")
    return x


def gram_linear(x, *, center: bool = True) -> torch.Tensor:
    """K = X X^T (n, n) in float64 for x of shape (n, ...) flattened per example.

    center=True subtracts the batch mean of every feature first. HSIC_0, HSIC_1 and hence every CKA
    here are invariant to such a shift, and without it features with a large common component (deep
    ReLU layers) lose the small differences between examples to cancellation in float64.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 2.0]])
        >>> gram_linear(x, center=False).tolist()
        [[1.0, 0.0, 1.0], [0.0, 4.0, 4.0], [1.0, 4.0, 5.0]]
        >>> gram_linear(x).sum(0).abs().max().item() < 1e-12  # centred: rows and columns sum to 0
        True
    """
    x = _as_tensor(x, "features")
    n = x.shape[0]
    flat = x.detach().reshape(n, -1)
    d = flat.shape[1]
    step = max(1, _CHUNK_ELEMS // max(n, 1))
    g = torch.zeros(n, n, dtype=torch.float64, device=flat.device)
    for i in range(0, d, step):
        c = flat[:, i : i + step].to(torch.float64, copy=center)  # a copy: centring is in place
        if center:
            c -= c.mean(0, keepdim=True)
        g.addmm_(c, c.T)
    return g


def _check_pair(k: torch.Tensor, l: torch.Tensor) -> int:
    if k.shape != l.shape or k.dim() != 2 or k.shape[0] != k.shape[1]:
        raise EqbenchError(
            f"CKA needs two feature sets with the same number of examples n, got Gram "
            f"matrices {tuple(k.shape)} and {tuple(l.shape)}"
        )
    return k.shape[0]


def _center(k: torch.Tensor) -> torch.Tensor:
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def hsic0(k: torch.Tensor, l: torch.Tensor) -> float:
    """Biased HSIC_0 of two Gram matrices (tr(KHLH) / (n-1)^2)."""
    n = _check_pair(k, l)
    if n < 2:
        raise EqbenchError("the biased HSIC needs at least 2 examples")
    return float((_center(k.double()) * _center(l.double())).sum()) / (n - 1) ** 2


def _offdiag(k: torch.Tensor) -> torch.Tensor:
    k = k.double()
    return k - torch.diag_embed(torch.diagonal(k, dim1=-2, dim2=-1))


def hsic1(k: torch.Tensor, l: torch.Tensor) -> float:
    """Unbiased HSIC_1 of two Gram matrices (n >= 4)."""
    _check_pair(k, l)
    return float(hsic1_matrix(torch.stack([k, l]))[0, 1])


def hsic1_matrix(grams: torch.Tensor) -> torch.Tensor:
    """HSIC_1 between every pair of m Gram matrices (m, n, n) of one batch: an (m, m) float64 matrix.

    Uses 1^T Kt Lt 1 = (Kt 1) . (Lt 1) (Kt symmetric) and tr(Kt Lt) = <Kt, Lt>, so the whole matrix is
    two matrix products.
    """
    m, n = grams.shape[0], grams.shape[-1]
    if grams.dim() != 3 or grams.shape[1] != n:
        raise EqbenchError(f"expected a stack of square Gram matrices (m, n, n), got {tuple(grams.shape)}")
    if n < 4:
        raise EqbenchError(f"the unbiased HSIC needs at least 4 examples per batch, got {n}; use a larger batch")
    kt = _offdiag(grams)
    v = kt.reshape(m, n * n)
    r = kt.sum(-1)
    s = r.sum(-1)
    out = v @ v.T + torch.outer(s, s) / ((n - 1) * (n - 2)) - (2.0 / (n - 2)) * (r @ r.T)
    return out / (n * (n - 3))


def _ratio(xy: float, xx: float, yy: float) -> float:
    den = xx * yy
    return xy / math.sqrt(den) if den > 0 else math.nan


def linear_cka(x, y, *, unbiased: bool = False) -> float:
    """Linear CKA of two (n, ...) feature sets with the same n (full batch).

    unbiased=False: the biased HSIC_0 form (Kornblith et al.'s `cka`); unbiased=True: HSIC_1 over
    the whole batch (their `debiased=True`, n >= 4).

    Example: CKA is invariant to orthogonal transforms and isotropic scaling of the features.
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g, dtype=torch.float64)
        >>> q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
        >>> round(linear_cka(x, 3.0 * x @ q), 10), round(linear_cka(x, x @ q, unbiased=True), 10)
        (1.0, 1.0)
        >>> linear_cka(x, torch.randn(50, 8, generator=g, dtype=torch.float64)) < 0.5  # unrelated features
        True
    """
    k, l = gram_linear(_as_tensor(x, "x")), gram_linear(_as_tensor(y, "y"))
    _check_pair(k, l)
    if unbiased:
        h = hsic1_matrix(torch.stack([k, l]))
        return _ratio(float(h[0, 1]), float(h[0, 0]), float(h[1, 1]))
    return _ratio(hsic0(k, l), hsic0(k, k), hsic0(l, l))


def minibatch_hsic(pairs: Iterable[tuple[object, object]]) -> tuple[float, float, float, int]:
    """(sum HSIC_1(X_i, Y_i), sum HSIC_1(X_i, X_i), sum HSIC_1(Y_i, Y_i), number of batches k)."""
    xy = xx = yy = 0.0
    k = 0
    for x, y in pairs:
        kx, ky = gram_linear(_as_tensor(x, "x batch")), gram_linear(_as_tensor(y, "y batch"))
        _check_pair(kx, ky)
        h = hsic1_matrix(torch.stack([kx, ky]))
        xy, xx, yy, k = xy + float(h[0, 1]), xx + float(h[0, 0]), yy + float(h[1, 1]), k + 1
    if k == 0:
        raise EqbenchError("minibatch CKA got no batches")
    return xy, xx, yy, k


def minibatch_cka(pairs: Iterable[tuple[object, object]]) -> float:
    """Minibatch linear CKA (unbiased HSIC_1 summed over the (x_batch, y_batch) pairs, then the ratio).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> xs = [torch.randn(16, 4, 3, 3, generator=g) for _ in range(3)]  # 3 batches of 16 feature maps
        >>> round(minibatch_cka((x, 2.0 * x) for x in xs), 10)
        1.0
        >>> # half of 4 independent channels: HSIC(K1 + K2, K1) / |K1 + K2| |K1| -> 1 / sqrt(2) for large n
        >>> abs(minibatch_cka((x, x[:, :2]) for x in xs) - 2 ** -0.5) < 0.1
        True
    """
    xy, xx, yy, _ = minibatch_hsic(pairs)
    return _ratio(xy, xx, yy)


class GramStore:
    """Per-batch Gram matrices of many feature sources ("keys"), then the CKA between every pair.

    Every key must contribute one Gram for each batch index, made from the same examples in the same
    order; the minibatch HSIC_1 of all key pairs is summed over batches. Grams are n x n, so storing
    them for all keys costs little even for large feature maps.
    """

    def __init__(self) -> None:
        self.grams: dict[object, dict[int, torch.Tensor]] = {}

    def add(self, key, batch: int, gram: torch.Tensor) -> None:
        """Store the Gram of `key` for batch `batch`; a second one for the same pair is added to it, which
        is the Gram of the two feature sets concatenated per example (a module that runs twice)."""
        per = self.grams.setdefault(key, {})
        per[batch] = per[batch] + gram if batch in per else gram.double().cpu()

    @property
    def keys(self) -> list:
        return list(self.grams)

    def hsic(self, keys: Sequence | None = None) -> torch.Tensor:
        keys = list(self.grams) if keys is None else list(keys)
        if not keys:
            raise EqbenchError("no features were captured: nothing to compare")
        batches = sorted(self.grams[keys[0]])
        for key in keys:
            if sorted(self.grams[key]) != batches:
                raise EqbenchError(
                    f"feature source {key!r} has batches {sorted(self.grams[key])}, others "
                    f"{batches}: every source must see the same batches"
                )
        total = torch.zeros(len(keys), len(keys), dtype=torch.float64)
        for b in batches:
            total += hsic1_matrix(torch.stack([self.grams[key][b] for key in keys]))
        return total

    def cka(self, keys: Sequence | None = None) -> torch.Tensor:
        """(m, m) minibatch CKA between the keys (NaN where undefined)."""
        h = self.hsic(keys)
        d = torch.diagonal(h)
        den = torch.sqrt(torch.clamp(torch.outer(d, d), min=0.0))
        return torch.where(den > 0, h / den, torch.full_like(h, math.nan))
