"""Circuit calls on a CUDA GPU replayed from CUDA graphs: one launch where eager execution makes hundreds.

A small circuit's forward and backward on a GPU is a few hundred kernels of a few µs each, and eager PyTorch
spends far more than that in Python and launch overhead on each one: without graphs the GPU loses to the CPU
on every small circuit (``bench/gpu.py``). A CUDA graph records the kernels of one call once per input shape
and replays them with one launch.

Why not ``torch.cuda.make_graphed_callables``: its outputs are the graph's static buffers and its backward reads
the activations the last replay left there, so a second call before the first call's backward silently
corrupts the first call's gradients. qaug's models call a circuit once per class before one backward, and
sample without gradients in between. So here each input signature keeps a few captures; a capture is *leased*
from a forward with gradients until its backward has run or its autograd graph is freed; a call takes a free
capture (recording another when every one is leased) and copies outputs and gradients out of the static
buffers. The kernels are eager's, so are the numbers (up to the last-bit differences that atomic adds make
between any two GPU runs). Off CUDA nothing changes: ``call`` runs the module as it is.
"""

from __future__ import annotations

import warnings
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
from torch.autograd.function import once_differentiable

Fn = Callable[..., torch.Tensor]
Args = Sequence[torch.Tensor | None]
_WARMUP = 3  # eager runs before recording: cuBLAS handles, allocator growth and lazy set-up stay out of the graph
_CAPACITY = 8  # captures per signature; past it (outputs kept with their autograd graph pin captures) calls run eagerly
_SIGNATURES = 16  # signatures kept per module; a new one evicts the least recently used free one (remainder batches)
_enabled = True


class Capture:
    """One recorded call: static inputs, the forward (and, when gradients are wanted, the backward) and its outputs.

    Subclasses record and replay; this class keeps the lease: ``free`` is False from a forward with gradients
    until its backward ran or its autograd graph was freed."""

    free = True

    def replay_forward(self, args: Args) -> torch.Tensor:
        """The output for ``args`` (a copy: the static output is overwritten by the next replay)."""
        raise NotImplementedError

    def replay_backward(self, grad: torch.Tensor) -> list[torch.Tensor | None]:
        """Gradients for the last forward's arguments (copies), None where an argument wants none."""
        raise NotImplementedError

    @property
    def differentiable(self) -> bool:
        raise NotImplementedError


class CudaCapture(Capture):
    def __init__(self, fn: Fn, args: Args, grad: bool) -> None:
        device = _first(args).device
        # the graph reads the module's buffers by address: keep them alive while a pending backward may replay it
        self.keep = tuple(fn.buffers()) if isinstance(fn, torch.nn.Module) else ()
        self.inputs = [None if a is None else a.detach().clone().requires_grad_(grad and a.requires_grad) for a in args]
        self.wants = [a is not None and a.requires_grad for a in self.inputs]
        leaves = [a for a, want in zip(self.inputs, self.wants) if want]
        stream = torch.cuda.Stream(device)  # warm-up and recording on one side stream, as the CUDA graph docs ask
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.set_grad_enabled(grad):
            for _ in range(_WARMUP):
                out = fn(*self.inputs)
                if leaves:
                    torch.autograd.grad(out, leaves, torch.ones_like(out), allow_unused=True)
        self.forward = torch.cuda.CUDAGraph()
        with torch.set_grad_enabled(grad), torch.cuda.graph(self.forward, stream=stream):
            out = fn(*self.inputs)
        self.backward: torch.cuda.CUDAGraph | None = None
        if leaves:
            self.grad_output = torch.empty_like(out)
            self.backward = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.backward, stream=stream, pool=self.forward.pool()):
                grads = iter(torch.autograd.grad(out, leaves, self.grad_output, allow_unused=True))
            # an input no gate reads gets zeros (allocated once, outside the graph)
            self.grads = [None if not want else next(grads) for want in self.wants]
            self.grads = [torch.zeros_like(a) if want and g is None else g for a, g, want in zip(self.inputs, self.grads, self.wants)]
        self.output = out.detach()
        torch.cuda.current_stream(device).wait_stream(stream)

    @property
    def differentiable(self) -> bool:
        return self.backward is not None

    @torch.no_grad()
    def replay_forward(self, args: Args) -> torch.Tensor:
        for static, a in zip(self.inputs, args):
            if static is not None:
                static.copy_(a)
        self.forward.replay()
        return self.output.clone()

    @torch.no_grad()
    def replay_backward(self, grad: torch.Tensor) -> list[torch.Tensor | None]:
        self.grad_output.copy_(grad)
        self.backward.replay()
        return [None if g is None else g.clone() for g in self.grads]


class _Lease:
    """A capture's claim: from a forward with gradients until its backward or the end of its autograd graph."""

    def __init__(self, capture: Capture) -> None:
        self.capture, self.ended = capture, False
        capture.free = False

    def end(self) -> None:
        if not self.ended:
            self.ended, self.capture.free = True, True

    def __del__(self) -> None:  # the autograd graph holding this lease was freed without a backward
        self.end()


class _Replay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, capture: Capture, *args):
        out = capture.replay_forward(args)
        ctx.lease = _Lease(capture)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        lease: _Lease = ctx.lease
        if lease.ended:
            raise RuntimeError("a circuit call replayed from a CUDA graph was differentiated twice (retain_graph=True); "
                               "its activations may be overwritten: run it under qmodels.cuda_graphs.eager()")
        grads = lease.capture.replay_backward(grad)
        lease.end()
        return (None, *grads)


class GraphedCall:
    """Calls replayed from captures, a few per signature (shapes, dtypes, devices, which inputs want gradients,
    the stream and autocast); ``capture`` records them (``CudaCapture`` on a GPU). The function comes with each
    call, so that a cache keyed by a module does not keep it alive."""

    def __init__(self, capture: Callable[[Fn, Args, bool], Capture] = CudaCapture) -> None:
        self.capture = capture
        self.captures: OrderedDict[tuple, list[Capture]] = OrderedDict()
        self.failed = False  # a recording failed: every later call runs eagerly

    def __call__(self, fn: Fn, *args: torch.Tensor | None) -> torch.Tensor:
        if self.failed:
            return fn(*args)
        grad = torch.is_grad_enabled() and any(a is not None and a.requires_grad for a in args)
        key = (tuple(None if a is None else (a.shape, a.dtype, a.device, grad and a.requires_grad) for a in args),
               _stream(args), torch.is_autocast_enabled("cuda"))
        pool = self.captures.get(key)
        if pool is None:
            self._evict()
            pool = self.captures[key] = []
        else:
            self.captures.move_to_end(key)
        capture = next((c for c in pool if c.free), None)
        if capture is None:
            if len(pool) >= _CAPACITY:
                return fn(*args)
            try:
                capture = self.capture(fn, args, grad)
            except torch.cuda.OutOfMemoryError:
                raise
            except RuntimeError as error:  # e.g. a GPU or driver that cannot capture: slower, not wrong
                self.failed = True
                warnings.warn(f"recording a CUDA graph of {type(fn).__name__} failed ({error}); its calls run eagerly")
                return fn(*args)
            pool.append(capture)
        return _Replay.apply(capture, *args) if capture.differentiable else capture.replay_forward(args)

    def _evict(self) -> None:
        """At _SIGNATURES, make room: drop the least recently used signature none of whose captures is leased."""
        if len(self.captures) < _SIGNATURES:
            return
        for key, pool in self.captures.items():
            if all(c.free for c in pool):
                del self.captures[key]
                return


def _first(args: Args) -> torch.Tensor | None:
    return next((a for a in args if a is not None), None)


def _stream(args: Args) -> int | None:
    """The current stream's id on the arguments' GPU (a capture replays on one stream only)."""
    first = _first(args)
    return torch.cuda.current_stream(first.device).stream_id if first is not None and first.is_cuda else None


# per module: its buffers (address, dtype, shape) when recorded (moved or retyped, the old captures would read
# memory the module no longer uses); the value does not refer to the module, so the entry goes with it
_graphed: "weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, GraphedCall]]" = weakref.WeakKeyDictionary()


def call(module: torch.nn.Module, *args: torch.Tensor | None) -> torch.Tensor:
    """``module(*args)``; replayed from a CUDA graph when the arguments are on a GPU."""
    first = _first(args)
    if (not _enabled or first is None or not first.is_cuda or torch.cuda.is_current_stream_capturing()
            or torch.is_inference_mode_enabled()):
        return module(*args)
    buffers = tuple((b.data_ptr(), b.dtype, b.shape) for b in module.buffers())
    seen = _graphed.get(module)
    if seen is None or seen[0] != buffers:
        seen = _graphed[module] = (buffers, GraphedCall())
    return seen[1](module, *args)


@contextmanager
def eager() -> Iterator[None]:
    """CUDA calls run eagerly for a while (benchmarks compare; double backward through a circuit needs it)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before
