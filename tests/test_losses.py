"""Each loss against its paper equation, written here independently, in values and gradients, and at the edges."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_gfl.losses import distribution_focal_loss, generalized_focal_loss, quality_focal_loss, varifocal_loss

torch.manual_seed(0)


def ref_vfl(p, q, alpha=0.75, gamma=2.0):
    """VarifocalNet Eq. 2, term by term, on probabilities."""
    pos = -q * (q * torch.log(p) + (1 - q) * torch.log(1 - p))
    neg = -alpha * p**gamma * torch.log(1 - p)
    return torch.where(q > 0, pos, neg)


def ref_qfl(sigma, y, beta=2.0):
    """GFL Eq. 5 on probabilities."""
    return -torch.abs(y - sigma) ** beta * ((1 - y) * torch.log(1 - sigma) + y * torch.log(sigma))


def ref_dfl(logits, y):
    """GFL Eq. 6: softmax, then the two bins around y, one row at a time (plain Python indexing)."""
    out = []
    for row, t in zip(logits, y.tolist()):
        s = torch.softmax(row, 0)
        i = math.floor(t)
        out.append(-((i + 1 - t) * torch.log(s[i]) + (t - i) * torch.log(s[i + 1])))
    return torch.stack(out)


def interior(shape=(64,)):
    """Probabilities and targets away from 0 and 1, where the references are finite."""
    p = torch.rand(shape, dtype=torch.float64) * 0.98 + 0.01
    q = torch.rand(shape, dtype=torch.float64)
    q[::3] = 0.0  # negatives too
    return p, q


def grads(fn, x, *args):
    x = x.clone().requires_grad_(True)
    fn(x, *args).sum().backward()
    return x.grad


@pytest.mark.parametrize("alpha,gamma", [(0.75, 2.0), (0.25, 1.5)])
def test_vfl_matches_equation_on_probabilities_and_logits(alpha, gamma):
    p, q = interior()
    expected = ref_vfl(p, q, alpha, gamma)
    torch.testing.assert_close(varifocal_loss(p, q, alpha, gamma, logits=False).double(), expected, rtol=1e-5, atol=1e-6)
    logit = torch.log(p / (1 - p))
    torch.testing.assert_close(varifocal_loss(logit, q, alpha, gamma).double(), expected, rtol=1e-5, atol=1e-6)
    # gradients: d/dp of the equation (autograd on the reference) against ours
    torch.testing.assert_close(
        grads(lambda x, t: varifocal_loss(x, t, alpha, gamma, logits=False), p, q).double(),
        grads(lambda x, t: ref_vfl(x, t, alpha, gamma), p, q),
        rtol=1e-4,
        atol=1e-6,
    )
    torch.testing.assert_close(
        grads(lambda x, t: varifocal_loss(x, t, alpha, gamma), logit, q).double(),
        grads(lambda x, t: ref_vfl(torch.sigmoid(x), t, alpha, gamma), logit, q),
        rtol=1e-4,
        atol=1e-6,
    )


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_qfl_matches_equation_and_is_zero_at_target(beta):
    p, y = interior()
    expected = ref_qfl(p, y, beta)
    torch.testing.assert_close(quality_focal_loss(p, y, beta, logits=False).double(), expected, rtol=1e-5, atol=1e-6)
    logit = torch.log(p / (1 - p))
    torch.testing.assert_close(quality_focal_loss(logit, y, beta).double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        grads(lambda x, t: quality_focal_loss(x, t, beta, logits=False), p, y).double(),
        grads(lambda x, t: ref_qfl(x, t, beta), p, y),
        rtol=1e-4,
        atol=1e-6,
    )
    torch.testing.assert_close(
        grads(lambda x, t: quality_focal_loss(x, t, beta), logit, y).double(),
        grads(lambda x, t: ref_qfl(torch.sigmoid(x), t, beta), logit, y),
        rtol=1e-4,
        atol=1e-6,
    )
    at_target = quality_focal_loss(y.clamp(0.01, 0.99), y.clamp(0.01, 0.99), beta, logits=False)
    assert at_target.abs().max() < 1e-12


def test_dfl_matches_equation_values_and_gradients():
    logits = torch.randn(32, 16, dtype=torch.float64)
    y = torch.rand(32, dtype=torch.float64) * 14.99
    torch.testing.assert_close(distribution_focal_loss(logits, y).double(), ref_dfl(logits, y), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        grads(distribution_focal_loss, logits, y).double(), grads(ref_dfl, logits, y), rtol=1e-4, atol=1e-6
    )


def test_dfl_at_range_limit_and_minimum():
    logits = torch.randn(3, 16)
    top = distribution_focal_loss(logits, torch.full((3,), 15.0))
    torch.testing.assert_close(top, -torch.log_softmax(logits, -1)[:, 15])  # all weight on the last bin
    assert torch.isfinite(distribution_focal_loss(logits, torch.tensor([-3.0, 0.0, 99.0]))).all()  # clamped
    # minimum: the two-bin split of y; y = 4.25 -> mass 0.75 on bin 4, 0.25 on bin 5
    best = torch.full((1, 16), -1e4)
    best[0, 4], best[0, 5] = math.log(0.75), math.log(0.25)
    worse = best.clone()
    worse[0, 4], worse[0, 5] = math.log(0.5), math.log(0.5)
    y = torch.tensor([4.25])
    assert distribution_focal_loss(best, y) < distribution_focal_loss(worse, y)


def test_general_form_specialises_to_qfl_and_dfl():
    p, y = interior()
    gfl = generalized_focal_loss(1 - p, p, y, 0.0, 1.0, beta=2.0)
    torch.testing.assert_close(gfl, quality_focal_loss(p, y, 2.0, logits=False), rtol=1e-5, atol=1e-6)

    logits = torch.randn(32, 16)
    t = torch.rand(32) * 14.99
    prob = logits.softmax(-1)
    left = t.floor().long()
    gfl = generalized_focal_loss(
        prob.gather(1, left[:, None])[:, 0], prob.gather(1, left[:, None] + 1)[:, 0], t, left.float(), left + 1.0, 0.0
    )
    torch.testing.assert_close(gfl, distribution_focal_loss(logits, t), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", ["vfl", "qfl"])
def test_edges_are_finite_with_finite_gradients(fn):
    loss = {"vfl": varifocal_loss, "qfl": quality_focal_loss}[fn]
    p = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.5])
    q = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 1.0])
    x = p.clone().requires_grad_(True)
    out = loss(x, q, logits=False)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all() and (out >= 0).all()
    assert out[0] == 0 and out[3] == 0  # p = q = 0 and p = q = 1 are perfect predictions
    z = torch.tensor([-100.0, 100.0, -100.0, 100.0, 0.0]).requires_grad_(True)
    out = loss(z, torch.tensor([0.0, 1.0, 1.0, 0.0, 0.3]))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(z.grad).all()
    assert out[0] < 1e-30 and out[1] < 1e-30  # confident and right
    assert out[2] > 50 and out[3] > 30  # confident and wrong is penalised, not NaN


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_float32_under_autocast(dtype):
    p = torch.randn(8, 5).to(dtype)
    q = torch.rand(8, 5).to(dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = [varifocal_loss(p, q), quality_focal_loss(p, q), quality_focal_loss(p.float().sigmoid(), q, logits=False)]
        outs.append(distribution_focal_loss(torch.randn(8, 16).to(dtype), torch.rand(8) * 15))
    for out in outs:
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
