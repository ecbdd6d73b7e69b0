"""Entry point of `make stage1`: see sa_slm/recipes/stage1.py (also `python -m sa_slm.recipes.stage1`)."""

import sys

from sa_slm.recipes.stage1 import main

if __name__ == "__main__":
    sys.exit(main())
