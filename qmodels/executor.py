"""Exact, batched, differentiable statevector execution of Qiskit circuits in torch.

:class:`StatevectorExecutor` compiles a parameterised ``QuantumCircuit`` once into
a short program of tensor operations; gradients come from autograd. Why not the
libraries: qiskit-machine-learning's TorchConnector runs one circuit per sample
and parameter shift for gradients (thousands of times slower, see
``bench/qsim.py``), and PennyLane would mean a second definition of each circuit.

How it stays fast on small circuits, where per-operation overhead dominates:

* all gate angles come from one affine map ``angle = A·[inputs, weights] + b``
  and all rotation matrices of a table are built in one kernel
  (``M = A + cos·B + sin·C``, see ``qmodels.kernels``);
* consecutive single-qubit gates form a *layer*: the gates on each qubit are
  multiplied into one 2×2 matrix, the layer is applied as Kronecker blocks of
  up to 5 qubits (one matmul per block), and a first layer acting on |0…0⟩ is
  just a product state;
* runs of fixed two-qubit permutation gates (CNOT/CZ chains, SWAP) collapse
  into one gather with phases;
* for up to 6 qubits, a run of weight-only layers is *fused* into one unitary
  per weight set (log-depth product) when a cost model says that beats
  applying the layers to the batch (roughly when the batch exceeds 2**n);
* circuits with real gates only (RY, CNOT, CZ, H, ...) run in real arithmetic.

Qubit order is Qiskit's: basis index = Σ bit(q)·2**q. Parameters bind in the
order given (``inputs``, ``weights``), never by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter, ParameterExpression
from qiskit.quantum_info import SparsePauliOp

from qmodels.circuits import Ansatz, Output, Probabilities
from qmodels.gates import Dense, Monomial, Rotation, UnsupportedGateError, classify
from qmodels.kernels import kron_matrices, kron_vectors, probabilities, rotation_matrices

Fusion = Literal["auto", "always", "never"]
# no effect on any probability or expectation value (a global phase included)
_SKIPPED = frozenset({"barrier", "delay", "id", "global_phase"})
_BLOCK_QUBITS = 5  # largest Kronecker block applied as one matmul (2**5 × 2**5)
_MAX_FUSED_QUBITS = 6

# Cost model (seconds on one CPU core, forward + backward) used by fusion="auto".
_OP_COST = 40e-6
_MAC_COST = 1.5e-9


@dataclass(frozen=True)
class _Layer:
    """A run of single-qubit gates: ``refs[q]`` lists the gates on qubit q in order."""

    index: int  # position among layers of the same kind
    batched: bool


@dataclass(frozen=True)
class _Local:
    """A two-qubit dense gate or rotation, applied on its own."""

    qubits: tuple[int, int]
    ref: tuple[str, int]  # ("s4"/"b4", slot) for rotations, ("f4", k) for fixed


@dataclass(frozen=True)
class _Perm:
    index: int  # into the permutation list


def _local_index(n: int, qubits: tuple[int, ...]) -> np.ndarray:
    """Local basis index (Qiskit order: bit(qubits[0]) + 2·bit(qubits[1])) of every full index."""
    i = np.arange(2**n)
    return sum(((i >> q) & 1) << k for k, q in enumerate(qubits))


def _full_monomial(n: int, qubits: tuple[int, ...], m: Monomial) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(2**n)
    local = _local_index(n, qubits)
    mask = sum(1 << q for q in qubits)
    placed = sum(((m.src[local] >> k) & 1) << q for k, q in enumerate(qubits))
    return (i & ~mask) | placed, m.phase[local]


def _affine(expr: ParameterExpression, index: dict[Parameter, int], gate: str) -> tuple[dict[int, float], float]:
    coeffs: dict[int, float] = {}
    for p in expr.parameters:
        grad = expr.gradient(p)
        if isinstance(grad, ParameterExpression) and grad.parameters:
            raise UnsupportedGateError(
                f"gate {gate!r} has a non-affine parameter expression {expr}; only a·θ + b is supported"
            )
        coeffs[index[p]] = float(grad)
    return coeffs, float(expr.bind({p: 0.0 for p in expr.parameters}))


def _blocks(n: int) -> list[tuple[int, int]]:
    """Split qubits 0..n-1 into near-equal contiguous blocks of at most _BLOCK_QUBITS."""
    k = -(-n // _BLOCK_QUBITS)
    edges = [round(i * n / k) for i in range(k + 1)]
    return [(edges[i], edges[i + 1]) for i in range(k)]


class StatevectorExecutor(torch.nn.Module):
    """Run ``circuit`` exactly for a batch of inputs and one or several weight sets.

    ``forward(inputs, weights)``: ``inputs`` is ``(B, n_inputs)`` (or ``None`` when
    the circuit has no inputs), ``weights`` is ``(n_weights,)`` or ``(W, n_weights)``
    for W independent weight sets of the same circuit (patch sub-generators).
    Returns ``(B, out)``, or ``(W, B, out)`` for 2-D weights (``B`` dropped when
    there are no inputs).
    """

    def __init__(
        self,
        circuit: QuantumCircuit,
        inputs: Sequence[Parameter],
        weights: Sequence[Parameter],
        output: Output,
        *,
        precision: Literal["single", "double"] = "single",
        fusion: Fusion = "auto",
    ) -> None:
        super().__init__()
        if fusion not in ("auto", "always", "never"):
            raise ValueError(f"fusion must be 'auto', 'always' or 'never', got {fusion!r}")
        if precision not in ("single", "double"):
            raise ValueError(f"precision must be 'single' or 'double', got {precision!r}")
        self.num_qubits = n = circuit.num_qubits
        self.num_inputs, self.num_weights = len(inputs), len(weights)
        self.fusion = fusion
        index = {p: k for k, p in enumerate(list(inputs) + list(weights))}
        if len(index) != len(inputs) + len(weights):
            raise ValueError("inputs and weights must be distinct parameters")
        unbound = set(circuit.parameters) - set(index)
        if unbound:
            raise ValueError(
                f"circuit parameters {sorted(p.name for p in unbound)} are neither inputs nor weights; "
                "pass them in `inputs` or `weights`"
            )

        # Rotation angle tables, one per (shared | batched) × (1 | 2 qubits).
        rows: dict[str, list[tuple[dict[int, float], float]]] = {t: [] for t in ("s2", "s4", "b2", "b4")}
        rots: dict[str, list[Rotation]] = {t: [] for t in rows}
        fixed: dict[str, list[np.ndarray]] = {"f2": [], "f4": []}
        perms: list[tuple[np.ndarray, np.ndarray]] = []
        layers: list[tuple[bool, list[list[tuple[str, int]]]]] = []  # (batched, refs per qubit)
        program: list[_Layer | _Local | _Perm] = []
        real = True
        used: set[int] = set()  # parameter indices that some gate's angle depends on
        for pos, instruction in enumerate(circuit.data):
            op = instruction.operation
            qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
            if op.name in _SKIPPED:
                continue
            if not isinstance(op, Gate):
                raise UnsupportedGateError(
                    f"instruction {op.name!r} (position {pos}) is not a unitary gate; the statevector "
                    "executor runs unitary circuits only (backends add measurements themselves)"
                )
            symbolic = [p for p in op.params if isinstance(p, ParameterExpression) and p.parameters]
            if not symbolic and any(isinstance(p, ParameterExpression) for p in op.params):
                op = op.copy()  # bound expressions → plain numbers
                op.params = [float(p) if isinstance(p, ParameterExpression) else p for p in op.params]
            kind = classify(op, numeric_params=not symbolic)
            d = 2 ** len(qubits)
            if isinstance(kind, Monomial) and len(qubits) == 2:
                src, phase = _full_monomial(n, qubits, kind)
                real &= bool(np.allclose(phase.imag, 0))
                if program and isinstance(program[-1], _Perm):  # one gather for a whole CNOT/CZ chain
                    psrc, pphase = perms[program[-1].index]
                    perms[program[-1].index] = (psrc[src], phase * pphase[src])
                else:
                    perms.append((src, phase))
                    program.append(_Perm(len(perms) - 1))
                continue
            if isinstance(kind, Rotation):
                coeffs, bias = _affine(symbolic[0], index, op.name)
                used.update(k for k, v in coeffs.items() if v != 0.0)
                batched = any(k < self.num_inputs and v != 0.0 for k, v in coeffs.items())
                tag = f"{'b' if batched else 's'}{d}"
                rows[tag].append(({k: v * kind.scale for k, v in coeffs.items()}, bias * kind.scale))
                rots[tag].append(kind)
                real &= all(np.allclose(m.imag, 0) for m in (kind.a, kind.b, kind.c))
                ref = (tag, len(rows[tag]) - 1)
            else:
                matrix = kind.matrix if isinstance(kind, Dense) else _monomial_matrix(kind)
                real &= bool(np.allclose(matrix.imag, 0))
                fixed[f"f{d}"].append(matrix)
                ref = (f"f{d}", len(fixed[f"f{d}"]) - 1)
            if d == 4:
                program.append(_Local(qubits, ref))
                continue
            # A new layer starts after a non-layer step, or when a gate's batched-ness differs from
            # the open layer's and its qubit already has gates there: input-dependent encodings stay
            # apart from the weight-only layers after them, which can then be fused.
            batched_gate = ref[0] == "b2"
            if not (program and isinstance(program[-1], _Layer)) or (
                layers[-1][0] != batched_gate and layers[-1][1][qubits[0]]
            ):
                layers.append((False, [[] for _ in range(n)]))
                program.append(_Layer(len(layers) - 1, False))
            batched_layer, refs = layers[-1]
            refs[qubits[0]].append(ref)
            if ref[0] == "b2" and not batched_layer:
                layers[-1] = (True, refs)
                program[-1] = _Layer(len(layers) - 1, True)

        idle = [p.name for k, p in enumerate(weights, self.num_inputs) if k not in used]
        if idle:
            # their gradient would be missing (no weight used at all: backward() fails obscurely)
            raise ValueError(f"weights {idle} change no gate of circuit {circuit.name!r}; drop them from `weights`")
        self.is_real = real
        self.real_dtype = torch.float64 if precision == "double" else torch.float32
        self.dtype = self.real_dtype if real else (torch.complex128 if precision == "double" else torch.complex64)
        n_par = self.num_inputs + self.num_weights
        self._const("eye2", np.eye(2))
        for tag in rows:
            coef = np.zeros((n_par, len(rows[tag])))
            bias = np.array([b for _, b in rows[tag]], dtype=float)
            for r, (cs, _) in enumerate(rows[tag]):
                for k, v in cs.items():
                    coef[k, r] = v
            self._const(f"coef_{tag}", coef, real=True)
            self._const(f"bias_{tag}", bias, real=True)
            d = int(tag[1])
            parts = {k: np.stack([getattr(m, k) for m in rots[tag]]) if rots[tag] else np.zeros((0, d, d)) for k in "abc"}
            # a table whose matrices are all real is built in real arithmetic (cheaper), e.g. RY encodings
            table_real = all(np.allclose(v.imag, 0) for v in parts.values())
            self._const(f"a_{tag}", parts["a"] if np.abs(parts["a"]).max(initial=0) > 0 else None, real=table_real)
            self._const(f"b_{tag}", parts["b"], real=table_real)
            self._const(f"c_{tag}", parts["c"], real=table_real)
        for tag, mats in fixed.items():
            d = int(tag[1])
            self._const(tag, np.stack(mats) if mats else np.zeros((0, d, d)))
        for k, (src, phase) in enumerate(perms):
            self.register_buffer(f"_src_{k}", torch.as_tensor(src, dtype=torch.long), persistent=False)
            self.register_buffer(f"_inv_{k}", torch.as_tensor(np.argsort(src), dtype=torch.long), persistent=False)
            self._const(f"phase_{k}", None if np.allclose(phase, 1.0) else phase)

        # Layer gather tables: per (layer, qubit) the gates to multiply, padded with identity.
        n_s, n_b, n_f = len(rows["s2"]), len(rows["b2"]), len(fixed["f2"])
        offset = {"s2": 0, "f2": n_s, "eye": n_s + n_f}  # into the shared table [s2 | f2 | I]
        self._layer_slot: dict[int, tuple[bool, int]] = {}
        tables: dict[bool, list[list[list[int]]]] = {False: [], True: []}
        for k, (batched, refs) in enumerate(layers):
            shift = n_b if batched else 0  # batched table is [b2 | s2 | f2 | I]
            table = [
                [(r[1] if r[0] == "b2" else shift + offset[r[0]] + r[1]) for r in qrefs] for qrefs in refs
            ]
            self._layer_slot[k] = (batched, len(tables[batched]))
            tables[batched].append(table)
        for batched, tabs in tables.items():
            shift = n_b if batched else 0
            depth = max([len(q) for t in tabs for q in t] + [1])
            idx = np.full((len(tabs), n, depth), shift + offset["eye"], dtype=np.int64)
            for li, t in enumerate(tabs):
                for q, lst in enumerate(t):
                    idx[li, q, : len(lst)] = lst
            self.register_buffer(f"_layers_{'b' if batched else 's'}", torch.as_tensor(idx), persistent=False)
        self._batched_use_shared = bool(self._layers_b.numel()) and int(self._layers_b.max()) >= n_b

        self._program = program
        self._blocks = _blocks(n)
        self._segments = self._find_segments()
        every_shared_layer = list(range(len(tables[False])))
        self._segments_cover_all = {start for start, seg in self._segments.items() if seg[1] == every_shared_layer}
        N = 2**n
        for start, (_, slots, after) in self._segments.items():
            rows = np.stack([perms[p][0] if p >= 0 else np.arange(N) for p in after])
            phase = np.stack([perms[p][1] if p >= 0 else np.ones(N) for p in after])
            self.register_buffer(f"_seg_layers_{start}", torch.as_tensor(slots), persistent=False)
            self.register_buffer(f"_seg_rows_{start}", torch.as_tensor(rows)[..., None], persistent=False)
            self.register_buffer(f"_seg_inv_{start}", torch.as_tensor(np.argsort(rows, axis=1))[..., None], persistent=False)
            self._const(f"seg_phase_{start}", None if np.allclose(phase, 1) else phase[..., None])
        self._readout = _Readout(n, output, self)

    def _const(self, name: str, value: np.ndarray | None, real: bool = False) -> None:
        if value is not None:
            if real or self.is_real:
                value = torch.as_tensor(np.real(value), dtype=self.real_dtype)
            else:
                value = torch.as_tensor(value, dtype=self.dtype)
        self.register_buffer(f"_{name}", value, persistent=False)

    def _find_segments(self) -> dict[int, tuple[int, list[int], list[int]]]:
        """Fusable runs: start position → (stop, shared-layer slots, perm after each layer or -1)."""
        segments: dict[int, tuple[int, list[int], list[int]]] = {}
        if self.num_qubits > _MAX_FUSED_QUBITS:
            return segments
        pos = 0
        while pos < len(self._program):
            step = self._program[pos]
            if not (isinstance(step, _Layer) and not step.batched):
                pos += 1
                continue
            start, slots, after = pos, [], []
            while pos < len(self._program):
                step = self._program[pos]
                if isinstance(step, _Layer) and not step.batched:
                    slots.append(self._layer_slot[step.index][1])
                    after.append(-1)
                elif isinstance(step, _Perm) and after[-1] == -1:
                    after[-1] = step.index
                else:
                    break
                pos += 1
            segments[start] = (pos, slots, after)
        return segments

    # ------------------------------------------------------------------ execution
    def _rotations(self, angles: torch.Tensor, tag: str) -> torch.Tensor:
        """Matrices A + cos·B + sin·C for a table of angles (..., G) → (..., G, d, d)."""
        return rotation_matrices(angles, *(getattr(self, f"_{p}_{tag}") for p in "abc"))

    def _per_qubit(self, table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Gather each layer's gates per qubit and multiply them: (..., L, n, 2, 2)."""
        out = None
        for r in range(idx.shape[-1]):  # index_select: far faster than fancy indexing
            g = torch.index_select(table, -3, idx[..., r].reshape(-1)).reshape(*table.shape[:-3], *idx.shape[:-1], 2, 2)
            out = g if out is None else g @ out
        return out

    def _block_matrices(self, per_qubit: torch.Tensor, blocks: list[tuple[int, int]]) -> list[torch.Tensor]:
        return [kron_matrices(per_qubit[..., lo:hi, :, :]) for lo, hi in blocks]

    def _fuse(self, start: int, full: torch.Tensor) -> torch.Tensor:
        """One unitary (W, N, N) for a run of shared layers and permutations (rows permuted per layer)."""
        if start not in self._segments_cover_all:
            full = full.index_select(1, getattr(self, f"_seg_layers_{start}"))
        rows, inverse = getattr(self, f"_seg_rows_{start}"), getattr(self, f"_seg_inv_{start}")
        u = _Permute.apply(full, rows, inverse, -2)  # (W, L, N, N), rows permuted per layer
        phase = getattr(self, f"_seg_phase_{start}")
        if phase is not None:
            u = u * phase
        while u.shape[1] > 1:  # log-depth product; layer 0 acts first
            carry = u[:, -1:] if u.shape[1] % 2 else None
            even = u[:, : u.shape[1] - (carry is not None)]
            u = even[:, 1::2] @ even[:, 0::2]
            if carry is not None:
                u = torch.cat([u, carry], dim=1)
        return u[:, 0]

    def _use_fusion(self, seg: tuple[int, list[int], list[int]], W: int, B: int) -> bool:
        if self.fusion != "auto":
            return self.fusion == "always"
        N, L = 2**self.num_qubits, len(seg[1])
        perms = sum(p >= 0 for p in seg[2])
        layer_by_layer = (L + perms) * _OP_COST + W * B * N * N * L * _MAC_COST
        fused = (3 + math.ceil(math.log2(L))) * _OP_COST + W * (L * N**3 + B * N * N) * _MAC_COST
        return fused < layer_by_layer

    def forward(self, inputs: torch.Tensor | None, weights: torch.Tensor) -> torch.Tensor:
        if weights.dim() not in (1, 2) or weights.shape[-1] != self.num_weights:
            raise ValueError(
                f"weights must have shape ({self.num_weights},) or (W, {self.num_weights}), got {tuple(weights.shape)}"
            )
        squeeze_w = weights.dim() == 1
        w = (weights[None] if squeeze_w else weights).to(self.real_dtype)
        if self.num_inputs:
            if inputs is None or inputs.dim() != 2 or inputs.shape[1] != self.num_inputs:
                got = None if inputs is None else tuple(inputs.shape)
                raise ValueError(f"inputs must have shape (B, {self.num_inputs}), got {got}")
            x = inputs.to(self.real_dtype)
        elif inputs is not None and inputs.numel():
            raise ValueError("this circuit has no input parameters; pass inputs=None")
        else:
            x = None
        W, B, N, n = w.shape[0], (1 if x is None else x.shape[0]), 2**self.num_qubits, self.num_qubits
        n_in = self.num_inputs

        mats: dict[str, torch.Tensor] = {}
        for d in (2, 4):
            coef, bias = getattr(self, f"_coef_s{d}"), getattr(self, f"_bias_s{d}")
            if bias.numel():
                mats[f"s{d}"] = self._rotations(torch.addmm(bias, w, coef[n_in:]), f"s{d}")  # (W, G, d, d)
            coef, bias = getattr(self, f"_coef_b{d}"), getattr(self, f"_bias_b{d}")
            if bias.numel():
                ang = (x @ coef[:n_in])[None] + torch.addmm(bias, w, coef[n_in:])[:, None]
                mats[f"b{d}"] = self._rotations(ang, f"b{d}")  # (W, B, G, d, d)
        shared_parts = [mats["s2"]] if "s2" in mats else []
        if self._f2.shape[0]:
            shared_parts.append(self._f2.expand(W, -1, -1, -1))
        shared_parts = [p.to(self.dtype) for p in shared_parts]
        shared_parts.append(self._eye2.expand(W, 1, 2, 2))
        shared = torch.cat(shared_parts, dim=1) if len(shared_parts) > 1 else shared_parts[0]
        per_qubit: dict[bool, torch.Tensor] = {}
        if self._layers_s.shape[0]:
            per_qubit[False] = self._per_qubit(shared, self._layers_s)  # (W, Ls, n, 2, 2)
        if self._layers_b.shape[0]:
            table = mats["b2"]
            if self._batched_use_shared:  # batched layers also use shared gates
                table = torch.cat([table.to(self.dtype), shared[:, None].expand(W, B, -1, -1, -1)], dim=2)
            per_qubit[True] = self._per_qubit(table, self._layers_b)  # (W, B, Lb, n, 2, 2)

        fusing = {
            start: seg for start, seg in self._segments.items() if False in per_qubit and self._use_fusion(seg, W, B)
        }
        blocks: dict[bool, list[torch.Tensor]] = {}
        if fusing:
            full = self._block_matrices(per_qubit[False], [(0, n)])[0]  # (W, Ls, N, N)
        state = None
        pos = 0
        while pos < len(self._program):
            step = self._program[pos]
            if pos in fusing:
                u = self._fuse(pos, full)
                state = u[:, None, :, 0] if state is None else state @ u.transpose(-1, -2)
                pos = fusing[pos][0]
                continue
            if isinstance(step, _Layer):
                batched, slot = self._layer_slot[step.index]
                pq = per_qubit[batched][..., slot, :, :, :]  # (W, [B,] n, 2, 2)
                if not batched:
                    pq = pq[:, None]
                if state is None:  # a product state: first columns only
                    state = kron_vectors(pq[..., :, 0]).to(self.dtype)
                else:
                    if batched not in blocks:
                        blocks[batched] = self._block_matrices(per_qubit[batched], self._blocks)
                    for (lo, hi), mats_blk in zip(self._blocks, blocks[batched]):
                        m = mats_blk[..., slot, :, :].to(self.dtype)
                        state = _apply_block(state, m if batched else m[:, None], lo, hi, n)
            else:
                if state is None:
                    state = torch.zeros(1, 1, N, dtype=self.dtype, device=w.device)
                    state[..., 0] = 1
                if isinstance(step, _Perm):
                    state = _Permute.apply(state, getattr(self, f"_src_{step.index}"), getattr(self, f"_inv_{step.index}"), -1)
                    phase = getattr(self, f"_phase_{step.index}")
                    if phase is not None:
                        state = state * phase
                else:
                    tag, k = step.ref
                    g = mats[tag][:, None, k] if tag == "s4" else mats[tag][:, :, k] if tag == "b4" else self._f4[k][None, None]
                    g = g.to(self.dtype)
                    state = _apply_pair(state, g, step.qubits, n)
            pos += 1
        if state is None:
            state = torch.zeros(1, 1, N, dtype=self.dtype, device=w.device)
            state[..., 0] = 1
        out = self._readout(state.expand(W, B, N))
        if x is None:
            out = out[:, 0]
        return out[0] if squeeze_w else out


class _Permute(torch.autograd.Function):
    """Gather along ``dim`` by ``src`` (a permutation, broadcast over the other axes); the
    backward pass is the inverse permutation (a gather, not a scatter)."""

    @staticmethod
    def forward(ctx, state: torch.Tensor, src: torch.Tensor, inverse: torch.Tensor, dim: int) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        ctx.dim = dim
        return torch.gather(state, dim, src.expand_as(state))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inverse,) = ctx.saved_tensors
        return torch.gather(grad, ctx.dim, inverse.expand_as(grad)), None, None, None


def _monomial_matrix(m: Monomial) -> np.ndarray:
    d = len(m.src)
    out = np.zeros((d, d), dtype=complex)
    out[np.arange(d), m.src] = m.phase
    return out


def _apply_block(state: torch.Tensor, m: torch.Tensor, lo: int, hi: int, n: int) -> torch.Tensor:
    """Apply a (W|1, B|1, d, d) matrix on qubits lo..hi-1 of state (W', B', 2**n)."""
    lead = torch.broadcast_shapes(state.shape[:2], m.shape[:2])
    d = 2 ** (hi - lo)
    if lo == 0:  # rows @ m^T: one GEMM per (w, b) pair or per w when m is shared
        view = state.reshape(*state.shape[:2], -1, d)
        if m.shape[1] == 1 and state.shape[1] > 1:
            out = state.reshape(state.shape[0], -1, d) @ m[:, 0].transpose(-1, -2)
        else:
            out = view @ m.transpose(-1, -2)
    else:
        view = state.reshape(*state.shape[:2], 2 ** (n - hi), d, 2**lo)
        out = m.unsqueeze(2) @ view
    return out.reshape(*lead, 2**n)


def _apply_pair(state: torch.Tensor, g: torch.Tensor, qubits: tuple[int, int], n: int) -> torch.Tensor:
    """Apply a local two-qubit gate ``g`` (W|1, B|1, 4, 4) to ``state`` (W', B', 2**n)."""
    lead = torch.broadcast_shapes(state.shape[:2], g.shape[:2])
    q0, q1 = qubits
    axes = [2 + n - 1 - q1, 2 + n - 1 - q0]  # local index = 2·bit(q1) + bit(q0)
    view = state.reshape(*state.shape[:2], *([2] * n)).movedim(axes, [-2, -1])
    moved = view.shape[2:]
    out = view.reshape(*state.shape[:2], -1, 4) @ g.transpose(-1, -2)
    return out.reshape(*lead, *moved).movedim([-2, -1], axes).reshape(*lead, 2**n)


def collect_matrix(n: int, output: Probabilities) -> np.ndarray | None:
    """(2**n, 2**k) 0/1 matrix taking full-register probabilities to the kept qubits' outcomes,
    post-selected outcomes dropped (not renormalised); None when every qubit is kept in order."""
    N = 2**n
    kept = tuple(range(n)) if output.qubits is None else tuple(output.qubits)
    post = dict(output.postselect)
    for q in list(kept) + list(post):
        if not 0 <= q < n:
            raise ValueError(f"readout {output}: qubit {q} is out of range for a {n}-qubit circuit")
    if len(set(kept)) != len(kept):
        raise ValueError(f"readout {output}: a qubit is measured twice")
    if set(post) - set(kept) or any(v not in (0, 1) for v in post.values()):
        raise ValueError(f"readout {output}: postselect must map measured qubits to 0 or 1")
    data = [q for q in kept if q not in post]
    if not data:
        raise ValueError(f"readout {output} leaves no data qubit to read (every measured qubit is post-selected, "
                         "or none is measured); measure at least one qubit that is not post-selected")
    if data == list(range(n)):
        return None
    i = np.arange(N)
    ok = np.ones(N, dtype=bool)
    for q, v in post.items():
        ok &= ((i >> q) & 1) == v
    col = sum(((i >> q) & 1) << k for k, q in enumerate(data))
    m = np.zeros((N, 2 ** len(data)))
    m[i[ok], col[ok]] = 1.0
    return m


class _Readout(torch.nn.Module):
    """Turn final states (W, B, N) into probabilities or Pauli expectation values."""

    def __init__(self, n: int, output: Output, owner: StatevectorExecutor) -> None:
        super().__init__()
        N = 2**n
        self.real = owner.is_real
        rdtype = owner.real_dtype
        if isinstance(output, Probabilities):
            self.kind = "probs"
            m = collect_matrix(n, output)
            self.register_buffer("collect", None if m is None else torch.as_tensor(m, dtype=rdtype), persistent=False)
        else:
            if not output.observables:
                raise ValueError("readout Expectations(observables=()) reads nothing; give at least one observable")
            self.kind = "expval"
            groups: dict[int, np.ndarray] = {}
            for o, obs in enumerate(output.observables):
                obs = SparsePauliOp(obs)
                if obs.num_qubits != n:
                    raise ValueError(f"observable {o} acts on {obs.num_qubits} qubits, circuit has {n}")
                for label, coeff in obs.to_list():
                    mat = SparsePauliOp(label).to_matrix(sparse=True).tocsc()
                    rows = mat.indices  # one non-zero per column j, in row rows[j]
                    vals = mat.data
                    xmask = int(rows[0] ^ 0)
                    # <P> = Σ_i conj(ψ_i) · φ(i^x) · ψ_{i^x}, where P|j> = φ(j)|j^x>, φ(j) = vals[j]
                    phi = vals[np.arange(N) ^ xmask] * coeff
                    groups.setdefault(xmask, np.zeros((N, len(output.observables)), dtype=complex))[:, o] += phi
            self.masks = sorted(groups)
            for k, x in enumerate(self.masks):
                table = groups[x]
                if not np.allclose(table.imag, 0):
                    if x == 0:
                        raise ValueError("observables must be Hermitian (real coefficients)")
                self.register_buffer(f"phi_re_{k}", torch.as_tensor(table.real, dtype=rdtype), persistent=False)
                self.register_buffer(f"phi_im_{k}", torch.as_tensor(table.imag, dtype=rdtype), persistent=False)
                self.register_buffer(
                    f"perm_{k}", torch.as_tensor(np.arange(N) ^ x, dtype=torch.long), persistent=False
                )

    def _probs(self, state: torch.Tensor) -> torch.Tensor:
        return probabilities(state)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        if self.kind == "probs":
            p = self._probs(state)
            return p if self.collect is None else p @ self.collect
        out = None
        for k, x in enumerate(self.masks):
            if x == 0:
                term = self._probs(state) @ getattr(self, f"phi_re_{k}")
            elif self.real:  # real ψ: Re(ψ_i ψ_{i^x} φ) = ψ_i ψ_{i^x} Re(φ)
                term = (state * state[..., getattr(self, f"perm_{k}")]) @ getattr(self, f"phi_re_{k}")
            else:  # Re(v·φ) = Re(v)Re(φ) − Im(v)Im(φ), v = conj(ψ_i) ψ_{i^x}
                v = state.conj() * state[..., getattr(self, f"perm_{k}")]
                term = v.real @ getattr(self, f"phi_re_{k}") - v.imag @ getattr(self, f"phi_im_{k}")
            out = term if out is None else out + term
        return out


def compile_ansatz(ansatz: Ansatz, **options) -> StatevectorExecutor:
    """Executor for an :class:`~qmodels.circuits.Ansatz` (its own inputs, weights, output)."""
    return StatevectorExecutor(ansatz.circuit, ansatz.inputs, ansatz.weights, ansatz.output, **options)
