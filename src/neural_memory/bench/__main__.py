"""``python -m neural_memory.bench``: the bench CLI without the main neural-memory CLI."""

import argparse
import sys

from . import add_bench_arguments, run_bench


def main() -> int:
    parser = argparse.ArgumentParser(prog="neural-memory bench", description=__doc__)
    add_bench_arguments(parser)
    return run_bench(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
