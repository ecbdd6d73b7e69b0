"""The paper's dataset recipes read their sources' real layouts (fixtures: tests/corpus_fixtures.py):
values of every item, the malformed row skipped with its reason, a wrong folder refused; and end to end
through `sa-slm data prepare`: the manifest, the audio, the skip report and the data card."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import corpus_fixtures as fx
from sa_slm.cli import main as cli_main
from sa_slm.corpora import RECIPES, CorpusError, SkippedItem, SourceItem
from sa_slm.data import load_manifest


def rows(name, src, split=None, **options):
    recipe = RECIPES[name]
    out = list(recipe.read(src, split or recipe.splits[0], **options))
    return [r for r in out if isinstance(r, SourceItem)], [r for r in out if isinstance(r, SkippedItem)]


def audio_bytes(ref) -> bytes:
    return Path(ref).read_bytes() if isinstance(ref, Path) else ref["bytes"]


# ---------------------------------------------------------------- InstructS2S-200K

def test_instructs2s_dialogues_become_one_item_per_exchange(tmp_path):
    src = fx.instructs2s(tmp_path)
    items, skipped = rows("instructs2s", src)

    assert [i.id for i in items] == ["conv_0_0", "conv_0_1", "conv_1_0"]
    first, second, units_only = items
    assert (first.user_text, first.reply_text) == ("How was your weekend?", "It was quiet, I stayed at home.")
    # the authors' prefix data/multiturn_instruction/en/ is seen through, to the right clips
    assert first.user_audio == src / "wavs" / "q00.wav" and first.reply_audio == src / "wavs" / "r00_neutral.wav"
    assert audio_bytes(second.reply_audio) == (fx.WAVS / "r01_happy.wav").read_bytes()
    assert second.history == [{"role": "user", "text": "How was your weekend?"},
                              {"role": "assistant", "text": "It was quiet, I stayed at home."}]
    assert second.labels == {"dialogue_id": "conv_0", "turn": 1}
    assert units_only.reply_audio is None and units_only.user_audio == src / "wavs" / "q02.wav"
    assert not any("speaker" in i.labels for i in items)

    assert [(s.where, s.id, s.reason) for s in skipped] == [
        ("instruct_en_200k_data.json#2", "conv_2", "empty text: turn 1 (gpt) has no text")]


def test_instructs2s_missing_audio_is_reported_not_guessed(tmp_path):
    src = fx.instructs2s(tmp_path)
    (src / "wavs" / "q01.wav").unlink()
    items, skipped = rows("instructs2s", src)
    assert [i.id for i in items] == ["conv_1_0"]  # the whole dialogue goes: its second exchange lost its audio
    assert skipped[0].id == "conv_0" and skipped[0].reason == (
        f"audio not found: turn 2 speech 'data/multiturn_instruction/en/wavs/q01.wav' not under {src}")


def test_instructs2s_refuses_a_folder_without_dialogues(tmp_path):
    (tmp_path / "en_part_aa").write_bytes(b"\x1f\x8b")  # the download, not yet extracted
    with pytest.raises(CorpusError, match=r"no JSON/JSONL file of dialogues.*cat en_part_\*"):
        rows("instructs2s", tmp_path)
    with pytest.raises(CorpusError, match="not a folder"):
        rows("instructs2s", tmp_path / "missing")


# ---------------------------------------------------------------- EmoVoice-DB

def test_emovoice_lines_keep_emotion_description_and_voice(tmp_path):
    src = fx.emovoice(tmp_path)
    items, skipped = rows("emovoice", src)

    assert [i.id for i in items] == ["gpt4o_100_angry_ash", "gpt4o_101_sad_verse", "gpt4o_102_happy_sage"]
    angry, sad, _ = items
    assert angry.reply_text == "It was quiet, I stayed at home."
    assert angry.reply_audio == src / "angry" / "gpt4o_100_angry_ash.wav"  # EmoVoice-DB/ prefix seen through
    assert audio_bytes(angry.reply_audio) == (fx.WAVS / "r00_angry.wav").read_bytes()
    assert angry.user_text == ("Say this sentence with emotion of A sharp, furious tone with clipped words.\n"
                               "It was quiet, I stayed at home.")
    assert sad.user_text.startswith("Say this sentence with emotion of Quiet and heavy, as if holding back tears.\n")
    assert angry.labels == {"emotion": "angry", "emotion_description": "A sharp, furious tone with clipped words.",
                            "speaker_id": "ash"}
    assert [(s.where, s.id) for s in skipped] == [("train.jsonl:4", "gpt4o_103_fearful_ballad")]
    assert skipped[0].reason == f"audio not found: target_wav 'EmoVoice-DB/fearful/gpt4o_103_fearful_ballad.wav' " \
        f"not under {src}"


def test_emovoice_test_split_and_wrong_folder(tmp_path):
    src = fx.emovoice(tmp_path)
    (item,), () = rows("emovoice", src, "test")
    assert item.labels["neutral_speaker_wav"] == "EmoVoice-DB/neutral/gpt4o_104_neutral_coral.wav"
    assert item.labels["speaker_id"] == "coral"
    with pytest.raises(CorpusError, match=r"no JSONL file for split 'validation'.*found: test.jsonl, train.jsonl"):
        rows("emovoice", src, "validation")


def test_emovoice_line_that_is_not_utf8_is_skipped_alone(tmp_path):
    src = fx.emovoice(tmp_path)
    lines = (src / "train.jsonl").read_bytes().splitlines(keepends=True)
    lines.insert(1, b'{"key": "gpt4o_1_sad_x", "target_text": "caf\xe9"}\n')  # Latin-1, not UTF-8
    (src / "train.jsonl").write_bytes(b"".join(lines))
    items, skipped = rows("emovoice", src)
    assert [i.id for i in items] == ["gpt4o_100_angry_ash", "gpt4o_101_sad_verse", "gpt4o_102_happy_sage"]
    assert [(s.where, s.id) for s in skipped] == [("train.jsonl:2", None),
                                                  ("train.jsonl:5", "gpt4o_103_fearful_ballad")]
    assert skipped[0].reason.startswith("bad JSON: 'utf-8' codec can't decode byte 0xe9")


# ---------------------------------------------------------------- Genshin Voice

def test_genshin_rows_carry_character_and_language(tmp_path):
    src = fx.genshin(tmp_path)
    items, skipped = rows("genshin", src)

    assert [i.id for i in items] == ["English(US)_vo_paimon_01", "Chinese_vo_ganyu_02",
                                     "Japanese_vo_ayaka_05", "English(US)_vo_diluc_06"]
    paimon, ganyu, _, diluc = items
    assert paimon.reply_text == "Let's go on an adventure!"
    assert paimon.user_text == "Say this sentence.\nLet's go on an adventure!"
    assert paimon.reply_audio["bytes"] == (fx.WAVS / "r00_happy.wav").read_bytes()
    assert ganyu.reply_audio["bytes"] == (fx.WAVS / "r01_calm.wav").read_bytes()
    assert paimon.labels == {"speaker_id": "Paimon", "language": "English(US)", "speaker_type": "Avatar",
                             "type": "Dialog", "in_game_filename": "vo_paimon_01.wem"}
    assert diluc.reply_text == "Victory is ours."  # the game's colour markup is not spoken
    where = "data/train-00000-of-00001.parquet"
    assert [(s.where, s.id, s.reason) for s in skipped] == [
        (f"{where}#2", "English(US)_vo_venti_03", "empty text: the 'transcription' cell is empty"),
        (f"{where}#3", "English(US)_vo_amber_04",
         "game placeholder: the transcription holds {NICKNAME}, which the audio cannot say as written"),
    ]


def test_genshin_language_option_and_wrong_folder(tmp_path):
    src = fx.genshin(tmp_path)
    items, skipped = rows("genshin", src, language="english(us), Chinese")
    assert [i.labels["language"] for i in items] == ["English(US)", "Chinese", "English(US)"]
    assert len(skipped) == 2  # the malformed English rows; the Japanese row is filtered, not reported
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match=r"no parquet files for split 'train' of Genshin Voice"):
        rows("genshin", tmp_path / "empty")


# ---------------------------------------------------------------- EmoNet-Voice

def test_emonet_voice_prompts_carry_every_rating(tmp_path):
    src, transcripts = fx.emonet_voice(tmp_path)
    items, skipped = rows("emonet_voice", src, transcripts=str(transcripts))

    assert [i.id for i in items] == ["emonet_000001", "emonet_000002", "emonet_000003"]
    anger, sadness, impatience = items
    assert anger.reply_text == "How dare you touch my things!"
    assert anger.user_text == "Say this with anger in your voice.\nHow dare you touch my things!"
    assert anger.user_audio is None
    assert anger.reply_audio["bytes"] == (fx.WAVS / "r00_angry.wav").read_bytes()
    assert anger.labels == {"emotion": "Anger", "emotion_ratings": {"human-1": 2, "human-4": 2},
                            "emotion_intensity": 2.0, "emotion_present": True}
    assert sadness.labels["emotion_ratings"] == {"human-2": 1, "human-3": 0, "human-5": 1}
    assert sadness.labels["emotion_intensity"] == pytest.approx(2 / 3, abs=1e-4)
    assert sadness.labels["emotion_present"] is True  # 2 of 3 raters heard it
    assert impatience.labels["emotion"] == "Impatience and Irritability"  # URL-decoded
    assert impatience.labels["emotion_present"] is False  # 1 of 2 is not a majority
    assert [(s.where, s.id, s.reason) for s in skipped] == [
        ("data/train-00000-of-00001.parquet#3", "emonet_000004",
         "bad rating: rater 'human-4' score 7 is not 0, 1 or 2")]


def test_emonet_voice_min_intensity_and_missing_transcripts(tmp_path):
    src, transcripts = fx.emonet_voice(tmp_path)
    items, skipped = rows("emonet_voice", src, transcripts=str(transcripts), min_intensity="1")
    assert [i.id for i in items] == ["emonet_000001"]
    assert skipped[0].reason == "below min_intensity: mean expert rating 0.67 of 'Sadness' is below min_intensity=1"
    with pytest.raises(CorpusError, match=r"no transcript column .*--option transcripts=FILE"):
        rows("emonet_voice", src)
    with pytest.raises(CorpusError, match="min_intensity='high'"):
        rows("emonet_voice", src, transcripts=str(transcripts), min_intensity="high")


# ---------------------------------------------------------------- end to end: `sa-slm data prepare NAME`

def prepare_cli(capsys, name: str, src: Path, out: Path, *extra: str):
    """Run `sa-slm data prepare` in-process; (exit code, stderr, {id: Example}, card, skip report lines)."""
    code = cli_main(["data", "prepare", name, "--src", str(src), "--out", str(out), *extra])
    err = capsys.readouterr().err
    examples = {ex.id: ex for ex in load_manifest(out / "train.jsonl")}
    card = json.loads((out / "train.card.json").read_text(encoding="utf-8"))
    skipped = [json.loads(line) for line in (out / "train.skipped.jsonl").read_text(encoding="utf-8").splitlines()]
    return code, err, examples, card, skipped


def assert_same_audio(written: Path, source: Path) -> None:
    """The written WAV holds exactly the source clip's samples, at its sample rate."""
    got, got_sr = sf.read(str(written), dtype="int16")
    want, want_sr = sf.read(str(source), dtype="int16")
    assert got_sr == want_sr
    np.testing.assert_array_equal(got, want)


def assert_summary(err: str, out: Path, items: int, skipped: int, clips: list[str]) -> None:
    """The stderr summary line names the counts and the hours of reply audio (the source clips' total)."""
    hours = sum(sf.info(str(fx.WAVS / c)).duration for c in clips) / 3600
    assert f"prepared {items} items ({hours:.2f} h); skipped {skipped} (see {out / 'train.skipped.jsonl'})" in err


def assert_card(card: dict, items: int, speakers: int | None, skipped: dict[str, int], clips: list[str]) -> None:
    seconds = sum(sf.info(str(fx.WAVS / c)).duration for c in clips)
    assert (card["items"], card["speakers"], card["reply_clips"]) == (items, speakers, len(clips))
    assert card["reply_seconds"] == pytest.approx(seconds, abs=1e-6)
    assert card["skipped"]["by_reason"] == skipped and card["skipped"]["total"] == sum(skipped.values())


def test_prepare_instructs2s_end_to_end(tmp_path, capsys):
    src, out = fx.instructs2s(tmp_path), tmp_path / "out"
    code, err, examples, card, skipped = prepare_cli(capsys, "instructs2s", src, out)

    assert code == 1
    replies = ["r00_neutral.wav", "r01_happy.wav"]
    assert_summary(err, out, 3, 1, replies)
    assert list(examples) == ["conv_0_0", "conv_0_1", "conv_1_0"]
    first, second, units_only = examples.values()
    assert (first.user_text, first.reply_text) == ("How was your weekend?", "It was quiet, I stayed at home.")
    assert second.history == [("user", "How was your weekend?"), ("assistant", "It was quiet, I stayed at home.")]
    assert second.labels == {"dialogue_id": "conv_0", "turn": 1}
    assert_same_audio(first.user_audio, fx.WAVS / "q00.wav")
    assert_same_audio(first.reply_audio, fx.WAVS / "r00_neutral.wav")
    assert_same_audio(second.user_audio, fx.WAVS / "q01.wav")
    assert_same_audio(second.reply_audio, fx.WAVS / "r01_happy.wav")
    assert units_only.reply_audio is None and units_only.reply_text == "It is almost noon."
    assert_same_audio(units_only.user_audio, fx.WAVS / "q02.wav")

    bad = {"where": "instruct_en_200k_data.json#2", "id": "conv_2", "reason": "empty text: turn 1 (gpt) has no text"}
    assert skipped == [bad]
    assert_card(card, items=3, speakers=None, skipped={"empty text": 1}, clips=replies)
    assert card["skipped"]["examples"]["empty text"] == [bad]
    assert card["user_clips"] == 3 and card["labels"]["turn"]["counts"] == {"0": 2, "1": 1}
    assert (out / "train.texts.txt").read_text(encoding="utf-8").splitlines() == [
        "It was quiet, I stayed at home.", "Yes, we won by two points!", "It is almost noon."]


def test_prepare_emovoice_end_to_end(tmp_path, capsys):
    src, out = fx.emovoice(tmp_path), tmp_path / "out"
    code, err, examples, card, skipped = prepare_cli(capsys, "emovoice", src, out)

    assert code == 1
    clips = {"gpt4o_100_angry_ash": "r00_angry.wav", "gpt4o_101_sad_verse": "r01_sad.wav",
             "gpt4o_102_happy_sage": "r02_happy.wav"}
    assert_summary(err, out, 3, 1, list(clips.values()))
    assert list(examples) == list(clips)
    for item_id, clip in clips.items():
        assert_same_audio(examples[item_id].reply_audio, fx.WAVS / clip)
        assert examples[item_id].user_audio is None
    sad = examples["gpt4o_101_sad_verse"]
    assert sad.reply_text == "Yes, we won by two points."
    assert sad.user_text == ("Say this sentence with emotion of Quiet and heavy, as if holding back tears.\n"
                             "Yes, we won by two points.")
    assert sad.labels == {"emotion": "sad", "emotion_description": "Quiet and heavy, as if holding back tears!",
                          "speaker_id": "verse"}
    assert sad.speaker is None  # a source voice is a label, never the model's Token2Wav speaker

    assert skipped == [{"where": "train.jsonl:4", "id": "gpt4o_103_fearful_ballad",
                        "reason": f"audio not found: target_wav 'EmoVoice-DB/fearful/gpt4o_103_fearful_ballad.wav' "
                                  f"not under {src}"}]
    assert_card(card, items=3, speakers=3, skipped={"audio not found": 1}, clips=list(clips.values()))
    assert card["labels"]["emotion"]["counts"] == {"angry": 1, "happy": 1, "sad": 1}


def test_prepare_genshin_end_to_end(tmp_path, capsys):
    src, out = fx.genshin(tmp_path), tmp_path / "out"
    code, err, examples, card, skipped = prepare_cli(capsys, "genshin", src, out)

    assert code == 1
    kept = [r for r in fx.GENSHIN_ROWS if r[0] not in ("r02_sad.wav", "r03_angry.wav")]
    assert_summary(err, out, 4, 2, [r[0] for r in kept])
    assert list(examples) == [f"{r[2]}_{r[6][:-4]}" for r in kept]
    for (clip, _, language, speaker, speaker_type, kind, name), ex in zip(kept, examples.values()):
        assert_same_audio(ex.reply_audio, fx.WAVS / clip)
        assert ex.labels == {"speaker_id": speaker, "language": language, "speaker_type": speaker_type,
                             "type": kind, "in_game_filename": name}
    assert examples["Chinese_vo_ganyu_02"].reply_text == "今天天气真好。"  # non-ASCII text kept as it is
    assert examples["English(US)_vo_diluc_06"].reply_text == "Victory is ours."

    where = "data/train-00000-of-00001.parquet"
    assert skipped == [
        {"where": f"{where}#2", "id": "English(US)_vo_venti_03",
         "reason": "empty text: the 'transcription' cell is empty"},
        {"where": f"{where}#3", "id": "English(US)_vo_amber_04",
         "reason": "game placeholder: the transcription holds {NICKNAME}, which the audio cannot say as written"}]
    assert_card(card, items=4, speakers=4, skipped={"empty text": 1, "game placeholder": 1}, clips=[r[0] for r in kept])
    assert card["labels"]["language"]["counts"] == {"English(US)": 2, "Chinese": 1, "Japanese": 1}


def test_prepare_emonet_voice_end_to_end(tmp_path, capsys):
    src, transcripts = fx.emonet_voice(tmp_path)
    out = tmp_path / "out"
    code, err, examples, card, skipped = prepare_cli(capsys, "emonet_voice", src, out,
                                                     "--option", f"transcripts={transcripts}")

    assert code == 1
    kept = fx.EMONET_ROWS[:3]
    assert_summary(err, out, 3, 1, [r[0] for r in kept])
    assert list(examples) == ["emonet_000001", "emonet_000002", "emonet_000003"]
    for (clip, name, _), ex in zip(kept, examples.values()):
        assert_same_audio(ex.reply_audio, fx.WAVS / clip)
        assert ex.reply_text == fx.EMONET_TEXTS[name[:-4]]
    sadness = examples["emonet_000002"]
    assert sadness.user_text == "Say this with sadness in your voice.\nI miss the old house."
    assert sadness.labels == {"emotion": "Sadness", "emotion_ratings": {"human-2": 1, "human-3": 0, "human-5": 1},
                              "emotion_intensity": 0.6667, "emotion_present": True}
    assert examples["emonet_000003"].labels["emotion"] == "Impatience and Irritability"

    bad = {"where": "data/train-00000-of-00001.parquet#3", "id": "emonet_000004",
           "reason": "bad rating: rater 'human-4' score 7 is not 0, 1 or 2"}
    assert skipped == [bad]
    assert_card(card, items=3, speakers=None, skipped={"bad rating": 1}, clips=[r[0] for r in kept])
    assert card["skipped"]["examples"]["bad rating"] == [bad]
    assert card["labels"]["emotion_present"]["counts"] == {"true": 2, "false": 1}
