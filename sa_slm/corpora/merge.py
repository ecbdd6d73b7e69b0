"""Several prepared manifests → one, for a stage that trains on more than one corpus.

Stage 2 of the paper trains on Genshin and EmoVoice-DB together; each is prepared into its own folder
(`sa-slm data prepare`), then `sa-slm data merge --out data/expressive/train.jsonl A.jsonl B.jsonl`
writes one manifest that points at the same audio files (no copies):

- audio paths are rewritten relative to the merged manifest's folder (`../genshin/wavs/x.wav`);
- every id becomes `<corpus>/<id>`, `<corpus>` being the source manifest's folder name (or the name
  given with `NAME=path`), so ids from two corpora never collide; a `corpus` label records it;
- a bad line of a source manifest is left out and reported (the same checks `load_manifest` makes);
  a corpus name given twice is an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..data.manifest import BadLine, example_to_json, read_manifest
from ..errors import ManifestError
from ..paths import write_text_atomic

AUDIO_KEYS = ("user_audio", "reply_audio")


@dataclass
class MergeResult:
    path: Path
    counts: dict[str, int]  # corpus name → items written
    bad: list[BadLine] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def parse_source(spec: str | Path) -> tuple[str, Path]:
    """`NAME=path` or `path` (the name is then the manifest's folder name)."""
    text = str(spec)
    name, sep, path = text.partition("=")
    if sep and name and "/" not in name and os.sep not in name:
        return name, Path(path)
    path = Path(text)
    return path.resolve().parent.name, path


def merge_manifests(sources: list[str | Path], out: str | Path) -> MergeResult:
    """Write the items of every source manifest into `out` (see the module docstring)."""
    out = Path(out)
    named = [parse_source(s) for s in sources]
    if not named:
        raise ManifestError("data merge: give at least one manifest to merge")
    seen: dict[str, Path] = {}
    for name, path in named:
        if name in seen:
            raise ManifestError(f"data merge: corpus name {name!r} is used by {seen[name]} and {path}; "
                                f"name them apart with NAME=path")
        seen[name] = path
        if not path.is_file():
            raise ManifestError(f"{path}: manifest not found")
    lines, counts, bad_lines = [], {}, []
    for name, path in named:
        examples, bad = read_manifest(path)
        bad_lines += bad
        for ex in examples:
            obj = example_to_json(ex, path.parent)
            for key in AUDIO_KEYS:
                if obj.get(key) is not None:
                    obj[key] = os.path.relpath((path.parent / obj[key]).resolve(), out.parent.resolve())
            obj["id"] = f"{name}/{ex.id}"
            obj.setdefault("corpus", name)
            lines.append(json.dumps(obj, ensure_ascii=False))
        counts[name] = len(examples)
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    return MergeResult(out, counts, bad_lines)
