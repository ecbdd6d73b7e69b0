"""Dataset recipes: local downloads of speech corpora → SA-SLM manifests with a data card.

`sa-slm data prepare NAME --src DIR --out DIR [--split S]`; `RECIPES` holds every registered recipe.
"""

from .base import RECIPES, SPEAKER_LABEL, AudioRef, CorpusError, Recipe, Row, SkippedItem, SourceItem, register
from . import emonet_voice, emovoice, genshin, instructs2s  # noqa: F401,E402 - register the paper's corpora
from . import generic  # noqa: F401,E402 - register the generic recipes (hf, folder, table)
from .writer import DEFAULT_USER_TEXT, PreparedCorpus, prepare  # noqa: E402

__all__ = ["DEFAULT_USER_TEXT", "RECIPES", "SPEAKER_LABEL", "AudioRef", "CorpusError", "PreparedCorpus", "Recipe",
           "Row", "SkippedItem", "SourceItem", "prepare", "register"]
