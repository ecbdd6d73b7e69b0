"""`sa-slm doctor`: the go/no-go check to run on a machine before a multi-day job.

Each check is one row (name, GO / NO-GO / SKIP, detail, seconds): the software versions, the devices
and their free memory, bf16, DeepSpeed's ops, the model loading, the teacher-forced log-probs against
the sampler's own on this hardware and dtype (`uapo.consistency`), the data audit of the stage
configs' manifests, and one optimizer step at batch 1 of each requested stage through the stage's own
recipe (`run`) with its wall time and peak memory. A failing check is a NO-GO row with a one-line
reason and the other checks still run; bad arguments are an error before anything loads.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import resource
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from .config import TORCH_DTYPES, ConfigError, config_path, load_config
from .errors import SASLMError
from .paths import CORPUS_DIR
from .presets import PRESETS, model_config

GO, NO_GO, SKIP = "GO", "NO-GO", "SKIP"
STAGES = (0, 1, 2, 3)
#: Largest per-code |teacher forcing - sampler| log-prob gap accepted, by dtype: fp32 is round-off;
#: half precision reorders its roundings between the KV-cached loop and the one-pass forward.
LOGPROB_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 0.1, torch.float16: 0.02}
#: The two texts stage 0's check bootstraps pairs from (one trains, one is held out).
BOOTSTRAP_TEXTS = ("Good morning! Did you sleep well?", "Please leave the package at the front door.")
#: On `tiny` (the test model) the stages' data work shrinks too: one speaker's short bootstrap clips
#: (stage 0), two short rollouts (stage 3). Other models keep their clip lengths and K: they set the memory.
TINY_OVERRIDES = {0: ["bootstrap.sampling.max_new_codes=25", "bootstrap.speakers=[Chelsie]"],
                  3: ["num_samples=2", "sampling.max_new_codes=10", "audio_every=0"]}
#: The recipe module of each stage (stage 2 is stage 1's recipe with the stage-2 config).
RECIPES = {0: "stage0", 1: "stage1", 2: "stage1", 3: "stage3"}


@dataclass
class Row:
    """One check of the table."""

    name: str
    status: str  # GO, NO-GO or SKIP
    detail: str
    seconds: float = 0.0


@dataclass
class StagePlan:
    """A stage to check: its validated config (batch 1, one step, a temporary output folder)."""

    stage: int
    source: Path  # the config file it came from
    config: Any  # Stage0Config, SFTConfig (stages 1-2) or UAPOConfig


class Failed(Exception):
    """A check that ran and found a problem: its message is the NO-GO row's detail."""


def one_line(exc: BaseException) -> str:
    """An exception as one line: the message of our own errors, `Type: message` of any other."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text if isinstance(exc, (SASLMError, Failed)) else f"{type(exc).__name__}: {text}"
    return text if len(text) <= 240 else text[:237] + "..."


def parse_stages(text: str) -> list[int]:
    """`0,1,2,3` → [0, 1, 2, 3]; an empty list for ``; anything else is a ConfigError."""
    stages = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit() or int(part) not in STAGES:
            raise ConfigError(f"--stages: {part!r} is not a stage (give a comma list of {', '.join(map(str, STAGES))})")
        stages.append(int(part))
    return sorted(set(stages))


def stage_config_file(stage: int, model: str, config_dir: Path | None) -> Path:
    """`stage<N>.yaml` or the one `stage<N>_*.yaml` of `config_dir`; else the shipped config of the
    model's size (`stage<N>_tiny`, `stage<N>_7b` for random-7b, `stage<N>_3b` otherwise)."""
    if config_dir is not None:
        exact = config_dir / f"stage{stage}.yaml"
        found = [exact] if exact.is_file() else sorted(config_dir.glob(f"stage{stage}_*.yaml"))
        if len(found) != 1:
            what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
            raise ConfigError(f"--config-dir {config_dir}: {what} stage{stage}.yaml or stage{stage}_*.yaml; "
                              "put exactly one config per stage there")
        return found[0]
    size = {"tiny": "tiny", "random-7b": "7b"}.get(model, "3b")
    return config_path(f"stage{stage}_{size}")


def plan_stages(stages: list[int], model: str, config_dir: Path | None, out_root: Path) -> list[StagePlan]:
    """Load and validate each stage's config with the one-step, batch-1 overrides (ConfigError on a bad one)."""
    from .codec.config import Stage0Config
    from .sft.config import SFTConfig
    from .uapo.config import UAPOConfig

    schemas = {0: Stage0Config, 1: SFTConfig, 2: SFTConfig, 3: UAPOConfig}
    plans = []
    for stage in stages:
        source = stage_config_file(stage, model, config_dir)
        out = out_root / f"stage{stage}"
        overrides = [f"model={model}", f"output_dir={out}", "train.max_steps=1", "train.per_device_train_batch_size=1",
                     "train.gradient_accumulation_steps=1", "train.dataloader_num_workers=0", "train.report_to=[]",
                     "train.logging_steps=1"]
        if stage == 0:  # bootstrapping is data preparation (two texts, one sample each); no round-trip report
            texts = out_root / "bootstrap_texts.txt"
            texts.parent.mkdir(parents=True, exist_ok=True)
            texts.write_text("\n".join(BOOTSTRAP_TEXTS) + "\n", encoding="utf-8")
            overrides += [f"bootstrap.texts_file={texts}", "bootstrap.num_samples=1", "round_trip_clips=0"]
        if model == "tiny":
            overrides += TINY_OVERRIDES.get(stage, [])
        cfg = load_config(schemas[stage], source, overrides)
        if stage == 2 and cfg.bridge is None and model in PRESETS:
            # Stage 2 continues a stage-1 model; a preset has no bridge yet, so it takes stage 1's (new weights).
            stage1 = load_config(SFTConfig, stage_config_file(1, model, config_dir), [f"model={model}"])
            cfg = replace(cfg, bridge=stage1.bridge)
        plans.append(StagePlan(stage, source, cfg))
    return plans


def stage_manifests(plan: StagePlan) -> list[tuple[str, str]]:
    """(config key, path) of every manifest a stage reads."""
    keys = {0: ("real_speech_manifest", "flow_matching_manifest"), 1: ("train_manifest", "eval_manifest"),
            2: ("train_manifest", "eval_manifest"), 3: ("prompts_manifest",)}[plan.stage]
    return [(key, getattr(plan.config, key)) for key in keys if getattr(plan.config, key)]


# ---- the checks ------------------------------------------------------------------------------------
def check_versions() -> str:
    import transformers

    try:
        import deepspeed

        ds = deepspeed.__version__
    except ImportError:
        ds = "not installed"
    cuda = torch.version.cuda or "none"
    return (f"python {platform.python_version()}, torch {torch.__version__} (CUDA {cuda}), "
            f"transformers {transformers.__version__}, deepspeed {ds}")


def check_devices(device: torch.device) -> str:
    if not torch.cuda.is_available():
        return "cpu only"
    parts = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        parts.append(f"cuda:{i} {torch.cuda.get_device_name(i)} {free / 2**30:.1f}/{total / 2**30:.1f} GiB free")
    return "; ".join(parts)


def check_bf16(device: torch.device, needed: bool) -> str:
    """bf16 support of the device (CUDA: the driver's answer; CPU: a bf16 matmul that must run and be close)."""
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        how = "torch.cuda.is_bf16_supported"
    else:
        a = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
        try:
            err = float(((a.bfloat16() @ a.bfloat16()).float() - a @ a).abs().max() / (a @ a).abs().max())
            supported, how = err < 0.05, f"cpu bf16 matmul, relative error {err:.1e}"
        except RuntimeError as exc:
            supported, how = False, f"cpu bf16 matmul failed ({one_line(exc)})"
    if not supported and needed:
        raise Failed(f"bf16 not supported ({how}) but the model or a stage config uses it")
    return f"{'supported' if supported else 'not supported (not used)'} ({how})"


def check_deepspeed(plans: list[StagePlan]) -> tuple[str, str]:
    """(status, detail): DeepSpeed imports and its Adam ops can be built; NO-GO only where a stage's
    DeepSpeed JSON needs them (ZeRO-Offload uses cpu_adam; the recipes give DeepSpeed a torch optimizer)."""
    jsons = sorted({p.config.train.deepspeed for p in plans if p.config.train.deepspeed})
    try:
        import deepspeed  # noqa: F401
        from deepspeed.accelerator import get_accelerator
        from deepspeed.ops.op_builder import CPUAdamBuilder, FusedAdamBuilder
    except ImportError as exc:
        if jsons:
            raise Failed(f"deepspeed is not importable ({one_line(exc)}) but {jsons[0]} needs it") from exc
        return SKIP, f"deepspeed not importable ({one_line(exc)}); no stage config uses it"
    ops = {"cpu_adam": CPUAdamBuilder().is_compatible(False), "fused_adam": FusedAdamBuilder().is_compatible(False)}
    offload = any("offload_optimizer" in json.loads(Path(j).read_text(encoding="utf-8")).get("zero_optimization", {})
                  for j in jsons)
    detail = (f"accelerator {get_accelerator()._name}; "
              + ", ".join(f"{op} {'compatible' if ok else 'NOT compatible'}" for op, ok in ops.items())
              + (f"; used by {', '.join(Path(j).name for j in jsons)}" if jsons else "; no stage config uses it"))
    if offload and not ops["cpu_adam"]:
        raise Failed(f"{detail}; the optimizer offload of the DeepSpeed config needs cpu_adam")
    return GO, detail


def load_model(model: str, device: torch.device, dtype: torch.dtype):
    from .facade import SASLM

    saslm = SASLM.from_pretrained(model, device=device, dtype=dtype)
    params = sum(p.numel() for p in saslm.model.parameters())
    return saslm, f"{model}: {params / 1e6:.1f} M parameters, {dtype}, on {saslm.device}"


def check_logprobs(saslm, dtype: torch.dtype, seed: int = 0) -> str:
    """Two prompts (spoken, written), two rollouts and an anchor each: the per-code gap between the
    sampler's log-probs and teacher forcing on the recorded and on fresh Thinker states."""
    from .talker.sampling import SamplingConfig
    from .uapo.consistency import logprob_agreement
    from .uapo.rollouts import collect

    convs = [saslm.conversation(audio=CORPUS_DIR / "wavs" / "q00.wav"), saslm.conversation(text="Hi, how are you?")]
    sampling = saslm.sampling(SamplingConfig(max_new_codes=20))
    rb = collect(saslm.model, saslm.processor, saslm.speakers, convs, ["It was quiet.", "Fine, thank you."], 2,
                 sampling, seed)
    agreement = logprob_agreement(saslm.model, saslm.processor, rb, sampling)
    tolerance = LOGPROB_TOLERANCE[dtype]
    worst = max(agreement.sampled_vs_recorded, agreement.fresh_vs_recorded)
    detail = (f"max |diff| {worst:.2e} per code (sampled vs teacher-forced {agreement.sampled_vs_recorded:.2e}, "
              f"fresh Thinker {agreement.fresh_vs_recorded:.2e}), tolerance {tolerance:.0e} for {dtype}, "
              f"{agreement.num_codes} codes")
    if not worst <= tolerance:  # also catches NaN
        raise Failed(f"teacher-forced log-probs differ from the sampled ones: {detail}")
    return detail


def check_data(plans: list[StagePlan], model: str) -> str:
    """Every manifest of the stage configs through the data audit (`data.audit.audit_manifest`)."""
    from .data import audit_manifest, user_audio_limits

    vocab = model_config(model).talker_config.vocab_size
    _, max_seconds = user_audio_limits(model)
    checked, problems = [], []
    for plan in plans:
        for key, path in stage_manifests(plan):
            if not Path(path).is_file():
                problems.append(f"stage {plan.stage} {key}: {path} not found")
                continue
            codes = vocab if plan.stage in (1, 2) and key == "train_manifest" else None
            # Cached in the stage's output folder, where its recipe audits again: the step decodes nothing.
            result = audit_manifest(path, codebook_size=codes, max_audio_seconds=max_seconds,
                                    cache_dir=plan.config.output_dir, progress=False, require_codes=codes is not None)
            checked.append(f"stage {plan.stage} {key} {len(result.good)}/{result.total} good")
            if result.bad:
                first = result.bad[0]
                problems.append(f"stage {plan.stage} {key}: {len(result.bad)} of {result.total} items bad "
                                f"(first {first.where}: {first.problem})")
    if problems:
        raise Failed("; ".join(problems))
    return "; ".join(checked) if checked else "no manifests"


@contextlib.contextmanager
def single_rank(needed: bool):
    """Outside a launcher, the environment of a one-process torch.distributed group (rank 0 of 1, a free
    local port), so a stage's DeepSpeed JSON runs as one rank instead of searching for MPI."""
    launched = "RANK" in os.environ or "WORLD_SIZE" in os.environ
    if not needed or launched:
        yield
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: v for k, v in env.items() if saved[k] is None})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def check_stage(plan: StagePlan, device: torch.device) -> str:
    """One optimizer step at batch 1 through the stage's recipe; wall time is the row's, memory here."""
    import importlib

    recipe = importlib.import_module(f"sa_slm.recipes.{RECIPES[plan.stage]}")
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with contextlib.redirect_stdout(io.StringIO()), single_rank(plan.config.train.deepspeed is not None):
        metrics = recipe.run(plan.config)  # its metrics printout goes to the buffer
    if metrics.get("steps") != 1:
        raise Failed(f"stage {plan.stage} ran {metrics.get('steps')} steps instead of 1")
    if cuda:
        memory = f"peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB allocated on {device}"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        memory = (f"peak RSS of the process {peak / 2**20:.2f} GiB "
                  f"(+{(peak - rss_before) / 2**10:.0f} MiB during this check)")
    return f"{plan.source.name}, loss {metrics['train_loss']:.3f}, {memory}"


# ---- the run -----------------------------------------------------------------------------------------
def timed(name: str, check: Callable[[], str | tuple[str, str]]) -> Row:
    """Run one check: GO with its detail, (status, detail) as it says, NO-GO with the one-line reason."""
    start = time.perf_counter()
    try:
        result = check()
        status, detail = result if isinstance(result, tuple) else (GO, result)
    except Exception as exc:  # noqa: BLE001 - any failure of one check is its NO-GO row, the others still run
        status, detail = NO_GO, one_line(exc)
    return Row(name, status, detail, time.perf_counter() - start)


def run_doctor(model: str, stages: list[int], device: str | None = None, dtype: str = "fp32",
               config_dir: str | None = None, work_dir: str | None = None,
               progress: Callable[[Row], None] | None = None) -> list[Row]:
    """Validate the arguments (SASLMError before anything loads), then run every check in order.

    work_dir: where the stage checks write (default: a temporary folder, removed afterwards).
    progress: called with each row as it finishes.
    """
    from .facade import resolve_device

    torch_device = resolve_device(device, "--device")
    model_config(model, "--model")  # a preset, a model folder or a hub id: its config.json, no weights
    torch_dtype = TORCH_DTYPES[dtype]
    folder = Path(config_dir) if config_dir else None
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"--config-dir {folder}: not a folder")
    with contextlib.ExitStack() as stack:
        root = Path(work_dir) if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="doctor-")))
        plans = plan_stages(stages, model, folder, root)
        rows: list[Row] = []

        def add(row: Row) -> None:
            rows.append(row)
            if progress:
                progress(row)

        needs_bf16 = torch_dtype == torch.bfloat16 or any(p.config.dtype == "bf16" or p.config.train.bf16
                                                            for p in plans)
        add(timed("versions", check_versions))
        add(timed("devices", lambda: check_devices(torch_device)))
        add(timed("bf16", lambda: check_bf16(torch_device, needs_bf16)))
        add(timed("deepspeed ops", lambda: check_deepspeed(plans)))
        loaded: dict[str, Any] = {}

        def load() -> str:
            loaded["saslm"], detail = load_model(model, torch_device, torch_dtype)
            return detail

        add(timed("model loads", load))
        if "saslm" in loaded:
            add(timed("logprobs match", lambda: check_logprobs(loaded["saslm"], torch_dtype)))
        else:
            add(Row("logprobs match", SKIP, "the model did not load"))
        loaded.clear()  # free the model before the stages measure their own peak memory
        if torch_device.type == "cuda":
            torch.cuda.empty_cache()
        if plans:
            add(timed("data audit", lambda: check_data(plans, model)))
        for plan in plans:
            add(timed(f"stage {plan.stage} step", lambda plan=plan: check_stage(plan, torch_device)))
        return rows


def format_table(rows: list[Row]) -> str:
    """A fixed-width table of the rows and the verdict line."""
    name_w = max(len("check"), *(len(r.name) for r in rows))
    lines = [f"{'check':<{name_w}}  {'status':<6}  {'seconds':>7}  detail",
             f"{'-' * name_w}  ------  -------  ------"]
    lines += [f"{r.name:<{name_w}}  {r.status:<6}  {r.seconds:7.1f}  {r.detail}" for r in rows]
    failed = [r.name for r in rows if r.status == NO_GO]
    lines.append(f"NO-GO: {len(failed)} of {len(rows)} checks failed ({', '.join(failed)})" if failed
                 else f"GO: {len(rows)} checks, none failed")
    return "\n".join(lines)


def write_json(rows: list[Row], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    verdict = GO if all(r.status != NO_GO for r in rows) else NO_GO
    path.write_text(json.dumps({"verdict": verdict, "checks": [asdict(r) for r in rows]}, indent=2) + "\n")

