"""``python -m slob_bench`` (with tools/ on sys.path): see tools/bench."""

import sys

from slob_bench.harness import main

if __name__ == "__main__":
    sys.exit(main())
