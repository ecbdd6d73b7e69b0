"""Stage 2 (expressive intent grounding): the stage-1 recipe with the last Thinker layer trainable and
the reply-text CE on; see configs/stage2_*.yaml.

    python stages/stage2.py --config configs/stage2_tiny.yaml [key=value ...]
"""

import sys

from stage1 import main

if __name__ == "__main__":
    sys.exit(main())
