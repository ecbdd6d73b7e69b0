"""Validation before any model loads (finding 7): every bad argument, config, rubric or model folder is one
`error: ...` line with exit 2 naming the file, line, key or value, and a failing write keeps the audio."""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
import soundfile as sf
import torch

from sa_slm import SASLM
from sa_slm.cli import main
from sa_slm.config import ConfigError, load_config
from sa_slm.critic.rubric import RubricError, load_rubric
from sa_slm.errors import SASLMError
from sa_slm.paths import CORPUS_DIR, RUBRIC_DIR
from sa_slm.presets import model_config
from sa_slm.sft.config import SFTConfig

RUBRIC = (RUBRIC_DIR / "expressive.yaml").read_text(encoding="utf-8")
WAV = str(sorted(CORPUS_DIR.glob("**/*.wav"))[0])


@pytest.fixture()
def no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("model loaded before validation")

    monkeypatch.setattr(SASLM, "from_pretrained", refuse)


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _bad_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    return tmp_path


# ---- generate ------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--num-samples", "0"], r"--num-samples: 0 must be >= 1"),
    (["--max-new-codes", "-5"], r"sampling\.max_new_codes: -5 must be a positive integer"),
    (["--temperature", "nan"], r"sampling\.temperature: nan must be a finite number > 0"),
    (["--top-p", "1.5"], r"sampling\.top_p: 1\.5 must be a finite number in \(0, 1\.0\]"),
    (["--model", "{tmp}/nope"], r"--model .*/nope: model folder not found"),
    (["--model", "outputs/stage2/model"], r"--model outputs/stage2/model: model folder not found"),
    (["--model", "{tmp}/empty"], r"--model .*/empty: the folder is empty, not a model folder"),
    (["--model", "{tmp}/a_file"], r"--model .*/a_file: a file, not a model folder"),
    (["--device", "cuda:banana"], r"--device 'cuda:banana': not a device; use cpu, cuda or cuda:N"),
    (["--out", "{tmp}/answer"], r"--out .*/answer: no file extension"),
    (["--out", "{tmp}/answer.xyz"], r"--out .*/answer\.xyz: unknown audio extension '\.xyz'; use one of .*\.wav"),
    (["--out", "{tmp}/empty"], r"--out .*/empty: a folder, not a file name"),
    (["--out", "{tmp}/a_file/answer.wav"], r"--out .*/a_file/answer\.wav: .*a_file is a file, not a folder"),
])
def test_generate_arguments_are_checked_before_the_model_loads(no_model_loads, capsys, tmp_path, args, message):
    tmp = _bad_paths(tmp_path)
    argv = ["generate", "--text", "hi", "--out", str(tmp / "o.wav")] + [a.format(tmp=tmp) for a in args]
    assert main(argv) == 2
    assert re.search(message, _one_error(capsys))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_is_one_line(no_model_loads, capsys, tmp_path):
    assert main(["generate", "--text", "hi", "--out", str(tmp_path / "o.wav"), "--device", "cuda"]) == 2
    assert _one_error(capsys) == ("error: --device cuda: no CUDA device is visible (torch.cuda.is_available() is "
                                  "False); use --device cpu")
    from sa_slm.facade import resolve_device

    with pytest.raises(SASLMError, match="device cuda: no CUDA device is visible"):
        resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_a_write_that_fails_after_generation_keeps_the_audio(tiny, monkeypatch, capsys, tmp_path):
    """The output folder passes the checks, then refuses the write: the audio lands in a fallback file."""
    import sa_slm.audio

    monkeypatch.setattr(SASLM, "from_pretrained", lambda *a, **k: tiny)
    real_write = sa_slm.audio.write_wav
    out = tmp_path / "answer.wav"

    def refuse_the_target(path, wav, sr):
        if str(path) == str(out):
            raise OSError(28, "No space left on device")
        return real_write(path, wav, sr)

    monkeypatch.setattr(sa_slm.audio, "write_wav", refuse_the_target)
    code = main(["generate", "--model", "tiny", "--device", "cpu", "--text", "hi", "--reply-text", "hello there",
                 "--out", str(out), "--max-new-codes", "6", "--seed", "3"])
    assert code == 2
    line = _one_error(capsys)
    match = re.search(r"the audio was saved to (\S+) instead", line)
    assert match and str(out) in line and "No space left on device" in line, line
    wav, sr = sf.read(match.group(1))
    assert sr == 24_000 and len(wav) == 6 * 2 * 240  # 6 codes x DiT repeats 2 x BigVGAN hop 240
    assert np.abs(wav).max() > 0
    assert not out.exists()


# ---- score, probe, demo, eval --------------------------------------------------------------------
def test_score_checks_rubric_audio_and_critic_before_the_model_loads(no_model_loads, capsys, tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(RUBRIC.replace("name: expressive", "name: caf\xe9").encode("latin-1"))
    base = ["score", "--text", "x", "--context-text", "y"]
    assert main(base + ["--audio", WAV, "--rubric", str(latin)]) == 2
    assert re.search(r"latin\.yaml:3: not UTF-8 \(byte \d+\)", _one_error(capsys))
    assert main(base + ["--audio", str(tmp_path / "nope.wav")]) == 2
    assert "nope.wav: audio file not found" in _one_error(capsys)
    assert main(base + ["--audio", WAV, "--context", str(tmp_path / "ctx.wav")]) == 2
    assert "ctx.wav: audio file not found" in _one_error(capsys)
    assert main(base + ["--audio", WAV, "--critic", str(tmp_path / "critic")]) == 2
    assert re.search(r"--critic .*/critic: model folder not found", _one_error(capsys))


@pytest.mark.parametrize("args, message", [
    (["--folds", "0"], r"--folds: 0 must be >= 2"),
    (["--label", "mood"], r"manifest\.jsonl: 0 example\(s\) carry the label 'mood'; the probe needs at least 2"),
])
def test_probe_arguments_are_checked_before_the_model_loads(no_model_loads, capsys, args, message):
    assert main(["probe", "--manifest", str(CORPUS_DIR / "manifest.jsonl"), *args]) == 2
    assert re.search(message, _one_error(capsys))


def test_demo_out_that_is_a_file_is_one_line(no_model_loads, capsys, tmp_path):
    (tmp_path / "taken").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "taken")]) == 2
    assert re.search(r"--out .*/taken: a file, not a folder", _one_error(capsys))


def test_eval_config_yaml_error_names_file_line_and_column(capsys, tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("manifest: m.jsonl\nmodels: [{name: tiny}\n", encoding="utf-8")
    assert main(["eval", "--config", str(path)]) == 2
    assert re.search(rf"{re.escape(str(path))}:3:1: not valid YAML \(did not find expected ',' or '\]'", _one_error(capsys))


# ---- configs -------------------------------------------------------------------------------------
def _config(tmp_path, body: str | bytes):
    path = tmp_path / "cfg.yaml"
    text = b"train_manifest: m.jsonl\n" + (body if isinstance(body, bytes) else body.encode("utf-8"))
    path.write_bytes(text)
    return path


@pytest.mark.parametrize("body, message", [
    ("bridge: {mode: vib_adaln\n", r"cfg\.yaml:3:1: not valid YAML \(did not find expected ',' or '\}'; while "
                                   r"parsing a flow mapping at line 2, column 9\)"),
    ("train:\n\tlearning_rate: 1\n", r"cfg\.yaml:3:1: not valid YAML \(found character that cannot start any token"),
    (b"output_dir: caf\xe9\n", r"cfg\.yaml:2: not UTF-8 \(byte 39\); save the file as UTF-8"),
    ("train: {learning_rate: abc}\n", r"cfg\.yaml: train\.learning_rate: Value 'abc' of type 'str' could not be "
                                      r"converted to Float$"),
    ("train: {lerning_rate: 0.1}\n", r"cfg\.yaml: train\.lerning_rate: Key 'lerning_rate' not in 'TrainSection'\. "
                                     r"Did you mean: 'learning_rate'\?$"),
    ("bridge: {mode: film}\n", r"cfg\.yaml: bridge\.mode: unknown intent-bridge mode 'film'; choose one of text, add, adaln_h, vib_adaln$"),
    ("train: {lr_scheduler_type: cosin}\n", r"train\.lr_scheduler_type: 'cosin' is not one of .*; did you mean "
                                            r"'cosine'\?"),
    ("dtype: bf61\n", r"dtype: 'bf61' is not one of fp32, bf16, fp16; did you mean 'bf16'\?$"),
    ("dtype: fp8\n", r"dtype: 'fp8' is not one of fp32, bf16, fp16$"),
])
def test_config_errors_are_one_line_naming_file_line_and_key(tmp_path, body, message):
    with pytest.raises(ConfigError) as err:
        load_config(SFTConfig, _config(tmp_path, body))
    assert "\n" not in str(err.value)
    assert re.search(message, str(err.value)), str(err.value)


# ---- rubrics -------------------------------------------------------------------------------------
def _rubric(tmp_path, text: str):
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, message", [
    (("weight: 1.0", "weight: .nan"), r"'dimensions\[0\]\.weight' is nan; give a finite number > 0"),
    (("weight: 1.0", "weight: .inf"), r"'dimensions\[0\]\.weight' is inf; give a finite number > 0"),
    (("weight: 1.0", "weight: heavy"), r"'dimensions\[0\]\.weight' is 'heavy'; give a finite number > 0"),
    (("weight: 1.0", "weight: true"), r"'dimensions\[0\]\.weight' is True; give a finite number > 0"),
    (("weight: 1.0", "weight: -1"), r"'dimensions\[0\]\.weight' is -1; give a finite number > 0"),
    (("Dimension: {dimension}.", "Dimension: {dimension."), r"'question' is not a valid template \(unexpected '\{' "
                                                            r"in field name\)"),
    (("Dimension: {dimension}.", "Dimension: dimension}."), r"'question' is not a valid template \(Single '\}' "
                                                            r"encountered in format string\); write '\{\{' or '\}\}' "
                                                            r"for a literal brace"),
    (("Dimension: {dimension}.", "Dimension: {}."), r"'question' has a positional placeholder '\{\}'; use a named "
                                                    r"one: \{description\}, \{dimension\}, \{instance_rubric\}, "
                                                    r"\{reply_text\}$"),
    (("Dimension: {dimension}.", "Dimension: {0}."), r"'question' has a positional placeholder '\{0\}'"),
    (("{reply_text}", "{reply_text"), r"'instance_rubric\.prompt' is not a valid template \(expected '\}' before "
                                      r"end of string\)"),
    (("weight: 1.0", "weigth: 2.0"), r"'dimensions\[0\]' has unknown key 'weigth'; allowed: description, name, "
                                     r"weight; did you mean 'weight'\?$"),
    (("system_prompt:", "sytem_prompt: x\nsystem_prompt:"), r"'\(top level\)' has unknown key 'sytem_prompt'; "
                                                            r"allowed: .*; did you mean 'system_prompt'\?$"),
    (("max_new_tokens: 48", "max_new_token: 48"), r"'instance_rubric' has unknown key 'max_new_token'; "
                                                  r"allowed: max_new_tokens, prompt; did you mean 'max_new_tokens'\?"),
    (("max_new_tokens: 48", "max_new_tokens: many"), r"'instance_rubric\.max_new_tokens' is 'many'; give an "
                                                     r"integer >= 1"),
    (("max_new_tokens: 48", "max_new_tokens: 0"), r"'instance_rubric\.max_new_tokens' is 0; give an integer >= 1"),
    (("name: expressive", "name: 3"), r"'name' must be str"),
    (("meaning: poor", "meaning: [poor]"), r"'scale\[0\]\.meaning' must be str"),
])
def test_rubric_errors_name_the_file_and_the_field(tmp_path, edit, message):
    old, new = edit
    assert old in RUBRIC
    path = _rubric(tmp_path, RUBRIC.replace(old, new, 1))
    with pytest.raises(RubricError) as err:
        load_rubric(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    assert re.search(message, str(err.value)), str(err.value)


def test_rubric_file_errors_name_line_column_and_byte(tmp_path):
    path = _rubric(tmp_path, RUBRIC + "extra: [\n")
    lines = (RUBRIC + "extra: [\n").count("\n")
    with pytest.raises(RubricError, match=rf"r\.yaml:{lines + 1}:1: not valid YAML \(expected the node content"):
        load_rubric(path)
    path.write_bytes(b"# rubric\nname: caf\xe9\n")
    with pytest.raises(RubricError, match=r"r\.yaml:2: not UTF-8 \(byte 18\)"):
        load_rubric(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(RubricError, match=r"r\.yaml: a rubric is a mapping of keys .*, got a list"):
        load_rubric(path)
    assert load_rubric("expressive").dimensions[0].weight == 1.0  # the shipped rubric still loads


# ---- model folders and devices (the API) ---------------------------------------------------------
def test_model_sources_are_checked_without_loading(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SASLMError, match=r"model .*/nowhere: model folder not found"):
        model_config(str(tmp_path / "nowhere"))
    with pytest.raises(SASLMError, match=r"model .*/empty: the folder is empty, not a model folder"):
        SASLM.from_pretrained(tmp_path / "empty")
    (tmp_path / "empty" / "weights.bin").write_bytes(b"")
    with pytest.raises(SASLMError, match=r"empty: not a model folder \(no config.json\)"):
        SASLM.from_pretrained(tmp_path / "empty")
    assert model_config("tiny").talker_config.vocab_size > 0


def test_generate_api_refuses_zero_samples(tiny):
    with pytest.raises(ConfigError, match="num_samples: 0 must be >= 1"):
        tiny.generate(text="hi", num_samples=0)


# ---- recipes: the whole config is checked before `SASLM.from_pretrained` -----------------------------
@pytest.mark.parametrize("recipe, args, message", [
    ("stage3", ["model={tmp}/policy"], r"model .*/policy: model folder not found"),
    ("stage3", ["critic_model={tmp}/critic"], r"critic_model .*/critic: model folder not found"),
    ("stage3", ["rubric={tmp}/r.yaml"], r"r\.yaml: 'dimensions\[0\]\.weight' is nan"),
    ("stage3", ["sampling.temperature=-1"], r"sampling\.temperature: -1"),
    ("stage1", ["model={tmp}/policy"], r"model .*/policy: model folder not found"),
    ("stage1", ["train.lr_scheduler_type=cosin"], r"train\.lr_scheduler_type: 'cosin' .*did you mean 'cosine'"),
    ("stage1", ["train.deepspeed={tmp}/ds.json"], r"train\.deepspeed: .*ds\.json not found"),
    ("stage1", ["bridge.mode=film"], r"bridge\.mode: unknown intent-bridge mode 'film'"),
    ("stage0", ["model={tmp}/policy"], r"model .*/policy: model folder not found"),
])
def test_recipes_check_their_whole_config_before_the_model_loads(no_model_loads, capsys, tmp_path, recipe, args,
                                                                 message):
    _rubric(tmp_path, RUBRIC.replace("weight: 1.0", "weight: .nan", 1))
    run = importlib.import_module(f"sa_slm.recipes.{recipe}").main
    config = {"stage0": "stage0_tiny", "stage1": "stage1_tiny", "stage3": "stage3_tiny"}[recipe]
    assert run(["--config", config, f"output_dir={tmp_path}/out", *[a.format(tmp=tmp_path) for a in args]]) == 2
    assert re.search(message, _one_error(capsys))
