"""Error budgets for comparing a pipeline's output with nilearn's or MNE's own output.

The references are computed in float64 on the same input, so the only differences left
are the ones the arithmetic allows:

- a store keeps float32 arrays: rounding a float64 result to float32 moves each value by
  at most half a float32 ulp, ``eps32 / 2 * |x|``;
- two float64 computations of the same quantity by different but backward-stable
  algorithms (a pseudo-inverse vs ``lstsq``, one filter implementation vs another) differ
  by at most about ``n * cond * eps64`` times the signal's scale, where ``n`` is the
  longest sum involved and ``cond`` the condition number of the linear map.

A new release of nilearn or MNE that changes neither the maths nor the precision keeps
these tests green; one that does change them fails them, which is what we want to know.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def assert_matches_reference(actual, ref, *, stored_float32: bool = True, n: int | None = None,
                             cond: float = 1.0) -> None:
    """Assert ``actual`` equals the float64 reference ``ref`` within the budget above.

    ``n`` defaults to the longest axis of ``ref`` (the length of the longest sum in
    filtering or averaging); ``cond`` is the condition number of any linear solve.
    """
    actual = np.asarray(actual, dtype=np.float64)
    ref = np.asarray(ref)
    assert ref.dtype == np.float64, f"the reference must be float64 to budget against, got {ref.dtype}"
    assert actual.shape == ref.shape, (actual.shape, ref.shape)
    n = max(ref.shape) if n is None else n
    scale = float(np.max(np.abs(ref))) or 1.0
    atol = n * cond * EPS64 * scale
    rtol = EPS32 if stored_float32 else 0.0  # rounding to float32 (half an ulp), with a 2x margin
    np.testing.assert_allclose(actual, ref, rtol=rtol, atol=atol)
