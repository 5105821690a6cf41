"""The ``device`` setting: resolution and errors on any machine; every model's forward and backward on the
``meta`` device (a tensor a model makes on the CPU meets a meta tensor and fails, as it would on CUDA); the
training loops on CUDA, when this machine has a GPU."""

import os

import numpy as np
import pytest
import torch

from qaug.device import describe, device_of, resolve
from qaug.params import ParamsError
from qaug.reproducible import environment
from qmodels.adversarial import GANTrainConfig, train_gan
from qmodels.classical import SmallCNN
from qmodels.classical_gan import ClassicalGAN, ClassicalGANConfig
from qmodels.hqcnn import HQCNN, HQCNNConfig, TrainConfig, predict_proba, train_hqcnn
from qmodels.hybrid_qgan import HybridQGAN, HybridQGANConfig
from qmodels.hybridq import HybridQ, HybridQConfig
from qmodels.mosaiq import MosaiQ, MosaiQConfig
from qmodels.qgan import QGAN, QGANConfig
from qmodels.wgan import gradient_penalty

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the CPU checks above cover the plumbing)")


@pytest.mark.parametrize(("spec", "gpus", "expected"), [
    ("auto", 0, "cpu"), ("auto", 2, "cuda:0"), ("cpu", 2, "cpu"), ("cuda", 1, "cuda:0"), ("cuda:1", 2, "cuda:1")])
def test_device_resolves(spec, gpus, expected) -> None:
    assert resolve(spec, cuda_devices=gpus) == torch.device(expected)


@pytest.mark.parametrize(("spec", "gpus", "message"), [
    ("cuda", 0, "has no CUDA GPU.*set device: auto or cpu"), ("cuda:2", 2, "cuda:2 but this machine has 2 CUDA GPU"),
    ("gpu", 1, "device must be auto, cpu, cuda or cuda:N, got 'gpu'"), (0, 1, "device must be auto")])
def test_a_device_this_machine_lacks_is_named_with_the_fix(spec, gpus, message) -> None:
    with pytest.raises(ParamsError, match=message):
        resolve(spec, cuda_devices=gpus)


def test_metrics_record_the_device_the_stage_used() -> None:
    assert device_of({"device": "cpu"}) == torch.device("cpu") and device_of({}) == resolve("auto")  # auto: the default
    assert environment()["device"] == describe() == "cpu"  # stages without a model: the CPU
    assert environment(describe(torch.device("cpu")))["device"] == "cpu"


def test_a_stage_on_cuda_asks_for_repeatable_kernels(monkeypatch) -> None:
    device_of({"device": "cpu"})  # a CPU stage changes none of it: its bytes are what they were
    assert not torch.are_deterministic_algorithms_enabled()
    monkeypatch.setattr("qaug.device.resolve", lambda spec: torch.device("cuda", 0))  # no GPU needed
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    try:
        assert device_of({"device": "cuda"}) == torch.device("cuda", 0)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(False)


def test_a_bad_device_fails_the_params_check_before_any_stage() -> None:
    from tasks.stages import check_params
    from tests.pipeline_helpers import tiny_params

    with pytest.raises(ParamsError, match="device"):
        check_params({**tiny_params(), "device": "tpu"})


def _meta_backward(module: torch.nn.Module, *inputs: torch.Tensor, call=None) -> torch.Tensor:
    module.to("meta")
    out = (call or module)(*(t.to("meta") if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in inputs))
    out = out if isinstance(out, torch.Tensor) else out[0]
    assert out.device.type == "meta"
    out.float().sum().backward()
    return out


SIZE, C = 8, 3
GANS = {
    "patch": lambda: QGAN.create(QGANConfig(num_classes=C, image_size=SIZE, num_qubits=4, num_layers=1, grid=4)),
    "wgan-gp": lambda: HybridQGAN.create(HybridQGANConfig(num_classes=C, image_size=SIZE, latent=4, num_qubits=3, num_layers=1)),
    "hybridq": lambda: HybridQ.create(HybridQConfig(num_classes=C, image_size=SIZE, in_channels=1, sub_generators=2, num_qubits=3, num_layers=1)),
    "mosaiq": lambda: MosaiQ.create(MosaiQConfig(num_classes=C, image_size=SIZE, sub_generators=2, num_qubits=2, num_layers=1)),
    "dcgan": lambda: ClassicalGAN.create(ClassicalGANConfig(kind="dcgan", num_classes=C, image_size=SIZE, latent=4, grid=4)),
}


@pytest.mark.parametrize("name", sorted(GANS))
def test_generators_and_discriminators_make_no_tensor_off_their_device(name) -> None:
    model = GANS[name]()
    if name == "mosaiq":  # its PCA basis comes from data
        rng = np.random.default_rng(0)
        model.prepare(torch.as_tensor(rng.random((30, 1, SIZE, SIZE), dtype=np.float32)), torch.arange(30) % C)
    noise = model.generator.sample_noise(4, torch.Generator().manual_seed(0))
    # backward too: off the CPU the circuit kernels' backward has no data-dependent branch (a meta tensor has no
    # values to branch on; on CUDA such a branch is a host sync per call that a CUDA graph cannot capture)
    fake = _meta_backward(model.generator, noise)
    assert fake.shape == (C, 4, 1, SIZE, SIZE)
    labels = torch.arange(4).remainder(C).to("meta")
    images = torch.rand(4, 1, SIZE, SIZE)
    _meta_backward(model.discriminator, images, call=lambda x: model.discriminator(x, labels))
    penalty = gradient_penalty(lambda v: model.discriminator(v, labels), images.to("meta"), images.to("meta"),
                               torch.Generator().manual_seed(0))
    assert penalty.device.type == "meta"  # (HybridQ's reconstruction loss groups by label values: CUDA tests only)


def test_classifiers_make_no_tensor_off_their_device() -> None:
    hqcnn = HQCNN(HQCNNConfig(in_channels=1, image_size=SIZE, num_classes=C, conv_channels=2, num_qubits=3, num_layers=1))
    assert _meta_backward(hqcnn, torch.rand(4, 1, SIZE, SIZE)).shape == (4, C)
    assert all(p.grad is not None and p.grad.device.type == "meta" for p in hqcnn.quantum.parameters())
    assert _meta_backward(SmallCNN(1, SIZE, C), torch.rand(4, 1, SIZE, SIZE)).shape == (4, C)


def _data(n: int = 24):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, SIZE, SIZE), dtype=np.float32), np.arange(n) % C


@CUDA
def test_hqcnn_trains_and_predicts_on_cuda_like_on_the_cpu() -> None:
    images, labels = _data()
    cfg = HQCNNConfig(in_channels=1, image_size=SIZE, num_classes=C, conv_channels=2, num_qubits=3, num_layers=1)
    train = TrainConfig(epochs=2, min_steps=0, batch_size=8, max_restarts=0)
    cpu, gpu = (train_hqcnn(cfg, train, images, labels, device=d) for d in ("cpu", "cuda"))
    assert next(gpu.model.parameters()).is_cuda
    assert np.allclose(cpu.history["loss"], gpu.history["loss"], atol=1e-4)
    assert np.allclose(predict_proba(cpu.model, images), predict_proba(gpu.model, images), atol=1e-4)


@CUDA
@pytest.mark.parametrize("name", sorted(GANS))
def test_gans_train_and_sample_on_cuda_like_on_the_cpu(name) -> None:
    images, labels = _data()
    cfg = GANTrainConfig(steps=3, batch_size=4, loss="wgan-gp" if name == "wgan-gp" else "minimax", n_critic=2)
    cpu = train_gan(GANS[name](), images, labels, cfg, device="cpu")
    gpu = train_gan(GANS[name](), images, labels, cfg, device="cuda")
    assert gpu.device.type == "cuda"
    assert np.allclose(cpu.history["loss_d"], gpu.history["loss_d"], atol=1e-3)
    assert np.allclose(cpu.sample(1, 5, seed=3), gpu.sample(1, 5, seed=3), atol=1e-3)
