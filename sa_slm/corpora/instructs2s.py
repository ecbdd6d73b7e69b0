"""InstructS2S-200K (LLaMA-Omni / LLaMA-Omni 2): spoken instructions → text + speech responses (stage 1).

Download: `huggingface-cli download --repo-type dataset ICTNLP/InstructS2S-200K --local-dir DIR`, then
`cat en_part_* > instructs2s_200k.tar.gz && tar -xzf instructs2s_200k.tar.gz` inside DIR (the dataset
card, https://huggingface.co/datasets/ICTNLP/InstructS2S-200K/blob/main/README.md, ships the archive as
split parts and says to rebuild it this way; the same release is linked as
ICTNLP/Multiturn-Speech-Conversations from github.com/ictnlp/LLaMA-Omni issue #39).

Layout read. The card does not document the archive's inside. What this reader expects is the
LLaMA-Omni conversation format as third-party loaders of this release read it (a training data loader
that strips the prefix `data/multiturn_instruction/en/` from its paths, and a test fixture of another
loader, both found by code search): JSON (a list) or JSONL files anywhere under DIR, one record per
dialogue,

    {"id": "...",                                     # optional
     "conversation": [                                # also accepted: "conversations"
        {"from": "human", "text": "...", "speech": "<path>.wav"},
        {"from": "gpt",   "text": "...", "speech": "<path>.wav", "unit": "<12><873>..."},
        ... more turns ...]}

`from` may also be "user"/"assistant", the text may be under "value", the audio under "audio" or "wav".
Audio paths are resolved under DIR, tolerant of the prefix the authors' machine put in front
(`data/multiturn_instruction/en/...`): the path as written (relative to the JSON file's folder or to
DIR), then with leading folders dropped one by one, then by file name anywhere under DIR. A path that
resolves outside DIR is refused.

Mapping, one item per assistant turn (a dialogue with N exchanges gives N items):
- id = `<dialogue id>_<k>` (k = 0-based exchange), the dialogue id being `id` or `<file>#<index>`;
- user_audio = the preceding human turn's speech, user_text = its text;
- reply_text = the assistant turn's text, reply_audio = its speech when the record has one;
- history = the earlier exchanges' texts; labels: `dialogue_id`, `turn` (k).
The assistant turns' `unit` strings are HuBERT k-means units of LLaMA-Omni's own vocoder, not codes of
the Qwen2.5-Omni Talker, so they are not carried. When the release holds no response speech, the items
have no reply_audio; stage 1 then needs Talker codes from elsewhere (see the README's Data section).
A dialogue that is not a list of turns, a turn without text, or a referenced audio file that is not
there is skipped with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from .base import CorpusError, Row, SkippedItem, SourceItem, register
from .sources import AudioLocator, files_under, json_records

USER_ROLES = {"human", "user"}
ASSISTANT_ROLES = {"gpt", "assistant"}


def _turns(record: Any) -> list | None:
    if not isinstance(record, dict):
        return None
    turns = record.get("conversation", record.get("conversations"))
    return turns if isinstance(turns, list) else None


def _first(turn: dict, keys: tuple[str, ...]) -> Any:
    return next((turn[k] for k in keys if turn.get(k) not in (None, "")), None)


def _dialogue(record: dict, where: str, json_dir: Path, audio: AudioLocator) -> Iterator[Row]:
    """The items of one dialogue record (or one SkippedItem saying why it cannot be used)."""
    dialogue_id = str(record["id"]) if record.get("id") not in (None, "") else where
    items: list[SourceItem] = []
    history: list[dict[str, str]] = []
    user: tuple[str | None, Path | None] | None = None  # the pending human turn: (text, audio)
    for t, turn in enumerate(_turns(record)):
        role = turn.get("from", turn.get("role")) if isinstance(turn, dict) else None
        if role not in USER_ROLES | ASSISTANT_ROLES:
            yield SkippedItem(where, dialogue_id, f"bad turn: turn {t} has 'from' {role!r}, expected one of "
                              f"{sorted(USER_ROLES | ASSISTANT_ROLES)}")
            return
        text = _first(turn, ("text", "value"))
        ref = _first(turn, ("speech", "audio", "wav"))
        path = None
        if ref is not None:
            path = audio.find(str(ref), json_dir)
            if path is None:
                yield SkippedItem(where, dialogue_id,
                                  f"audio not found: turn {t} speech {ref!r} not under {audio.root}")
                return
        if not isinstance(text, str) or not text.strip():
            if role in ASSISTANT_ROLES or path is None:
                yield SkippedItem(where, dialogue_id, f"empty text: turn {t} ({role}) has no text")
                return
        if role in USER_ROLES:
            user = (text, path)
            continue
        if user is None:  # an assistant turn that answers nothing: not an exchange
            history.append({"role": "assistant", "text": text})
            continue
        k = len(items)
        items.append(SourceItem(
            id=f"{dialogue_id}_{k}", reply_text=text, where=where, reply_audio=path,
            user_text=user[0], user_audio=user[1], history=list(history),
            labels={"dialogue_id": dialogue_id, "turn": k},
        ))
        if user[0]:
            history.append({"role": "user", "text": user[0]})
        history.append({"role": "assistant", "text": text})
        user = None
    if not items:
        yield SkippedItem(where, dialogue_id, "no exchange: no human turn is followed by an assistant turn")
    yield from items


@register("instructs2s", splits=("train",), stage="stage 1",
          summary="InstructS2S-200K (LLaMA-Omni): speech instruction → text/speech response dialogues")
def read(src: Path, split: str = "train") -> Iterator[Row]:
    """Every assistant turn of every dialogue in the JSON/JSONL files under `src` (layout: module doc)."""
    src = Path(src)
    if not src.is_dir():
        raise CorpusError(f"{src}: not a folder; expected the extracted InstructS2S-200K download")
    files = files_under(src, (".json", ".jsonl"))
    audio = AudioLocator(src)
    found = False
    for path in files:
        shown = path.relative_to(src).as_posix()
        records = json_records(path, shown)
        first = next(records, None)
        if first is None or (_turns(first[1]) is None and not isinstance(first[1], Exception)):
            continue  # not a dialogue file (a config, a card): the first record decides
        found = True
        for where, record in [first, *records]:
            if isinstance(record, Exception):
                yield SkippedItem(where, None, f"bad JSON: {record}")
            elif _turns(record) is None:
                yield SkippedItem(where, None, "bad record: expected an object with a 'conversation' list of turns")
            else:
                yield from _dialogue(record, where, path.parent, audio)
    if not found:
        raise CorpusError(
            f"{src}: no JSON/JSONL file of dialogues ({{'conversation': [{{'from': 'human', 'text', 'speech'}}, "
            "...]}) found; extract the download first: cat en_part_* > instructs2s_200k.tar.gz && "
            "tar -xzf instructs2s_200k.tar.gz")
