"""Where the files that ship inside the package live: model presets, rubrics, stage configs, the tiny corpus.

Everything is package data under `sa_slm/resources/`, found with `importlib.resources`, so a wheel
installed anywhere finds it; the checkout's top-level `configs/`, `rubrics/` and `data/tiny_corpus`
are links into that folder. Configs refer to shipped files as `${resource:tiny_corpus/manifest.jsonl}`
(an OmegaConf resolver registered by `sa_slm.config`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: The package-data folder (a real folder: the package is installed unpacked, never imported from a zip).
RESOURCES = Path(str(files("sa_slm") / "resources"))
CONFIG_DIR = RESOURCES / "configs"
MODEL_CONFIG_DIR = CONFIG_DIR / "models"
RUBRIC_DIR = RESOURCES / "rubrics"
CORPUS_DIR = RESOURCES / "tiny_corpus"


def resource(relative: str) -> Path:
    """A shipped file by its path inside `sa_slm/resources/`; FileNotFoundError names what exists."""
    path = (RESOURCES / relative).resolve()
    if RESOURCES.resolve() not in path.parents or not path.exists():
        available = ", ".join(sorted(p.name for p in RESOURCES.iterdir()))
        raise FileNotFoundError(f"no shipped resource {relative!r} (resources: {available})")
    return path
