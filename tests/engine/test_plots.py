"""The one kernel roughness (second-difference energy over energy), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from neuroconv.engine.plots import roughness


def test_roughness_by_hand():
    # [0, 1, 0]: one interior lag, d2 = 0 - 2 + 0 = -2: 4 / 1
    assert roughness(np.array([0.0, 1.0, 0.0])) == pytest.approx(4.0)
    # [1, 2, 4, 8]: d2 = 1, 2 -> (1 + 4) / (1 + 4 + 16 + 64)
    assert roughness(np.array([1.0, 2.0, 4.0, 8.0])) == pytest.approx(5 / 85)
    # rows are averaged; a zero row is left out
    k = np.array([[0.0, 1.0, 0.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    assert roughness(k) == pytest.approx((4.0 + 0.0 / 14) / 2)
    # an alternating sign approaches the maximum, 16
    alt = (-1.0) ** np.arange(1000)
    assert roughness(alt) == pytest.approx(16 * 998 / 1000)
    assert roughness(np.linspace(-1, 3, 50)) == pytest.approx(0.0, abs=1e-20)


def test_brain_and_lra_share_it():
    """The brain plots re-export it; the LRA reproduction's kernel statistics are the
    same figure of the same kernels."""
    import torch

    from neuroconv import LongConv
    from neuroconv.brain import plots as brain_plots
    from neuroconv.engine.plots import model_kernels
    from neuroconv.lra.reproduce import kernel_stats

    assert brain_plots.roughness is roughness
    torch.manual_seed(0)
    net = torch.nn.Sequential(LongConv(6, 40), LongConv(6, 40, kernel_args={"smooth_width": 5}))
    (_, k0), (_, k1) = model_kernels(net)
    stats = kernel_stats(net)
    assert stats["roughness"] == pytest.approx((roughness(k0) + roughness(k1)) / 2)
    assert [r["roughness"] for r in stats["layers"]] == [pytest.approx(roughness(k0)), pytest.approx(roughness(k1))]
    assert roughness(k1) < roughness(k0)  # smoothing lowers it
