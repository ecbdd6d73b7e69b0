"""Small copies of the paper's corpora as they are downloaded, field for field (layouts: the recipes'
module docstrings in sa_slm/corpora/), built in a test's tmp folder from the tiny corpus's wavs.

Each builder returns the source folder and writes exactly one malformed row, so that a test can see it
skipped with its reason. Audio is stored as the source stores it: paths in JSON for InstructS2S and
EmoVoice-DB (with the authors' folder prefix the readers must see through), encoded bytes in HF `Audio`
parquet structs for Genshin Voice and EmoNet-Voice.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sa_slm.paths import CORPUS_DIR

WAVS = CORPUS_DIR / "wavs"
AUDIO_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # HF datasets' Audio storage


def _copy(name: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(WAVS / name, dest)
    return dest


def _hf_audio(name: str, path_in_source: str) -> dict:
    return {"bytes": (WAVS / name).read_bytes(), "path": path_in_source}


def instructs2s(root: Path) -> Path:
    """Extracted InstructS2S-200K: one JSON list of dialogues, wavs under `wavs/`, paths as written by
    the authors (`data/multiturn_instruction/en/...`)."""
    src = root / "InstructS2S-200K"
    prefix = "data/multiturn_instruction/en"
    for name in ("q00.wav", "r00_neutral.wav", "q01.wav", "r01_happy.wav", "q02.wav", "q03.wav"):
        _copy(name, src / "wavs" / name)
    dialogues = [
        {"id": "conv_0", "conversation": [
            {"from": "human", "text": "How was your weekend?", "speech": f"{prefix}/wavs/q00.wav"},
            {"from": "gpt", "text": "It was quiet, I stayed at home.", "speech": f"{prefix}/wavs/r00_neutral.wav",
             "unit": "<12><873><5>"},
            {"from": "human", "text": "Did you win the game?", "speech": f"{prefix}/wavs/q01.wav"},
            {"from": "gpt", "text": "Yes, we won by two points!", "speech": f"{prefix}/wavs/r01_happy.wav",
             "unit": "<7><7><91>"},
        ]},
        {"id": "conv_1", "conversation": [  # a response with units only, no response speech
            {"from": "human", "text": "What time is it?", "speech": f"{prefix}/wavs/q02.wav"},
            {"from": "gpt", "text": "It is almost noon.", "unit": "<3><4>"},
        ]},
        {"id": "conv_2", "conversation": [  # malformed: the response has no text
            {"from": "human", "text": "Tell me a joke.", "speech": f"{prefix}/wavs/q03.wav"},
            {"from": "gpt", "unit": "<1><2>"},
        ]},
    ]
    (src / "instruct_en_200k_data.json").write_text(json.dumps(dialogues), encoding="utf-8")
    return src


def emovoice(root: Path) -> Path:
    """EmoVoice-DB: `train.jsonl` / `test.jsonl`, audio in emotion folders, `target_wav` with a prefix."""
    src = root / "EmoVoice-DB"
    rows = [
        ("gpt4o_100_angry_ash", "r00_angry.wav", "angry", "A sharp, furious tone with clipped words."),
        ("gpt4o_101_sad_verse", "r01_sad.wav", "sad", "Quiet and heavy, as if holding back tears!"),
        ("gpt4o_102_happy_sage", "r02_happy.wav", "happy", "Bright and bubbling with joy."),
    ]
    texts = {"r00_angry.wav": "It was quiet, I stayed at home.", "r01_sad.wav": "Yes, we won by two points.",
             "r02_happy.wav": "The train leaves at nine."}
    lines = []
    for key, wav, emotion, description in rows:
        _copy(wav, src / emotion / f"{key}.wav")
        lines.append({"key": key, "source_text": texts[wav], "target_text": texts[wav], "emotion": emotion,
                      "emotion_text_prompt": description, "target_wav": f"EmoVoice-DB/{emotion}/{key}.wav"})
    # malformed: the audio it names is not in the download
    lines.append({"key": "gpt4o_103_fearful_ballad", "source_text": "Who is there?", "target_text": "Who is there?",
                  "emotion": "fearful", "emotion_text_prompt": "Trembling with fear.",
                  "target_wav": "EmoVoice-DB/fearful/gpt4o_103_fearful_ballad.wav"})
    (src / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    _copy("r03_neutral.wav", src / "neutral" / "gpt4o_104_neutral_coral.wav")
    test = {"key": "gpt4o_104_neutral_coral", "source_text": "Please close the door.",
            "target_text": "Please close the door.", "emotion": "neutral", "emotion_text_prompt": "Plain and even.",
            "target_wav": "EmoVoice-DB/neutral/gpt4o_104_neutral_coral.wav",
            "neutral_speaker_wav": "EmoVoice-DB/neutral/gpt4o_104_neutral_coral.wav"}
    (src / "test.jsonl").write_text(json.dumps(test) + "\n", encoding="utf-8")
    return src


GENSHIN_ROWS = [  # (wav, transcription, language, speaker, speaker_type, type, inGameFilename)
    ("r00_happy.wav", "Let's go on an adventure!", "English(US)", "Paimon", "Avatar", "Dialog", "vo_paimon_01.wem"),
    ("r01_calm.wav", "今天天气真好。", "Chinese", "Ganyu", "Avatar", "Fetter", "vo_ganyu_02.wem"),
    ("r02_sad.wav", "", "English(US)", "Venti", "Avatar", "Dialog", "vo_venti_03.wem"),  # malformed: no text
    ("r03_angry.wav", "Hey, {NICKNAME}! Over here!", "English(US)", "Amber", "Avatar", "Dialog", "vo_amber_04.wem"),
    ("r04_neutral.wav", "こんにちは。", "Japanese", "Ayaka", "Avatar", "Dialog", "vo_ayaka_05.wem"),
    ("r05_happy.wav", "<color=#FFD780FF>Victory</color> is ours.", "English(US)", "Diluc", "Avatar", "Card",
     "vo_diluc_06.wem"),
]


def genshin(root: Path) -> Path:
    """Genshin Voice: `data/train-00000-of-00001.parquet` with the card's columns, audio as HF bytes."""
    src = root / "genshin-voice"
    cols = list(zip(*GENSHIN_ROWS))
    table = pa.table({
        "audio": pa.array([_hf_audio(w, f"{g[:-4]}.wav") for w, g in zip(cols[0], cols[6])], AUDIO_STRUCT),
        "transcription": pa.array(cols[1], pa.string()), "language": pa.array(cols[2], pa.string()),
        "speaker": pa.array(cols[3], pa.string()), "speaker_type": pa.array(cols[4], pa.string()),
        "type": pa.array(cols[5], pa.string()), "inGameFilename": pa.array(cols[6], pa.string()),
    })
    (src / "data").mkdir(parents=True)
    pq.write_table(table, src / "data" / "train-00000-of-00001.parquet")
    return src


EMONET_ROWS = [  # (wav, clip file name, label cell)
    ("r00_angry.wav", "emonet_000001.wav", "[{'human-1': {'Anger': 2}}, {'human-4': {'Anger': 2}}]"),
    ("r01_sad.wav", "emonet_000002.wav", "[{'human-2': {'Sadness': 1}}, {'human-3': {'Sadness': 0}}, "
                                         "{'human-5': {'Sadness': 1}}]"),
    ("r02_calm.wav", "emonet_000003.wav", "[{'human-1': {'Impatience%20and%20Irritability': 0}}, "
                                          "{'human-4': {'Impatience%20and%20Irritability': 1}}]"),
    ("r03_happy.wav", "emonet_000004.wav", "[{'human-1': {'Elation': 2}}, {'human-4': {'Elation': 7}}]"),  # bad score
]
EMONET_TEXTS = {"emonet_000001": "How dare you touch my things!", "emonet_000002": "I miss the old house.",
                "emonet_000003": "Are we there yet? Come on.", "emonet_000004": "We did it, we actually did it!"}


def emonet_voice(root: Path) -> tuple[Path, Path]:
    """EmoNet-Voice Bench: `data/train-00000-of-00001.parquet` (audioId, label) and, beside the download,
    a transcripts TSV (the bench has no transcript column). Returns (source folder, transcripts file)."""
    src = root / "emonet-voice-bench"
    table = pa.table({
        "audioId": pa.array([_hf_audio(w, name) for w, name, _ in EMONET_ROWS], AUDIO_STRUCT),
        "label": pa.array([label for _, _, label in EMONET_ROWS], pa.string()),
    })
    (src / "data").mkdir(parents=True)
    pq.write_table(table, src / "data" / "train-00000-of-00001.parquet")
    transcripts = root / "emonet_transcripts.tsv"
    transcripts.write_text("".join(f"{k}\t{v}\n" for k, v in EMONET_TEXTS.items()), encoding="utf-8")
    return src, transcripts
