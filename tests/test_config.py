"""One schema per knob, validated before any model loads: sampling, enums, ranges, the DeepSpeed stage
read from its JSON, the learning rates the optimizer really uses, seeds, logged terms across ranks."""

import json
import zlib

import numpy as np
import pytest

from sa_slm import SASLM
from sa_slm.config import ConfigError, load_config
from sa_slm.data import ExampleDataset, PromptCollator, TeacherForcingCollator, load_manifest
from sa_slm.errors import SASLMError
from sa_slm.paths import CONFIG_DIR, CORPUS_DIR
from sa_slm.seeding import derive_seed
from sa_slm.sft.config import SFTConfig
from sa_slm.sft.trainer import SFTTrainer
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.training.config import TrainSection
from sa_slm.training.trainer_utils import merge_term_windows, training_arguments
from sa_slm.uapo.config import UAPOConfig
from sa_slm.uapo.trainer import UAPOTrainer, frozen_reference


@pytest.mark.parametrize("knobs, message", [
    (dict(temperature=-1.0), r"sampling.temperature: -1.0 must be a finite number > 0"),
    (dict(temperature=float("nan")), "sampling.temperature: nan"),
    (dict(top_p=1.5), r"sampling.top_p: 1.5 must be a finite number in \(0, 1.0\]"),
    (dict(top_k=-1), "sampling.top_k: -1 must be an integer >= 0"),
    (dict(repetition_penalty=0.0), "sampling.repetition_penalty"),
    (dict(max_new_codes=0), "sampling.max_new_codes: 0 must be a positive integer"),
])
def test_sampling_knobs_are_checked(knobs, message):
    with pytest.raises(ConfigError, match=message):
        SamplingConfig(**knobs)


def _write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("body, message", [
    ("bridge: {mode: film}", "unknown intent-bridge mode 'film'"),
    ("dtype: fp8", "dtype: 'fp8' is not one of fp32, bf16, fp16"),
    ("train: {lr_scheduler_type: cosine_annealing}", "train.lr_scheduler_type: 'cosine_annealing' is not one of"),
    ("train: {learning_rate: 0}", "train.learning_rate: 0.0 must be > 0.0"),
    ("kl_weight_warmup: 1.5", "kl_weight_warmup: 1.5 must be <= 1.0"),
    ("train: {deepspeed: missing.json}", "train.deepspeed: missing.json not found"),
    ("bridge: {mode: vib_adaln\n", "cfg.yaml"),  # a YAML syntax error names the file
])
def test_stage_configs_are_validated_with_the_file_and_key_named(tmp_path, body, message):
    path = _write(tmp_path, "train_manifest: m.jsonl\n" + body + "\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_config(SFTConfig, path)
    assert str(path) in str(err.value)


def test_a_config_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("train_manifest: caf\xe9.jsonl\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(SFTConfig, path)


def test_the_deepspeed_stage_comes_from_the_json_not_the_file_name(tmp_path):
    sneaky = tmp_path / "zero2_but_not_really.json"
    sneaky.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    honest = tmp_path / "zero3.json"  # named zero3, stage 2 inside
    honest.write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    with pytest.raises(ConfigError, match="ZeRO-3"):
        load_config(SFTConfig, _write(tmp_path, f"train_manifest: m.jsonl\nlora: {{enabled: true}}\ntrain: {{deepspeed: {sneaky}}}\n"))
    cfg = load_config(SFTConfig, _write(tmp_path, f"train_manifest: m.jsonl\nlora: {{enabled: true}}\ntrain: {{deepspeed: {honest}}}\n"))
    assert cfg.train.deepspeed_stage == 2
    assert load_config(SFTConfig, CONFIG_DIR / "stage1_3b.yaml").train.deepspeed_stage == 2  # shipped JSON


def test_a_deepspeed_optimizer_section_is_refused(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}, "optimizer": {"type": "AdamW"}}))
    with pytest.raises(ConfigError, match="'optimizer' section"):
        TrainSection(deepspeed=str(ds))


def test_shipped_configs_load_by_name_and_bridge_null_keeps_the_checkpoints():
    stage2 = load_config(SFTConfig, "stage2_tiny")
    assert stage2.bridge is None and stage2.thinker_last_layers == 1
    assert load_config(SFTConfig, "stage1_tiny").bridge.mode == "vib_adaln"
    assert load_config(UAPOConfig, "stage3_tiny").rewards[1].function == "f0_variance"
    with pytest.raises(ConfigError, match="shipped configs: .*stage1_tiny"):
        load_config(SFTConfig, "stage9_tiny")


@pytest.fixture(scope="module")
def trainers(tmp_path_factory):
    saslm = SASLM.from_pretrained("tiny", device="cpu")
    out = tmp_path_factory.mktemp("lr")
    args = training_arguments(TrainSection(learning_rate=3e-4, max_steps=1, report_to=[]), out, 0)
    groups = saslm.model.set_trainable(thinker_last_layers=1)
    sft = SFTTrainer(model=saslm.model, args=args, train_dataset=ExampleDataset(load_manifest(CORPUS_DIR / "manifest_codes.jsonl")),
                     data_collator=TeacherForcingCollator.for_model(saslm.model, saslm.processor, saslm.speakers),
                     param_groups=groups, llm_learning_rate=2e-6)
    uapo = UAPOTrainer(model=saslm.model, args=args, train_dataset=ExampleDataset([]),
                       data_collator=PromptCollator(saslm.processor), reference=frozen_reference(saslm.model),
                       processor=saslm.processor, speakers=saslm.speakers, utility_fn=None,
                       sampling=SamplingConfig(max_new_codes=4), params=groups["speech"])
    return sft, uapo, groups


def test_train_learning_rate_drives_the_speech_group_and_llm_learning_rate_the_thinker(trainers):
    sft, uapo, groups = trainers
    opt = sft.create_optimizer(sft.model)
    lrs = {len(g["params"]): g["lr"] for g in opt.param_groups}
    assert lrs == {len(groups["speech"]): 3e-4, len(groups["llm"]): 2e-6}
    assert [g["lr"] for g in uapo.create_optimizer(uapo.model).param_groups] == [3e-4]


def test_seeds_are_derived_stably_and_separately_per_stream():
    assert derive_seed(7, "talker", 0) == derive_seed(7, "talker", 0)
    seeds = {derive_seed(7, "talker", k) for k in range(100)} | {derive_seed(8, "talker", k) for k in range(100)}
    seeds |= {derive_seed(7, "token2wav", k) for k in range(100)}
    assert len(seeds) == 300 and all(0 <= s < 2**62 for s in seeds)
    # Not the old seed * 1000 + k scheme, where (seed 0, k 1000) and (seed 1, k 0) collide.
    assert derive_seed(0, "talker", 1000) != derive_seed(1, "talker", 0)
    # The documented rule, so the value is the same in every process and release.
    state = np.random.SeedSequence([7, zlib.crc32(b"talker"), 0]).generate_state(2, dtype=np.uint32)
    assert derive_seed(7, "talker", 0) == (int(state[0]) << 30) ^ int(state[1]) == 794176082031448769


def test_logged_terms_are_averaged_over_every_value_of_every_rank():
    rank0 = {"codec_loss": (3.0, 2), "fm_loss": (1.0, 1)}
    rank1 = {"codec_loss": (5.0, 2)}  # this rank saw no real-speech batch
    assert merge_term_windows([rank0, rank1]) == {"codec_loss": 2.0, "fm_loss": 1.0}


def test_loading_needs_a_name_and_a_folder_must_hold_a_model(tmp_path):
    with pytest.raises(TypeError):
        SASLM.from_pretrained()  # no silent random model
    with pytest.raises(SASLMError, match="not a model folder"):
        SASLM.from_pretrained(tmp_path)


@pytest.fixture()
def no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(SASLM, "from_pretrained", refuse)


@pytest.mark.parametrize("recipe, args, message", [
    ("stage1", ["train_manifest=nowhere.jsonl"], "nowhere.jsonl: manifest not found"),
    ("stage1", ["train_manifest=${resource:tiny_corpus/manifest.jsonl}"], "no 'reply_codes'; fill them with `sa-slm tokenize`"),
    ("stage3", ["rubric=no_such_rubric"], "rubric not found"),
    ("stage3", ["prompts_manifest=nowhere.jsonl"], "nowhere.jsonl: manifest not found"),
    ("stage3", ["wer_gate.asr=kaldi"], "unknown ASR backend 'kaldi'"),
    ("stage0", ["bootstrap.texts_file=nowhere.txt"], "bootstrap.texts_file: nowhere.txt not found"),
])
def test_recipes_check_their_inputs_before_loading_a_model(no_model_loads, capsys, tmp_path, recipe, args, message):
    import importlib

    main = importlib.import_module(f"sa_slm.recipes.{recipe}").main
    config = {"stage0": "stage0_tiny", "stage1": "stage1_tiny", "stage3": "stage3_tiny"}[recipe]
    assert main(["--config", config, f"output_dir={tmp_path}", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
