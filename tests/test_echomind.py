"""EchoMind adapter against the benchmark's public code (hlt-cuhksz/EchoMind, src/eval-slm/): its keys,
its output layout, its skip rule, its cues and prompts, its empty-result-on-failure contract."""

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sa_slm.data import load_manifest
from sa_slm.eval.echomind import (
    ENVIRONMENT_CUES,
    PARALINGUISTIC_CUES,
    SPEAKER_CUES,
    EchoMindError,
    EchoMindModel,
    EchoMindWarning,
    echomind_system_prompt,
    main,
    read_script_info,
    RESPONSE_TRUNCATED,
    run_echomind,
    score_responses,
    script_info_items,
    script_info_to_manifest,
    voice_labels,
)
from sa_slm.paths import CORPUS_DIR
from sa_slm.talker.sampling import SamplingConfig

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "echomind_sample"
WAVS = CORPUS_DIR / "wavs"
FAST = dict(seed=0, max_reply_tokens=6, sampling=SamplingConfig(max_new_codes=10))
QWEN = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
        "auditory and visual inputs, as well as generating text and speech.")


@pytest.fixture(scope="module")
def adapter(tiny):
    return EchoMindModel(tiny, **FAST)


def _upstream_dataset(root: Path) -> Path:
    """An EchoMind checkout's dataset/data_synthesis/ with only upstream keys; audio copied from the corpus."""
    data = root / "dataset" / "data_synthesis"
    cases = [("id_766", "school", "happy-toned expressive voice", "happy", ("target", "neutral", "alternative")),
             ("id_355", "family", "elderly", "elderly", ("target", "neutral", "alternative")),
             ("id_2471", "no_specific_topics", "sound of wind blowing", "sound of wind blowing", ("target", "neutral"))]
    out = []
    for i, (cid, topic, spoken, folder, voices) in enumerate(cases):
        case = {"case_id": cid, "topic": topic, "spoken_info": spoken}
        for ty in voices:
            rel = f"{folder}/{cid}_{folder}_{topic}_{ty}.wav"
            (data / "audio" / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(WAVS / f"q0{i}.wav", data / "audio" / rel)
            case[f"{ty}_audio_info"] = {f"{ty}_input_audio_file": rel}
        out.append(case)
    out[2]["alternative_audio_info"] = {"alternative_input_audio_file": "sound of wind blowing/gone.wav"}  # missing
    path = data / "script_info_synthesis.json"
    path.write_text(json.dumps(out, indent=4))
    return path


@pytest.mark.slow
def test_upstream_only_file_runs_end_to_end_in_upstream_layout(adapter, tmp_path):
    info = _upstream_dataset(tmp_path)
    out_root = tmp_path / "output" / "output_synthesis" / "response_output"
    with pytest.warns(EchoMindWarning, match=r"id_2471 \(alternative\): audio file not found"):
        path = run_echomind(adapter, info, out_root, prompt="basic", model_name="saslm", progress=False)
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.joinpath("output").rglob("*") if p.is_file()}
    base = "output/output_synthesis/response_output/saslm/basic"
    assert written == {f"{base}/saslm_basic_output_responses.json",
                       f"{base}/happy/id_766_saslm_response_target.wav",
                       f"{base}/happy/id_766_saslm_response_neutral.wav",
                       f"{base}/happy/id_766_saslm_response_alternative.wav",
                       f"{base}/elderly/id_355_saslm_response_target.wav",  # neutral: speaker trait, skipped
                       f"{base}/elderly/id_355_saslm_response_alternative.wav",
                       f"{base}/sound of wind blowing/id_2471_saslm_response_target.wav",
                       f"{base}/sound of wind blowing/id_2471_saslm_response_neutral.wav"}
    cases = json.loads(path.read_text())
    assert [c["case_id"] for c in cases] == ["id_766", "id_355", "id_2471"]
    assert all(c["model"] == "saslm" and c["ouput_prompt"] == "basic" for c in cases)
    assert cases[1]["output_content"]["neutral"] == {}
    assert cases[2]["output_content"]["alternative"] == {}
    target = cases[0]["output_content"]["target"]
    assert target["file"] == "id_766_saslm_response_target.wav" and target["response_text"]
    assert sf.info(str(tmp_path / base / "happy" / target["file"])).samplerate == 24_000
    assert target["response_truncated"] is True  # 10 codes: the tiny Talker's reply never ends within them
    # the same file converts to our manifest, the replies coming from the run
    manifest = script_info_to_manifest(info, None, tmp_path / "m.jsonl", system_prompt="enhance", responses=path)
    examples = load_manifest(manifest)
    assert [e.id for e in examples] == ["id_766_target", "id_766_neutral", "id_766_alternative", "id_355_target",
                                        "id_355_alternative", "id_2471_target", "id_2471_neutral"]
    assert examples[0].reply_text == target["response_text"]
    assert examples[0].reply_audio.resolve() == (tmp_path / base / "happy" / target["file"]).resolve()
    assert examples[0].labels["emotion"] == "happy" and examples[1].labels["emotion"] == "neutral"
    # both protocols in one table; columns without their models say why
    result = score_responses(path, tmp_path / "scores", progress=False)
    table = (tmp_path / "scores" / "echomind_scores.md").read_text()
    assert "WER % [paper]" in table and "DNSMOS OVRL [EchoMind]" in table and "| all | 7 |" in table
    assert set(result["unavailable"]) >= {"wer", "emo_align", "expressiveness", "echomind_emoalign", "nisqa", "ves"}
    assert result["summary"]["all"]["f0_var_st2"]["n"] >= 1 and result["summary"]["all"]["wer"]["mean"] is None
    # a second run resumes: nothing answered is generated again
    before = path.read_text()
    run_echomind(adapter, info, out_root, prompt="basic", model_name="saslm", progress=False)
    assert path.read_text() == before


def test_upstream_keys_only_are_enough(tmp_path):
    info = _upstream_dataset(tmp_path)
    items, problems = script_info_items(info)
    assert [it.id for it in items] == ["id_766_target", "id_766_neutral", "id_766_alternative", "id_355_target",
                                       "id_355_alternative", "id_2471_target", "id_2471_neutral"]
    assert problems == [f"{info}: case id_2471 (alternative): audio file not found: "
                        f"{info.parent / 'audio' / 'sound of wind blowing' / 'gone.wav'}"]
    assert all(it.reference_reply is None and it.script is None for it in items)


def test_neutral_skipped_exactly_for_speaker_traits(tmp_path):
    (tmp_path / "audio" / "c").mkdir(parents=True)
    shutil.copy(WAVS / "q00.wav", tmp_path / "audio" / "c" / "x.wav")
    cues = [*SPEAKER_CUES, *PARALINGUISTIC_CUES, *ENVIRONMENT_CUES, "something else"]
    cases = [{"case_id": f"id_{i}", "topic": "t", "spoken_info": cue,
              **{f"{ty}_audio_info": {f"{ty}_input_audio_file": "c/x.wav"} for ty in ("target", "neutral")}}
             for i, cue in enumerate(cues)]
    (tmp_path / "s.json").write_text(json.dumps(cases))
    items, _ = script_info_items(tmp_path / "s.json")
    without_neutral = {it.spoken_info for it in items} - {it.spoken_info for it in items if it.voice_type == "neutral"}
    assert without_neutral == {"male", "female", "child", "adult", "elderly"}
    assert len(items) == 2 * len(cues) - 5


def test_labels_for_every_cue_and_voice():
    assert len(SPEAKER_CUES) + len(PARALINGUISTIC_CUES) == 24 and len(ENVIRONMENT_CUES) == 21
    shorts = {"Hoarse voice": "hoarse", "vocal fatigue": "tired", "sobbing sound": "sobbing", "shout": "shout",
              "breathless sound / gasping sound / heavy breathing sound": "breath", "whisper": "whisper",
              "fast speaking pace": "fast", "slow speaking pace": "slow", "cough voice": "cough", "sigh sound": "sigh",
              "laughter sound": "laughter", "yawn sound": "yawn", "moan sound": "moan", "elderly": "elderly",
              "happy-toned expressive voice": "happy", "fear-toned expressive voice": "fear"}
    for spoken, short in shorts.items():
        assert voice_labels({"spoken_info": spoken}, "target")["cue"] == short
    for cue in (*SPEAKER_CUES, *PARALINGUISTIC_CUES, *ENVIRONMENT_CUES):
        labels = voice_labels({"spoken_info": cue}, "target")
        assert labels["cue_group"] == ("speaker" if cue in SPEAKER_CUES else "paralinguistic"
                                       if cue in PARALINGUISTIC_CUES else "environment")
        assert labels["expressed_cue"] == labels["cue"]
        assert voice_labels({"spoken_info": cue}, "neutral")["emotion"] == "neutral"
    assert voice_labels({"spoken_info": "sad-toned expressive voice"}, "target")["emotion"] == "sad"
    assert "emotion" not in voice_labels({"spoken_info": "sound of sad music"}, "target")
    # the alternative voice: what it expresses when the file names it, and what it stands against
    case = {"spoken_info": "sad-toned expressive voice",
            "alternative_audio_info": {"alternative_input_audio_file": "sad/x.wav", "alternative_info": "happy"}}
    alt = voice_labels(case, "alternative")
    assert alt == {"cue": "sad", "cue_group": "paralinguistic", "alternative_of": "sad", "expressed_cue": "happy",
                   "expressed_group": "paralinguistic", "emotion": "happy"}
    case["alternative_audio_info"] = {"alternative_input_audio_file": "sad/x.wav"}
    assert voice_labels(case, "alternative") == {"cue": "sad", "cue_group": "paralinguistic", "alternative_of": "sad"}


def test_prompt_modes_equal_upstream_strings():
    basic = ("You are a helpful assistant.\nThe current topic/scenario is: work.\n"
             "Your task is to provide a one-turn response based on the input audio.")
    assert echomind_system_prompt("no", "work", "male") == ""
    assert echomind_system_prompt("basic", "work", "male") == basic
    assert echomind_system_prompt("basic_plus_basic", "work", "male") == basic
    assert echomind_system_prompt("qwen25omni_default", "work", "male") == QWEN
    assert echomind_system_prompt("basic", "work", "male", "qwen25omni") == QWEN + "\n" + basic.split("\n", 1)[1]
    assert echomind_system_prompt("basic_plus_basic", "work", "male", "qwen25omni") == basic
    assert echomind_system_prompt("enhance", "work", "male") == (
        "You are an assistant in a customer service setting.\nThe current topic/scenario is: work.\n"
        "Your task is to provide a one-turn response based on the input audio, considering both the spoken "
        "content and any personal information present in the user's voice. The response should:\n"
        "- Include an appropriate form of address based on the personal information.\n"
        "- Be tailored to the content of the user's spoken text and their personal information.\n"
        "- Avoid any form of gender bias.")
    assert echomind_system_prompt("enhance", "work", "sound of raining").endswith(
        "considering both the spoken content and any background sounds present.")
    assert echomind_system_prompt("basic_plus_basic", "work", "male", "echoX") == (
        "Recognize what the voice said and respond to it.\nThe current topic/scenario is: work.\n\n"
        "Your task is to provide a one-turn response based on the input audio.")
    with pytest.raises(EchoMindError, match="none of EchoMind's cues"):
        echomind_system_prompt("enhance", "work", "robot voice")
    with pytest.raises(EchoMindError, match="unknown EchoMind prompt mode 'fancy'"):
        echomind_system_prompt("fancy", "work", "male")


def test_missing_or_over_long_input_gives_empty_result(adapter, tmp_path, caplog):
    empty = {"response_audio_transcript": "", "response_text": ""}
    long_wav = tmp_path / "long.wav"
    sf.write(str(long_wav), (0.1 * np.sin(np.arange(31 * 16_000) / 10)).astype(np.float32), 16_000)  # 31 s > 30 s
    with caplog.at_level(logging.WARNING, logger="sa_slm.eval.echomind"):
        assert adapter.generate_audio(str(tmp_path / "nope.wav"), str(tmp_path / "a.wav"), "", audio_output=True) == empty
        assert adapter.generate_audio(str(long_wav), str(tmp_path / "b.wav"), "", audio_output=True) == empty
    assert "nope.wav" in caplog.text and "31.0 s long" in caplog.text
    assert not (tmp_path / "a.wav").exists() and not (tmp_path / "b.wav").exists()


def test_generate_audio_writes_24k_wav(adapter, tmp_path):
    out = tmp_path / "nested" / "reply.wav"
    # positional, as eval_response_main.py calls it
    resp = adapter.generate_audio(str(SAMPLE / "audio" / "happy" / "id_1_happy_work_target.wav"), str(out), "",
                                  audio_output=True)
    assert set(resp) == {"response_audio_transcript", "response_text", RESPONSE_TRUNCATED}  # upstream reads the first two
    assert resp[RESPONSE_TRUNCATED] is True  # 10 codes: the tiny Talker's reply never ends within them
    assert resp["response_text"] and resp["response_audio_transcript"] == resp["response_text"]  # no ASR
    info = sf.info(str(out))
    assert info.samplerate == 24_000 and info.channels == 1 and info.frames > 0
    # the ASR task: a system prompt and a user instruction, no audio_output
    text_only = tmp_path / "none" / "x.wav"
    resp = adapter.generate_audio(str(SAMPLE / "audio" / "tired" / "id_0_tired_family_target.wav"), str(text_only),
                                  "You are a helpful assistant.",
                                  user_instruction="Please transcribe the speech in the input audio into text.")
    assert resp["response_text"] and not text_only.parent.exists()


def test_sample_manifest_with_reference_reply(tmp_path):
    with pytest.warns(EchoMindWarning, match=r"case id_1 \(target\): no reply text"):
        out = script_info_to_manifest(SAMPLE / "script_info.json", None, tmp_path / "m.jsonl", system_prompt="enhance")
    (ex,) = load_manifest(out)
    assert ex.id == "id_0_target" and ex.user_text == "How was your weekend?"
    assert ex.reply_text.startswith("It was fine") and "voice characteristics" in ex.system_prompt
    assert ex.labels["cue"] == "tired" and ex.labels["spoken_info"] == "vocal fatigue"


def test_cli_errors_before_model_load(tmp_path, capsys):
    assert main(["run", "--script-info", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert main(["run", "--out", str(tmp_path / "o")]) == 2
    assert "--root-dir" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    for text, message in (('{"case_id": 1}', "expected a JSON list"), ('[{"topic": "w"}]', "case #0: no 'case_id'"),
                          ("[{", "not valid JSON")):
        bad.write_text(text)
        with pytest.raises(EchoMindError, match=message):
            read_script_info(bad)


def test_built_from_benchmark_args(tiny, monkeypatch):
    monkeypatch.delenv("SASLM_MODEL", raising=False)
    with pytest.raises(EchoMindError, match="SASLM_MODEL"):
        EchoMindModel(argparse.Namespace(model_name="saslm", device="cpu"))
    model = EchoMindModel(argparse.Namespace(model_name="saslm", device="cpu", saslm_model=tiny))
    assert model.saslm is tiny


def test_score_leaves_replies_cut_by_the_code_budget_out_of_wer(tmp_path):
    """A reply the run flagged `response_truncated` lacks its last words: its WER is None with the reason
    and the WER mean is over the other replies only; its whole-clip measures are kept."""
    rows = [json.loads(line) for line in (CORPUS_DIR / "manifest.jsonl").read_text().splitlines()][:2]
    folder = tmp_path / "saslm" / "no"
    cases = []
    for i, row in enumerate(rows):
        name = f"id_{i}_saslm_response_target.wav"
        (folder / "happy").mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS_DIR / row["reply_audio"], folder / "happy" / name)
        entry = {"file": name, "response_audio_transcript": row["reply_text"], "response_text": row["reply_text"]}
        if i == 0:
            entry[RESPONSE_TRUNCATED] = True
        cases.append({"case_id": f"id_{i}", "topic": "work", "spoken_info": "happy-toned expressive voice",
                      "target_audio_info": {"target_input_audio_file": f"happy/id_{i}_happy_work_target.wav"},
                      "model": "saslm", "ouput_prompt": "no", "output_content": {"target": entry}})
    path = folder / "saslm_no_output_responses.json"
    path.write_text(json.dumps(cases))
    result = score_responses(path, tmp_path / "scores", asr="pocketsphinx", progress=False)
    cut, whole = result["items"]
    assert cut["paper"]["wer"] is None and any("cut by the code budget" in e for e in cut["errors"])
    assert cut["paper"]["f0_var_st2"] is not None
    assert isinstance(whole["paper"]["wer"], float)
    assert result["summary"]["all"]["wer"] == {"mean": pytest.approx(100 * whole["paper"]["wer"]), "n": 1}
