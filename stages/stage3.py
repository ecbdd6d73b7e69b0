"""Entry point of `make stage3`: see sa_slm/recipes/stage3.py (also `python -m sa_slm.recipes.stage3`)."""

import sys

from sa_slm.recipes.stage3 import main

if __name__ == "__main__":
    sys.exit(main())
