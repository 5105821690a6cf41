"""CUDA-graph replay of circuit calls (qmodels.cuda_graphs).

On any machine: the bookkeeping (which capture a call may reuse, when a lease ends, copies out of static buffers)
with a stand-in capture that keeps static buffers the way a CUDA graph does: a replay overwrites them, so a call
that reused a leased capture would corrupt an earlier call's output or gradients and fail these tests. On a CUDA
machine: real captures give the eager numbers, forward and backward, for every way qaug's models call circuits."""

import gc

import pytest
import torch

from qmodels import cuda_graphs
from qmodels.circuits import expval_generator_ansatz, hqcnn_ansatz, patch_generator_ansatz
from qmodels.cuda_graphs import Capture, GraphedCall
from qmodels.layer import QuantumLayer
from qmodels.subgenerators import SubGeneratorBank

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class StaticBuffers(Capture):
    """Replays ``fn`` into fixed output and gradient tensors, as a recorded graph would; counts replays."""

    made = 0

    def __init__(self, fn, args, grad) -> None:
        StaticBuffers.made += 1
        self.fn = fn
        self.inputs = [None if a is None else a.detach().clone().requires_grad_(grad and a.requires_grad) for a in args]
        self.wants = [a is not None and a.requires_grad for a in self.inputs]
        with torch.set_grad_enabled(grad):
            self.live = fn(*self.inputs)
        self.output = self.live.detach().clone()
        self.grads = [None if not w else torch.zeros_like(a) for a, w in zip(self.inputs, self.wants)]

    @property
    def differentiable(self) -> bool:
        return any(self.wants)

    def replay_forward(self, args):
        with torch.no_grad():
            for static, a in zip(self.inputs, args):
                if static is not None:
                    static.copy_(a)
        with torch.set_grad_enabled(self.differentiable):
            self.live = self.fn(*self.inputs)
        self.output.copy_(self.live.detach())
        return self.output.clone()

    def replay_backward(self, grad):
        leaves = [a for a, w in zip(self.inputs, self.wants) if w]
        got = iter(torch.autograd.grad(self.live, leaves, grad))
        for g in self.grads:
            if g is not None:
                g.copy_(next(got))
        return [None if g is None else g.clone() for g in self.grads]


def _layer() -> QuantumLayer:
    return QuantumLayer(hqcnn_ansatz(3, 2), copies=2, generator=torch.Generator().manual_seed(0))


def _inputs(seed: int) -> torch.Tensor:
    return torch.rand(5, 3, generator=torch.Generator().manual_seed(seed)).requires_grad_()


def test_calls_before_one_backward_each_get_their_own_capture_and_the_eager_gradients() -> None:
    layer = _layer()
    graphed = GraphedCall(capture=StaticBuffers)
    xs = [_inputs(s) for s in range(3)]
    outs = [graphed(layer.executor, x, layer.weight) for x in xs]  # three calls with gradients, then one backward
    assert len(graphed.captures) == 1 and len(next(iter(graphed.captures.values()))) == 3
    loss = sum((o * (k + 1)).square().sum() for k, o in enumerate(outs))
    loss.backward()
    got = [x.grad.clone() for x in xs] + [layer.weight.grad.clone()]
    for x in xs:
        x.grad = None
    layer.weight.grad = None
    eager = [layer.executor(x, layer.weight) for x in xs]
    for o, e in zip(outs, eager):
        assert torch.equal(o, e)
    sum((o * (k + 1)).square().sum() for k, o in enumerate(eager)).backward()
    for g, e in zip(got, [x.grad for x in xs] + [layer.weight.grad]):
        assert torch.equal(g, e)


def test_a_capture_is_reused_after_its_backward_or_when_its_graph_is_freed() -> None:
    layer = _layer()
    StaticBuffers.made = 0
    graphed = GraphedCall(capture=StaticBuffers)
    for step in range(4):  # a training loop: forward, backward
        graphed(layer.executor, _inputs(step), layer.weight).sum().backward()
    assert StaticBuffers.made == 1
    out = graphed(layer.executor, _inputs(9), layer.weight)  # leased ...
    graphed(layer.executor, _inputs(10), layer.weight)  # ... so this one records a second capture (its output dropped at once)
    assert StaticBuffers.made == 2
    del out
    gc.collect()
    for step in range(3):  # both free again: no new recording
        graphed(layer.executor, _inputs(step), layer.weight).sum().backward()
    assert StaticBuffers.made == 2


def test_calls_without_gradients_never_lease_and_keep_their_outputs() -> None:
    layer = _layer()
    StaticBuffers.made = 0
    graphed = GraphedCall(capture=StaticBuffers)
    with torch.no_grad():
        outs = [graphed(layer.executor, _inputs(s), layer.weight) for s in range(4)]
    assert StaticBuffers.made == 1  # one forward-only capture serves every call
    with torch.no_grad():
        for s, o in enumerate(outs):  # each output is a copy, not the static buffer the next call overwrote
            assert torch.equal(o, layer.executor(_inputs(s), layer.weight))
            assert not o.requires_grad


def test_past_the_capacity_calls_run_eagerly(monkeypatch) -> None:
    monkeypatch.setattr(cuda_graphs, "_CAPACITY", 2)
    layer = _layer()
    StaticBuffers.made = 0
    graphed = GraphedCall(capture=StaticBuffers)
    xs = [_inputs(s) for s in range(4)]
    outs = [graphed(layer.executor, x, layer.weight) for x in xs]
    assert StaticBuffers.made == 2
    sum(o.sum() for o in outs).backward()
    weight_grad = layer.weight.grad.clone()
    layer.weight.grad = None
    sum(layer.executor(x, layer.weight).sum() for x in xs).backward()
    assert torch.allclose(weight_grad, layer.weight.grad, atol=1e-6)


def test_a_second_backward_through_one_replay_is_refused() -> None:
    layer = _layer()
    graphed = GraphedCall(capture=StaticBuffers)
    out = graphed(layer.executor, _inputs(0), layer.weight).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="differentiated twice.*eager"):
        out.backward()


def test_a_failed_recording_leaves_the_calls_eager_and_says_so() -> None:
    class Refused(Capture):
        def __init__(self, fn, args, grad) -> None:
            raise RuntimeError("operation not permitted when stream is capturing")

    layer = _layer()
    graphed = GraphedCall(capture=Refused)
    with pytest.warns(UserWarning, match="recording a CUDA graph of StatevectorExecutor failed.*run eagerly"):
        out = graphed(layer.executor, _inputs(0), layer.weight)
    assert graphed.failed and torch.equal(out, layer.executor(_inputs(0), layer.weight))
    out.sum().backward()  # an ordinary autograd graph
    assert torch.equal(graphed(layer.executor, _inputs(1), layer.weight), layer.executor(_inputs(1), layer.weight))


def test_past_the_signature_limit_the_least_recently_used_free_one_goes(monkeypatch) -> None:
    monkeypatch.setattr(cuda_graphs, "_SIGNATURES", 3)
    layer = _layer()
    graphed = GraphedCall(capture=StaticBuffers)

    def call(batch: int) -> torch.Tensor:
        return graphed(layer.executor, torch.rand(batch, 3), layer.weight)
    kept = call(1)  # batch 1 stays leased (its output and autograd graph are alive)
    for batch in (2, 3, 2, 4):  # batch 3 is now the least recently used free signature
        call(batch).sum().backward()
    assert [key[0][0][0][0] for key in graphed.captures] == [1, 2, 4]
    kept.sum().backward()


def test_recording_runs_out_of_memory_is_raised_not_hidden() -> None:
    class OutOfMemory(Capture):
        def __init__(self, fn, args, grad) -> None:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    layer = _layer()
    graphed = GraphedCall(capture=OutOfMemory)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        graphed(layer.executor, _inputs(0), layer.weight)
    assert not graphed.failed  # the next call tries again


@pytest.mark.parametrize(("layers", "batch"), [(6, 36), (3, 47)])
def test_on_the_cpu_a_class_latents_do_not_depend_on_which_classes_are_asked_for(layers, batch) -> None:
    """MosaiQ's 8 sub-generators of 5 qubits: one call for every class changes the executor's fusion choice at
    these sizes (found by search; ~4e-7 apart), so the CPU calls per class."""
    bank = SubGeneratorBank(3, 8, 5, layers, generator=torch.Generator().manual_seed(0))
    noise = bank.sample_noise(batch, torch.Generator().manual_seed(1))
    every = bank.latents(noise, range(3))
    for c in range(3):
        assert torch.equal(every[c], bank.latents(noise, [c])[0])
    assert torch.equal(bank.latents(noise, [2, 0]), every[[2, 0]])


def test_off_cuda_the_module_runs_as_it_is() -> None:
    layer = _layer()
    x = _inputs(0)
    assert torch.equal(cuda_graphs.call(layer.executor, x, layer.weight), layer.executor(x, layer.weight))
    assert layer.executor not in cuda_graphs._graphed


# ---------------------------------------------------------------- on a GPU

def _compare(module_call, params, make_inputs) -> None:
    """Graphed and eager forward and backward agree over three rounds with new inputs and weights each round (a
    replay that kept the recorded values would fail), the graphed rounds reusing their recordings."""
    for round_ in range(3):
        inputs = make_inputs(round_)
        results = []
        for graphs in (True, False):
            for p in params:
                p.grad = None
            with (torch.enable_grad() if graphs else cuda_graphs.eager()):
                out = module_call(*inputs)
                out.square().sum().backward()
            results.append([out.detach()] + [p.grad.detach().clone() for p in params] +
                           [x.grad.detach().clone() for x in inputs if x.requires_grad])
            for x in inputs:
                x.grad = None
        for g, e in zip(*results):
            assert torch.allclose(g, e, atol=1e-5, rtol=1e-5), (g - e).abs().max()
        with torch.no_grad():
            for p in params:
                p.add_(0.1)


@CUDA
@pytest.mark.parametrize("ansatz", [hqcnn_ansatz(4, 2), patch_generator_ansatz(5, 2, 1), expval_generator_ansatz(6, 2, ("ry", "rx"))],
                         ids=["hqcnn", "patch", "expval"])
def test_graphed_layers_match_eager_on_cuda(ansatz) -> None:
    layer = QuantumLayer(ansatz, copies=3, generator=torch.Generator().manual_seed(0)).cuda()

    def inputs(round_):  # gradients for the weights and the inputs
        return (torch.rand(16, len(ansatz.inputs), generator=torch.Generator().manual_seed(round_)).cuda().requires_grad_(),)
    _compare(layer, [layer.weight], inputs)
    graphed = cuda_graphs._graphed[layer.executor][1]
    assert not graphed.failed and sum(map(len, graphed.captures.values())) == 1  # one recording, replayed each round


@CUDA
def test_a_bank_with_one_call_per_step_and_sampling_in_between_matches_eager_on_cuda() -> None:
    bank = SubGeneratorBank(3, 4, 5, 2, generator=torch.Generator().manual_seed(0)).cuda()

    def per_step(noise):
        outs = [bank.latents(noise, [c]) for c in range(3)]  # three leases before one backward
        outs.append(bank.latents(noise, range(3)))  # and a call for every class
        with torch.no_grad():
            outs.append(bank.latents(noise.flip(0), [2, 0]))  # a forward-only replay in between, compared too
        return torch.cat(outs)
    _compare(per_step, [bank.quantum.weight], lambda r: (torch.rand(8, 5, generator=torch.Generator().manual_seed(r)).cuda(),))


@CUDA
def test_a_moved_module_records_again_on_cuda() -> None:
    layer = _layer().cuda()
    x = torch.rand(5, 3, device="cuda")
    first = cuda_graphs.call(layer.executor, x, layer.weight)
    before = cuda_graphs._graphed[layer.executor][1]
    layer.double().float()  # new buffers: the old recordings read memory the module no longer uses
    again = cuda_graphs.call(layer.executor, x, layer.weight)
    assert cuda_graphs._graphed[layer.executor][1] is not before
    with cuda_graphs.eager():
        assert torch.allclose(first, again) and torch.allclose(again, layer(x))
