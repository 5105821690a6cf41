"""Shot-based backends agree with the exact executor within shot noise; fake devices add noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qmodels.backends import BackendSpec, ShotRunner, make_backend
from qmodels.circuits import hqcnn_ansatz, patch_generator_ansatz
from qmodels.executor import compile_ansatz

SHOTS = 4000


def _exact(ansatz, x, w) -> np.ndarray:
    with torch.no_grad():
        return compile_ansatz(ansatz, precision="double")(None if x is None else torch.as_tensor(x), torch.as_tensor(w)).numpy()


@pytest.fixture(scope="module")
def aer():
    return make_backend(BackendSpec.parse("aer"), seed_simulator=7)


def test_backend_spec_parsing() -> None:
    assert BackendSpec.parse("exact") == BackendSpec("exact")
    assert BackendSpec.parse("fake:FakeBrisbane") == BackendSpec("fake", "FakeBrisbane")
    assert BackendSpec.parse("ibm:ibm_torino") == BackendSpec("ibm", "ibm_torino")
    for bad in ("fake", "ibm:", "aer:x", "gpu"):
        with pytest.raises(ValueError, match="expected exact, aer, fake:<FakeName>"):
            BackendSpec.parse(bad)
    with pytest.raises(ValueError, match="does not exist in qiskit_ibm_runtime.fake_provider"):
        make_backend(BackendSpec("fake", "FakeNowhere"))


def test_classifier_expectations_on_aer_match_exact_within_shot_noise(aer) -> None:
    ansatz = hqcnn_ansatz(4, 2)
    rng = np.random.default_rng(0)
    x, w = rng.uniform(-np.pi, np.pi, (6, 4)), rng.uniform(-np.pi, np.pi, len(ansatz.weights))
    shots = ShotRunner(ansatz, aer, shots=SHOTS, seed_simulator=7)(x, w)
    exact = _exact(ansatz, x, w)
    assert shots.shape == exact.shape == (6, 4)
    sigma = np.sqrt(np.clip(1 - exact**2, 1e-3, None) / SHOTS)
    assert np.all(np.abs(shots - exact) < 5 * sigma + 1e-3), np.abs(shots - exact).max()


def test_patch_probabilities_with_postselection_on_aer(aer) -> None:
    ansatz = patch_generator_ansatz(5, 3, 1)
    rng = np.random.default_rng(1)
    x, w = rng.uniform(0, np.pi / 2, (4, 5)), rng.uniform(-np.pi, np.pi, (2, len(ansatz.weights)))  # 2 weight sets
    shots = ShotRunner(ansatz, aer, shots=SHOTS, seed_simulator=7)(x, w)
    exact = _exact(ansatz, x, w)
    assert shots.shape == exact.shape == (2, 4, 16)
    sigma = np.sqrt(exact * (1 - exact) / SHOTS)
    assert np.all(np.abs(shots - exact) < 5 * sigma + 2e-3)


def test_one_pub_per_batch(aer, monkeypatch) -> None:
    from qiskit.primitives import BackendSamplerV2 as SamplerV2

    calls = []
    original = SamplerV2.run

    def spy(self, pubs, *args, **kwargs):
        calls.append([np.shape(pub[1]) for pub in pubs])
        return original(self, pubs, *args, **kwargs)

    monkeypatch.setattr(SamplerV2, "run", spy)
    ansatz = patch_generator_ansatz(5, 2, 1)
    ShotRunner(ansatz, aer, shots=64)(np.zeros((32, 5)), np.zeros((8, len(ansatz.weights))))
    assert calls == [[(8, 32, 5 + len(ansatz.weights))]]  # 256 circuits' parameters, one job, one PUB


@pytest.mark.parametrize("seed", [0, 3])  # 0: qiskit-ibm-runtime's local mode would drop it
def test_fake_device_is_noisy_but_close_and_seeded(seed) -> None:
    ansatz = hqcnn_ansatz(4, 2)
    rng = np.random.default_rng(2)
    x, w = rng.uniform(-np.pi, np.pi, (4, 4)), rng.uniform(-np.pi, np.pi, len(ansatz.weights))
    device = make_backend(BackendSpec.parse("fake:FakeManilaV2"))
    first = ShotRunner(ansatz, device, shots=2000, seed_simulator=seed)(x, w)
    again = ShotRunner(ansatz, device, shots=2000, seed_simulator=seed)(x, w)
    exact = _exact(ansatz, x, w)
    np.testing.assert_array_equal(first, again)
    assert 0.0 < np.abs(first - exact).max() < 0.5
    assert np.corrcoef(first.ravel(), exact.ravel())[0, 1] > 0.8


def test_ibm_without_credentials_fails_early_without_leaking(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved account
    monkeypatch.setenv("QISKIT_IBM_CHANNEL", "")
    with pytest.raises(RuntimeError, match="use fake:FakeBrisbane .device noise. or aer"):
        make_backend(BackendSpec.parse("ibm:ibm_torino"))


def test_credential_errors_never_carry_the_token(monkeypatch) -> None:
    import qiskit_ibm_runtime

    secret = "dummy-secret-token-1234"

    class Refusing:
        def __init__(self, *args, **kwargs) -> None:
            raise ValueError(f"invalid token {kwargs.get('token')}")  # what a careless library might say

    monkeypatch.setenv("QISKIT_IBM_TOKEN", secret)
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Refusing)
    with pytest.raises(Exception) as err:
        make_backend(BackendSpec.parse("ibm:ibm_torino"))
    assert secret not in str(err.value) and err.value.__cause__ is None and err.value.__suppress_context__
