"""Where the project's shipped files live. The one place that knows the repository layout."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: Root of the source checkout (configs/, data/, rubrics/ live here).
PROJECT_ROOT = Path(os.environ.get("SA_SLM_ROOT", PACKAGE_DIR.parent))
CONFIG_DIR = PROJECT_ROOT / "configs"
MODEL_CONFIG_DIR = CONFIG_DIR / "models"
DATA_DIR = PROJECT_ROOT / "data"
CORPUS_DIR = DATA_DIR / "tiny_corpus"
