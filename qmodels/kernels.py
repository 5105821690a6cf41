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


def _exclusive_products(g: torch.Tensor, dim: int) -> torch.Tensor:
    """Product over all other entries along ``dim``: total / entry, or prefix × suffix where zeros occur.

    Only the CPU looks for zeros first: on an accelerator that test is a device-to-host copy that stalls the
    stream and cannot be captured in a CUDA graph, so there prefix × suffix (exact with or without zeros) runs always."""
    if g.device.type == "cpu" and not (g == 0).any():
        return g.prod(dim, keepdim=True) / g
    return _prefix_suffix(g, dim)


def _prefix_suffix(g: torch.Tensor, dim: int) -> torch.Tensor:
    """Product of the entries before × product of the entries after, along ``dim``."""
    ones = torch.ones_like(g.narrow(dim, 0, 1))
    prefix = torch.cat([ones, torch.cumprod(g, dim).narrow(dim, 0, g.shape[dim] - 1)], dim)
    suffix = torch.cat([torch.cumprod(g.flip(dim), dim).narrow(dim, 0, g.shape[dim] - 1).flip(dim), ones], dim)
    return prefix * suffix


class _Kron(torch.autograd.Function):
    """⊗ over qubits of per-qubit entries, qubit 0 least significant.

    ``per_qubit`` is (..., n, d) with d = 2 (vectors: a product state) or d = 4
    (flattened 2×2 matrices). Each output entry is the product of one entry per
    qubit, picked by the bits of its index: a gather, then a product.
    """

    @staticmethod
    def forward(ctx, per_qubit, index):
        index = index.expand(*per_qubit.shape[:-1], -1)
        factors = torch.gather(per_qubit, -1, index)  # (..., n, K)
        ctx.save_for_backward(factors, index)
        ctx.d = per_qubit.shape[-1]
        return factors.prod(-2)

    @staticmethod
    def backward(ctx, grad):
        factors, index = ctx.saved_tensors
        others = _exclusive_products(factors, -2)
        g = grad.unsqueeze(-2) * (others.conj() if others.is_complex() else others)  # (..., n, K)
        out = torch.zeros(*g.shape[:-1], ctx.d, dtype=g.dtype, device=g.device)
        return out.scatter_add_(-1, index, g), None  # sum each qubit's entries by the value they picked


def kron_vectors(per_qubit: torch.Tensor) -> torch.Tensor:
    """(..., n, 2) → (..., 2**n)."""
    n = per_qubit.shape[-2]
    return _Kron.apply(per_qubit, _bit_index(n, per_qubit.device))


@lru_cache(maxsize=64)
def _pair_index(n: int, device: torch.device) -> torch.Tensor:
    """(n, 4**n): flat entry 2·bit_q(i) + bit_q(j) of qubit q's 2×2 matrix for matrix entry (i, j)."""
    bits = _bit_index(n, device)
    return (2 * bits[:, :, None] + bits[:, None, :]).reshape(n, -1)


def kron_matrices(per_qubit: torch.Tensor) -> torch.Tensor:
    """(..., n, 2, 2) → (..., 2**n, 2**n)."""
    n = per_qubit.shape[-3]
    out = _Kron.apply(per_qubit.reshape(*per_qubit.shape[:-2], 4), _pair_index(n, per_qubit.device))
    return out.reshape(*out.shape[:-1], 2**n, 2**n)


class _Probabilities(torch.autograd.Function):
    """|ψ|² of a complex state in one node (instead of view_as_real → square → sum)."""

    @staticmethod
    def forward(ctx, state):
        ctx.save_for_backward(state)
        return torch.view_as_real(state).square().sum(-1)

    @staticmethod
    def backward(ctx, grad):
        (state,) = ctx.saved_tensors
        return 2 * grad * state


def probabilities(state: torch.Tensor) -> torch.Tensor:
    return state.square() if not state.is_complex() else _Probabilities.apply(state)
