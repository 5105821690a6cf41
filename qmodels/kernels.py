"""Small tensor kernels with hand-written backward passes.

The circuits qaug trains are tiny (4–10 qubits), so time goes to per-operation
overhead, not arithmetic. Each function here replaces a chain of 5–15 autograd
nodes (broadcasts, views, reductions) by a single node whose backward is a few
fused tensor operations. ``tests/test_kernels.py`` checks them with gradcheck.
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=64)
def _bit_index(n: int, device: torch.device) -> torch.Tensor:
    """(n, 2**n): bit q of every basis index (Qiskit little-endian)."""
    i = torch.arange(2**n, device=device)
    return (i[None, :] >> torch.arange(n, device=device)[:, None]) & 1


class _Rotations(torch.autograd.Function):
    """M(θ) = A + cos θ · B + sin θ · C for angles (..., G) and constants (G, d, d)."""

    @staticmethod
    def forward(ctx, angles, a, b, c):
        cos, sin = torch.cos(angles)[..., None, None], torch.sin(angles)[..., None, None]
        ctx.save_for_backward(cos, sin, b, c)
        out = cos * b + sin * c
        return out if a is None else out + a

    @staticmethod
    def backward(ctx, grad):
        cos, sin, b, c = ctx.saved_tensors
        deriv = cos * c - sin * b
        g = grad * (deriv.conj() if deriv.is_complex() else deriv)
        g = g.real if g.is_complex() else g
        return g.sum((-1, -2)), None, None, None


def rotation_matrices(angles: torch.Tensor, a: torch.Tensor | None, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return _Rotations.apply(angles, a, b, c)


@lru_cache(maxsize=64)
def _selector(n: int, dtype: torch.dtype, device: torch.device, matrices: bool) -> torch.Tensor:
    """Sums a qubit's entries by bit value in one batched matmul.

    Vectors: (n, N, 2) with S[q, i, b] = [bit_q(i) = b]; matrices: (n, N·N, 4) with
    S[q, i·N + j, 2a + b] = [bit_q(i) = a][bit_q(j) = b].
    """
    onehot = torch.nn.functional.one_hot(_bit_index(n, device), 2).to(dtype)  # (n, N, 2)
    if not matrices:
        return onehot
    pair = onehot[:, :, None, :, None] * onehot[:, None, :, None, :]  # (n, N, N, 2, 2)
    return pair.reshape(n, 4**n, 4)


def _reduce_per_qubit(g: torch.Tensor, n: int, matrices: bool) -> torch.Tensor:
    """(..., n, N[, N]) → (..., n, 2[, 2]): sum each qubit's entries by the value of its bit(s)."""
    lead = g.shape[: g.dim() - (3 if matrices else 2)]
    flat = g.reshape(-1, n, g.shape[-1] ** (2 if matrices else 1)).transpose(0, 1)  # (n, M, N[²])
    out = torch.bmm(flat, _selector(n, g.dtype, g.device, matrices)).transpose(0, 1)
    return out.reshape(*lead, n, 2, 2) if matrices else out.reshape(*lead, n, 2)


def _exclusive_products(g: torch.Tensor, dim: int) -> torch.Tensor:
    """Product over all other entries along ``dim``: total / entry, or prefix × suffix where zeros occur."""
    if not (g == 0).any():
        return g.prod(dim, keepdim=True) / g
    ones = torch.ones_like(g.narrow(dim, 0, 1))
    prefix = torch.cat([ones, torch.cumprod(g, dim).narrow(dim, 0, g.shape[dim] - 1)], dim)
    suffix = torch.cat([torch.cumprod(g.flip(dim), dim).narrow(dim, 0, g.shape[dim] - 1).flip(dim), ones], dim)
    return prefix * suffix


class _KronMatrices(torch.autograd.Function):
    """⊗ of per-qubit 2×2 matrices (..., n, 2, 2) → (..., 2**n, 2**n), qubit 0 least significant."""

    @staticmethod
    def forward(ctx, per_qubit):
        n = per_qubit.shape[-3]
        bits = _bit_index(n, per_qubit.device)
        index = (2 * bits[:, :, None] + bits[:, None, :]).reshape(n, -1)  # entry (bit_q(i), bit_q(j)) of qubit q
        flat = per_qubit.reshape(*per_qubit.shape[:-2], 4)
        factors = torch.gather(flat, -1, index.expand(*flat.shape[:-1], -1))
        factors = factors.reshape(*factors.shape[:-1], 2**n, 2**n)  # (..., n, N, N)
        ctx.save_for_backward(factors)
        return factors.prod(-3)

    @staticmethod
    def backward(ctx, grad):
        (factors,) = ctx.saved_tensors
        n, N = factors.shape[-3], factors.shape[-1]
        others = _exclusive_products(factors, -3)
        others = others.conj() if others.is_complex() else others
        return _reduce_per_qubit(grad.unsqueeze(-3) * others, n, matrices=True)


def kron_matrices(per_qubit: torch.Tensor) -> torch.Tensor:
    return _KronMatrices.apply(per_qubit)


class _KronVectors(torch.autograd.Function):
    """⊗ of per-qubit vectors (..., n, 2) → (..., 2**n): a product state."""

    @staticmethod
    def forward(ctx, per_qubit):
        n = per_qubit.shape[-2]
        bits = _bit_index(n, per_qubit.device)
        factors = torch.gather(per_qubit, -1, bits.expand(*per_qubit.shape[:-1], -1))  # (..., n, N)
        ctx.save_for_backward(factors)
        return factors.prod(-2)

    @staticmethod
    def backward(ctx, grad):
        (factors,) = ctx.saved_tensors
        n = factors.shape[-2]
        others = _exclusive_products(factors, -2)
        others = others.conj() if others.is_complex() else others
        return _reduce_per_qubit(grad.unsqueeze(-2) * others, n, matrices=False)


def kron_vectors(per_qubit: torch.Tensor) -> torch.Tensor:
    return _KronVectors.apply(per_qubit)


class _Probabilities(torch.autograd.Function):
    """|ψ|² of a complex state in one node (instead of view_as_real → square → sum)."""

    @staticmethod
    def forward(ctx, state):
        ctx.save_for_backward(state)
        return state.real.square() + state.imag.square()

    @staticmethod
    def backward(ctx, grad):
        (state,) = ctx.saved_tensors
        return 2 * grad * state


def probabilities(state: torch.Tensor) -> torch.Tensor:
    return state.square() if not state.is_complex() else _Probabilities.apply(state)
