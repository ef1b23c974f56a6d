"""Validation and benchmark tooling for the Triton kernels (``neuroconv.kernels``).

The kernels know no layer; this package may import layers and models (it compiles a
``LongConv`` and a ``SequenceModel``, and checks ``ButterflyFFTConv`` against its
kernel). It reaches the kernels through their public modules only
(:mod:`neuroconv.kernels.launches`, :mod:`neuroconv.kernels.verify`, the ops).

Commands (each imports triton):

- ``python -m neuroconv.kernel_tools.check --json report.json [--quick]``: every check
  in one run, on a GPU or under the Triton interpreter (:mod:`.check`). ``backend="auto"``
  asks for this report when its self-check fails.
- ``python -m neuroconv.kernel_tools.bench``: the GPU benchmark grid with the roofline
  and memory columns (:mod:`.bench`).
- ``python -m neuroconv.kernel_tools.resources``: every kernel compiled offline for an
  NVIDIA target, its shared memory, registers and spills; no GPU needed (:mod:`.resources`).
- ``python -m neuroconv.kernel_tools.offsets``: the large-offset dry run, 64-bit index
  arithmetic past 2^31 elements under the interpreter (:mod:`.offsets`).

Modules used by the commands: :mod:`.precompile` (compile a run's kernel configurations
in parallel before it runs) and :mod:`.compare` (the learned-butterfly module against its
kernel).
"""
