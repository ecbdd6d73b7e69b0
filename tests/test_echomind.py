"""EchoMind adapter: the shipped two-case sample through the tiny model, script_info → manifest, bad inputs."""

import argparse
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from sa_slm.data import load_manifest
from sa_slm.errors import AudioError, SASLMError
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.eval.echomind import (
    EchoMindError,
    EchoMindModel,
    EchoMindWarning,
    main,
    read_script_info,
    run_echomind,
    script_info_items,
    script_info_to_manifest,
)

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "echomind_sample"
SCRIPT_INFO = SAMPLE / "script_info.json"
AUDIO_ROOT = SAMPLE / "audio"
FAST = dict(seed=0, max_reply_tokens=8, sampling=SamplingConfig(max_new_codes=12))


@pytest.fixture(scope="module")
def adapter(tiny):
    return EchoMindModel(tiny, **FAST)


def test_sample_cases_read():
    cases = read_script_info(SCRIPT_INFO)
    assert [c["case_id"] for c in cases] == ["id_0", "id_1"]
    items, problems = script_info_items(SCRIPT_INFO)  # audio root defaults to audio/ beside the file
    assert problems == []
    assert [(it.id, it.voice_type) for it in items] == [("id_0_target", "target"), ("id_1_target", "target")]
    assert all(it.audio.is_file() and it.audio.parent.parent == AUDIO_ROOT for it in items)
    assert items[1].script == "I just got the job! Can you believe it?"


def test_generate_audio_writes_24k_wav(adapter, tmp_path):
    items, _ = script_info_items(SCRIPT_INFO, AUDIO_ROOT)
    for it in items:
        out = tmp_path / "nested" / it.voice_type / f"{it.id}.wav"
        # positional, as EchoMind's eval_response_main.py calls it
        resp = adapter.generate_audio(str(it.audio), str(out), "", audio_output=True)
        assert set(resp) == {"response_audio_transcript", "response_text"}
        assert all(isinstance(v, str) for v in resp.values())
        assert resp["response_text"] and resp["response_audio_transcript"] == resp["response_text"]  # no ASR
        info = sf.info(str(out))
        assert info.samplerate == 24_000 and info.channels == 1 and info.frames > 0
        wav, sr = sf.read(str(out))
        assert sr == 24_000 and wav.size > 0


def test_text_only_writes_nothing(adapter, tmp_path):
    out = tmp_path / "none" / "reply.wav"
    audio = str(AUDIO_ROOT / "happy" / "id_1_happy_work_target.wav")
    # EchoMind's ASR task: a system prompt and a user instruction, no audio_output
    resp = adapter.generate_audio(audio, str(out), "You are a helpful assistant.",
                                  user_instruction="Please transcribe the speech in the input audio into text.")
    assert set(resp) == {"response_audio_transcript", "response_text"} and resp["response_text"]
    resp = adapter.generate_audio(audio, str(out), None, audio_output=False)
    assert isinstance(resp["response_audio_transcript"], str)
    assert not out.exists() and not out.parent.exists()


def test_missing_input_audio(adapter, tmp_path):
    with pytest.raises(AudioError, match="nope.wav"):
        adapter.generate_audio(str(tmp_path / "nope.wav"), str(tmp_path / "o.wav"), "", audio_output=True)
    assert not (tmp_path / "o.wav").exists()


def test_run_writes_wavs_and_responses(adapter, tmp_path):
    rows = run_echomind(adapter, SCRIPT_INFO, tmp_path / "run", prompt="basic", progress=False)
    assert [r["id"] for r in rows] == ["id_0_target", "id_1_target"]
    for r in rows:
        assert sf.info(str(tmp_path / "run" / r["output_wav"])).samplerate == 24_000
        assert r["system_prompt"].startswith("You are a helpful assistant.\nThe current topic/scenario is: ")
    lines = (tmp_path / "run" / "responses.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["id_0_target", "id_1_target"]
    bench = json.loads((tmp_path / "run" / "output_responses.json").read_text())
    assert bench[1]["output_content"]["target"]["file"] == "id_1_target.wav"
    assert bench[1]["output_content"]["target"]["response_audio_transcript"] == rows[1]["response_audio_transcript"]


def test_cli_run_and_to_manifest(tmp_path, capsys):
    assert main(["run", "--model", "tiny", "--script-info", str(SCRIPT_INFO), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--max-reply-tokens", "6", "--max-new-codes", "12", "--no-audio"]) == 0
    assert list((tmp_path / "out").glob("*.wav")) == []  # the wav path is covered by test_run_writes_wavs_...
    rows = [json.loads(line) for line in (tmp_path / "out" / "responses.jsonl").read_text().splitlines()]
    assert [(r["id"], r["output_wav"]) for r in rows] == [("id_0_target", None), ("id_1_target", None)]
    assert main(["to-manifest", "--script-info", str(SCRIPT_INFO), "--out", str(tmp_path / "m.jsonl")]) == 0
    assert "2 example(s)" in capsys.readouterr().out
    assert main(["to-manifest", "--script-info", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_manifest_round_trip(tmp_path):
    out = script_info_to_manifest(SCRIPT_INFO, AUDIO_ROOT, tmp_path / "sub" / "manifest.jsonl",
                                  system_prompt="enhance")
    examples = load_manifest(out)
    assert [e.id for e in examples] == ["id_0_target", "id_1_target"]
    tired, happy = examples
    assert tired.user_audio.resolve() == (AUDIO_ROOT / "tired" / "id_0_tired_family_target.wav").resolve()
    assert happy.user_audio.resolve() == (AUDIO_ROOT / "happy" / "id_1_happy_work_target.wav").resolve()
    assert happy.user_text == "I just got the job! Can you believe it?"
    assert happy.reply_text.startswith("That's wonderful news")
    assert happy.labels == {"case_id": "id_1", "voice_type": "target", "topic": "work",
                            "spoken_info": "happy-toned expressive voice", "emotion": "happy"}
    assert "emotion" not in tired.labels and tired.labels["spoken_info"] == "vocal fatigue"
    assert "voice characteristics" in tired.system_prompt and "topic/scenario is: family" in tired.system_prompt


def test_manifest_paths_relative_when_beside_audio(tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "em")
    out = script_info_to_manifest(tmp_path / "em" / "script_info.json", None, tmp_path / "em" / "manifest.jsonl")
    first = json.loads(out.read_text().splitlines()[0])
    assert first["user_audio"] == "audio/tired/id_0_tired_family_target.wav"
    assert "system_prompt" not in first
    assert load_manifest(out)[0].user_audio.is_file()


def test_missing_audio_reported_and_skipped(tmp_path):
    cases = read_script_info(SCRIPT_INFO)
    cases.append({"case_id": "id_9", "topic": "school", "spoken_info": "sigh sound", "script": "Fine.",
                  "target_audio_info": {"target_input_audio_file": "sigh/id_9_sigh_school_target.wav",
                                        "target_response": "Long day?"}})
    cases.append({"case_id": "id_8", "topic": "school", "spoken_info": "male", "script": "Hello."})
    info = tmp_path / "script_info.json"
    info.write_text(json.dumps(cases))
    with pytest.warns(EchoMindWarning) as caught:
        out = script_info_to_manifest(info, AUDIO_ROOT, tmp_path / "manifest.jsonl")
    message = str(caught[0].message)
    assert "skipped 2" in message
    assert "case id_9 (target): audio file not found" in message and "id_9_sigh_school_target.wav" in message
    assert "case id_8: no input audio" in message and str(info) in message
    assert [e.id for e in load_manifest(out)] == ["id_0_target", "id_1_target"]
    items, problems = script_info_items(info, AUDIO_ROOT, ["target"])
    assert len(items) == 2 and len(problems) == 2


def test_nothing_usable_raises(tmp_path):
    info = tmp_path / "script_info.json"
    info.write_text(json.dumps([{"case_id": "id_9", "target_audio_info": {"target_input_audio_file": "x/y.wav"}}]))
    with pytest.raises(EchoMindError, match=r"(?s)no usable case.*case id_9 \(target\): audio file not found"):
        script_info_to_manifest(info, tmp_path, tmp_path / "m.jsonl")
    assert not (tmp_path / "m.jsonl").exists()


def test_bad_script_info_files(tmp_path):
    with pytest.raises(SASLMError, match="missing.json: EchoMind script_info file not found"):
        read_script_info(tmp_path / "missing.json")
    with pytest.raises(EchoMindError, match="missing.json"):
        script_info_to_manifest(tmp_path / "missing.json", None, tmp_path / "m.jsonl")
    bad = tmp_path / "bad.json"
    bad.write_text('{"case_id": 1}')
    with pytest.raises(EchoMindError, match="expected a JSON list"):
        read_script_info(bad)
    bad.write_text('[{"topic": "work"}]')
    with pytest.raises(EchoMindError, match=r"case #0: no 'case_id'"):
        read_script_info(bad)
    bad.write_text("[{")
    with pytest.raises(EchoMindError, match="not valid JSON"):
        read_script_info(bad)


def test_built_from_benchmark_args(tiny, monkeypatch):
    monkeypatch.delenv("SASLM_MODEL", raising=False)
    with pytest.raises(EchoMindError, match="SASLM_MODEL"):
        EchoMindModel(argparse.Namespace(model_name="saslm", device="cpu"))
    model = EchoMindModel(argparse.Namespace(model_name="saslm", device="cpu", saslm_model=tiny))
    assert model.saslm is tiny
