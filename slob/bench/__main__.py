"""``python -m slob.bench``: see ``slob bench --help``."""

import sys

from slob.bench.harness import main

if __name__ == "__main__":
    sys.exit(main())
