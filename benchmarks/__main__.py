"""``python -m benchmarks [--quick]``: vizkit vs its peers and the limit, memory, then the RBM.

The peer comparison and the DeepDream memory check run every time. The RBM benchmark (seed 000's
full-MNIST run, tens of minutes) prints its recorded result from ``results/rbm.md`` unless
``--rbm`` asks to rerun it; ``--quick`` runs everything small and writes to ``results/quick/``.
"""

from __future__ import annotations

import argparse

from . import memory, peers, rbm_vs_sklearn
from .timing import RESULTS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run of everything")
    parser.add_argument("--rbm", action="store_true", help="rerun the full RBM benchmark")
    parser.add_argument("--skip-memory", action="store_true", help="skip the DeepDream check")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick else []
    peers.main(quick)
    if not args.skip_memory:
        memory.main(quick)
    recorded = RESULTS / "rbm.md"
    if args.quick:
        rbm_vs_sklearn.main(["--quick", "--out", str(RESULTS / "quick")])
    elif args.rbm or not recorded.exists():
        rbm_vs_sklearn.main([])
    else:
        print(f"\nRecorded RBM result ({recorded}; rerun with --rbm):\n")
        print(recorded.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
