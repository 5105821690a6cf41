import pytest
import torch

from qmodels.kernels import _prefix_suffix, kron_matrices, kron_vectors, probabilities, rotation_matrices


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_rotation_matrices_gradcheck(dtype) -> None:
    angles = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    b, c = torch.randn(5, 2, 2, dtype=dtype), torch.randn(5, 2, 2, dtype=dtype)
    a = torch.randn(5, 2, 2, dtype=dtype)
    assert torch.autograd.gradcheck(lambda t: rotation_matrices(t, a, b, c), (angles,))
    expected = a + torch.cos(angles)[..., None, None] * b + torch.sin(angles)[..., None, None] * c
    torch.testing.assert_close(rotation_matrices(angles, a, b, c), expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("n", [1, 3])
def test_kron_matches_torch_and_gradcheck(dtype, n: int) -> None:
    m = torch.randn(2, n, 2, 2, dtype=dtype, requires_grad=True)
    m.data[0, 0, 1, 0] = 0.0  # exact zeros must not break the backward pass
    expected = m[:, n - 1]
    for q in range(n - 2, -1, -1):
        expected = torch.stack([torch.kron(expected[k], m[k, q]) for k in range(2)])
    torch.testing.assert_close(kron_matrices(m), expected)
    assert torch.autograd.gradcheck(kron_matrices, (m,))
    v = torch.randn(4, n, 2, dtype=dtype, requires_grad=True)
    ev = v[:, n - 1]
    for q in range(n - 2, -1, -1):
        ev = torch.stack([torch.kron(ev[k], v[k, q]) for k in range(4)])
    torch.testing.assert_close(kron_vectors(v), ev)
    assert torch.autograd.gradcheck(kron_vectors, (v,))


def test_probabilities_gradcheck() -> None:
    z = torch.randn(3, 8, dtype=torch.complex128, requires_grad=True)
    torch.testing.assert_close(probabilities(z), z.abs().square())
    assert torch.autograd.gradcheck(probabilities, (z,))


def test_the_accelerator_backward_takes_the_same_products_without_looking_for_zeros() -> None:
    """Off the CPU the kron backward always takes prefix × suffix products (no host sync): the same numbers."""
    g = torch.randn(2, 5, 7, dtype=torch.complex128)
    torch.testing.assert_close(_prefix_suffix(g, -2), g.prod(-2, keepdim=True) / g)
    g[1, 2, 3] = 0.0
    others = _prefix_suffix(g, -2)
    torch.testing.assert_close(others[1, 2, 3], torch.cat([g[1, :2, 3], g[1, 3:, 3]]).prod())
    assert (others[1, :, 3] == 0).sum() == 4  # every other entry's product holds the zero
