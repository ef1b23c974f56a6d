"""``neuroconv bench``: speed and memory benchmarks."""

from __future__ import annotations


def add_bench(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory benchmarks",
                       description="Speed and memory benchmarks.")
    p.set_defaults(func=None, _parser=p)
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    from neuroconv.pipelines.bench import add_bench_preprocess

    add_bench_preprocess(bsub)
