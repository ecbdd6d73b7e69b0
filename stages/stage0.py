"""Entry point of `make stage0`: see sa_slm/recipes/stage0.py (also `python -m sa_slm.recipes.stage0`)."""

import sys

from sa_slm.recipes.stage0 import main

if __name__ == "__main__":
    sys.exit(main())
