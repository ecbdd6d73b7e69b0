"""Entry point of `make stage2`: the stage-1 recipe (sa_slm/recipes/stage1.py) with a stage-2 config
(configs/stage2_*.yaml: the last Thinker layer trainable, the reply-text CE on)."""

import sys

from sa_slm.recipes.stage1 import main

if __name__ == "__main__":
    sys.exit(main())
