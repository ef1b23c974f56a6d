"""``python -m neuroconv.kernels.check``: the kernels' validation command under its first
name. It runs :mod:`neuroconv.kernel_tools.check` with the same arguments.

The validation tooling lives in ``neuroconv.kernel_tools`` because it builds layers and
models, which the kernel package must not import; this module imports nothing from it
(it only runs it as ``__main__``), so importing ``neuroconv.kernels`` stays free of the
layers above it.
"""

if __name__ == "__main__":
    import runpy

    runpy.run_module("neuroconv.kernel_tools.check", run_name="__main__", alter_sys=True)
