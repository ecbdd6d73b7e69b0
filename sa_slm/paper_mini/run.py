"""`make paper-mini`: the whole chain on the synthetic corpus, measured like the paper.

    corpus → base model (random tiny, fixed) → stage 0 tokenizer → sa-slm tokenize → code-style
    classifier (the prelude, in this process) → jobs: per seed and variant, stage 1 → stage 2 →
    measurements; per seed and critic, stage 3 on that seed's full model → measurements (after the
    full model's job) → report/index.html

The jobs run in `workers` processes at once, each with its share of the CPU threads (a tiny model
keeps one thread busy far better than two: two jobs side by side train at nearly twice the rate of
one with both threads). Every step writes its result under `<output_dir>` and is skipped when that
result exists, so a run that stops (kill -9 included) continues where it was; the stages themselves
resume from their last complete checkpoint. A job that fails is logged with its traceback and the
others go on (the stage-3 jobs of a failed full model are skipped); the report is written from what
finished and the run then raises naming the failed jobs. Results: `results/<model>/seed<k>.json` with
per-item outcomes, which the report turns into means, intervals and paired tests.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..bridge import IntentBridgeConfig
from ..codec import SpeechTokenizer
from ..codec.config import Stage0Config
from ..codec.tokenize import tokenize_manifest
from ..config import CONFIG_DIR, ConfigError, dump_config, load_config
from ..data.manifest import Example, load_manifest
from ..errors import SASLMError
from ..facade import SASLM
from ..paths import path_inside, write_text_atomic
from ..probe import run_probe
from ..processor import READ_ALOUD
from ..recipes import stage0 as stage0_recipe
from ..recipes import stage1 as sft_recipe
from ..recipes import stage3 as stage3_recipe
from ..sft.config import SFTConfig
from ..training.run_lock import run_lock
from ..uapo.config import UAPOConfig
from .codestyle import CodeStyleClassifier, train_classifier
from .config import VARIANTS, PaperMiniConfig
from .corpus import STYLES, CorpusInfo, build_corpus
from .measure import CodeTable, code_table, discrimination, listening_examples, rollout_alignment

log = logging.getLogger(__name__)
ORACLE_REWARD = "sa_slm.paper_mini.codestyle:oracle_reward"


def _flatten(prefix: str, value: Any) -> list[str]:
    """Nested overrides → dotted `key=value` items (values as JSON, which YAML reads back unchanged)."""
    if isinstance(value, dict) and value:
        return [item for k, v in value.items() for item in _flatten(f"{prefix}.{k}" if prefix else str(k), v)]
    return [f"{prefix}={json.dumps(value)}"]


def stage_config(schema: type, shipped: str, *overrides: dict[str, Any]):
    """A shipped tiny stage config with `overrides` applied in order, validated by its schema."""
    items = [item for o in overrides for k, v in o.items() for item in _flatten(k, v)]
    try:
        return load_config(schema, CONFIG_DIR / f"{shipped}.yaml", items)
    except ConfigError as exc:
        raise ConfigError(f"paper-mini {shipped}: {exc}") from exc


@dataclass(frozen=True)
class Job:
    """One unit of the experiment after the prelude: a variant's stages 1-2 and measurements, or a critic's
    stage 3 on the full model of the same seed and its measurement."""

    kind: str  # "variant" or "stage3"
    name: str  # the variant, or the critic
    seed: int

    @property
    def label(self) -> str:
        return f"{self.name if self.kind == 'variant' else 'stage3_' + self.name} seed {self.seed}"

    @property
    def needs(self) -> "Job | None":
        """The job whose model this one starts from (stage 3: the full model of its seed)."""
        return Job("variant", "full", self.seed) if self.kind == "stage3" else None


@dataclass
class Prepared:
    """What the prelude made and every job reads."""

    base: Path
    tokenizer: Path
    manifests: dict[str, Path]  # split -> tokenised manifest
    contexts: list[Example]  # the held-out contexts measured
    codes: CodeTable  # their reply codes in every style
    classifier: CodeStyleClassifier


class PaperMini:
    """The experiment's steps; each one returns at once when its result is on disk."""

    def __init__(self, cfg: PaperMiniConfig, progress: bool = True) -> None:
        self.cfg, self.progress = cfg, progress
        self.out = Path(cfg.output_dir)
        self.results = self.out / "results"
        self.timings: dict[str, float] = {}
        self._loaded: tuple[Path, SASLM] | None = None

    # ---- helpers -----------------------------------------------------------------------------
    def _timed(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = fn()
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        return value

    def result_path(self, model: str, seed: int) -> Path:
        return path_inside(self.results, model, f"seed{seed}", suffix=".json")

    def _save(self, path: Path, obj: Any) -> None:
        write_text_atomic(path, json.dumps(obj, indent=1))

    # ---- data and instruments ----------------------------------------------------------------
    def corpus(self) -> CorpusInfo:
        return self._timed("corpus", lambda: build_corpus(self.out / "corpus", self.cfg.corpus, progress=self.progress))

    def base_model(self) -> Path:
        """The random tiny model every run starts from, saved once (bridge: the full model's)."""
        folder = self.out / "base"
        if not (folder / "config.json").is_file():
            saslm = SASLM.random("tiny", seed=self.cfg.base_seed, bridge=IntentBridgeConfig(**self.full_bridge()))
            saslm.config.max_new_codes = self.cfg.eval.sampling.max_new_codes
            saslm.save_pretrained(folder)
        return folder

    def full_bridge(self) -> dict[str, Any]:
        shipped = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "stage1_tiny.yaml"))["bridge"]
        return {**shipped, **self.cfg.stage1.get("bridge", {})}

    def stage0(self, corpus: CorpusInfo, base: Path) -> Path:
        """The speech tokenizer: stage 0 on the base model, with a few corpus sentences as bootstrap texts
        and a few training clips as real speech."""
        out = self.out / "stage0"
        if (out / "metrics.json").is_file() and (out / "tokenizer").is_dir():
            return out / "tokenizer"
        train = load_manifest(corpus.train)
        sentences = list(dict.fromkeys(ex.reply_text for ex in train))[: self.cfg.stage0_texts]
        texts = self.out / "data" / "stage0_texts.txt"
        write_text_atomic(texts, "\n".join(sentences) + "\n")
        clips = list({ex.reply_audio: ex for ex in train}.values())[: self.cfg.stage0_real_clips]
        real = self.out / "data" / "stage0_real.jsonl"
        write_read_aloud_manifest(real, clips)
        cfg = stage_config(Stage0Config, "stage0_tiny", self.cfg.stage0, {
            "model": str(base), "output_dir": str(out), "real_speech_manifest": str(real),
            "bootstrap": {"texts_file": str(texts)}})
        self._timed("stage0", lambda: _locked(cfg.output_dir, lambda: stage0_recipe.run(cfg)))
        return out / "tokenizer"

    def tokenize(self, corpus: CorpusInfo, tokenizer: Path) -> dict[str, Path]:
        """`sa-slm tokenize` of both splits into <out>/data/{train,test}_codes.jsonl (beside the stage-0 run
        that made the tokenizer, not in the corpus folder: a rerun keeps the codes it finds)."""
        tok = SpeechTokenizer.from_pretrained(tokenizer).eval()
        paths = {}
        for split, manifest in (("train", corpus.train), ("test", corpus.test)):
            dst = self.out / "data" / f"{split}_codes.jsonl"
            report = self._timed("tokenize", lambda: tokenize_manifest(tok, manifest, dst, progress=self.progress))
            if report.failed:
                log.warning("tokenize %s: %d line(s) failed: %s", split, len(report.failed), "; ".join(report.failed[:5]))
            paths[split] = dst
        return paths

    def classifier(self, train: list[Example], test: list[Example]) -> CodeStyleClassifier:
        """The code-space style classifier, trained on the tokenised training clips; its accuracy on the
        tokenised held-out clips is the ceiling of code-space EmoAlign."""
        folder = self.out / "classifier"
        result = self.results / "classifier.json"
        if result.is_file() and folder.is_dir():
            return CodeStyleClassifier.load(folder)
        tr, te = list(code_table(train).items()), list(code_table(test).items())
        c = self.cfg.classifier
        clf = train_classifier([v for _, v in tr], [k[1] for k, _ in tr], list(STYLES), seed=self.cfg.base_seed,
                               top_pairs=c.top_pairs, steps=c.steps)
        clf.save(folder)
        predicted = clf.predict([v for _, v in te])
        items = [{"sentence": k[0], "target": k[1], "predicted": p, "correct": float(p == k[1])}
                 for (k, _), p in zip(te, predicted)]
        train_acc = sum(p == k[1] for (k, _), p in zip(tr, clf.predict([v for _, v in tr]))) / len(tr)
        self._save(result, {"train_clips": len(tr), "test_clips": len(te), "train_accuracy": train_acc,
                            "items": items, "vocab_size": len(clf.vocab)})
        return clf

    # ---- training ----------------------------------------------------------------------------
    def sft(self, variant: str, seed: int, base: Path, train_manifest: Path) -> Path:
        """Stage 1 then stage 2 of one variant; returns the stage-2 model folder."""
        root = self.out / "runs" / variant / f"seed{seed}"
        bridge = {**self.full_bridge(), **VARIANTS[variant]}
        s1 = stage_config(SFTConfig, "stage1_tiny", self.cfg.stage1, {
            "model": str(base), "output_dir": str(root / "stage1"), "seed": seed,
            "train_manifest": str(train_manifest), "bridge": bridge})
        if not (root / "stage1" / "metrics.json").is_file():
            self._timed("stage1", lambda: _locked(s1.output_dir, lambda: sft_recipe.run(s1)))
        s2 = stage_config(SFTConfig, "stage2_tiny", self.cfg.stage2, {
            "model": str(root / "stage1" / "model"), "output_dir": str(root / "stage2"), "seed": seed,
            "train_manifest": str(train_manifest)})
        if not (root / "stage2" / "metrics.json").is_file():
            self._timed("stage2", lambda: _locked(s2.output_dir, lambda: sft_recipe.run(s2)))
        return root / "stage2" / "model"

    def stage3(self, critic: str, seed: int, policy: Path, prompts: Path) -> Path:
        root = self.out / "runs" / f"stage3_{critic}" / f"seed{seed}"
        rewards = ([{"name": "critic", "function": "rubric", "weight": 1.0}] if critic == "self" else
                   [{"name": "oracle", "function": ORACLE_REWARD, "weight": 1.0,
                     "args": {"classifier": str(self.out / "classifier")}}])
        cfg = stage_config(UAPOConfig, "stage3_tiny", self.cfg.stage3, {
            "model": str(policy), "output_dir": str(root), "seed": seed, "prompts_manifest": str(prompts),
            "bridge": None, "rewards": rewards})
        if not (root / "metrics.json").is_file():
            self._timed("stage3", lambda: _locked(cfg.output_dir, lambda: stage3_recipe.run(cfg)))
        return root / "model"

    # ---- measurements ------------------------------------------------------------------------
    def _load(self, model_dir: Path) -> SASLM:
        """The model in `model_dir` (cuda when visible); the last one loaded is kept, so the full model's two
        measurements (with its context and context-free) load it once."""
        key = Path(model_dir).resolve()
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = None  # the previous model is freed before the next one loads
            self._loaded = (key, SASLM.from_pretrained(model_dir))
        return self._loaded[1]

    def measure(self, name: str, seed: int, model_dir: Path, contexts: list[Example], codes, clf: CodeStyleClassifier,
                context_free: bool = False, probe: bool = False, listen: bool = False) -> dict:
        path = self.result_path(name, seed)
        if path.is_file():
            return json.loads(path.read_text())
        e = self.cfg.eval
        saslm = self._load(model_dir)
        model, proc, spk = saslm.model, saslm.processor, saslm.speakers
        sampling = saslm.sampling(e.sampling)
        result: dict[str, Any] = {"model": name, "seed": seed, "model_dir": str(model_dir),
                                  "context_free": context_free}
        result["discrimination"] = self._timed("measure", lambda: discrimination(
            model, proc, spk, contexts, codes, list(STYLES), e.batch_size, context_free, self.progress))
        result["rollouts"] = self._timed("measure", lambda: rollout_alignment(
            model, proc, spk, contexts, clf, sampling, e.rollouts_per_context, e.seed, e.batch_size, context_free,
            self.progress))
        if probe:
            p = self._timed("probe", lambda: run_probe(model, proc, spk, contexts, "emotion", e.probe_folds,
                                                       group_by="sentence", progress=self.progress))
            result["probe"] = {"accuracy": p.accuracy, "chance": p.chance, "examples": p.examples}
        if listen and e.listening_examples:
            picks = _listening_picks(contexts, e.listening_examples)
            result["listening"] = listening_examples(model, proc, spk, picks, sampling, e.seed,
                                                     self.out / "report" / "audio", f"{name}_seed{seed}")
        self._save(path, result)
        return result

    # ---- the whole run -----------------------------------------------------------------------
    def prepare(self) -> Prepared:
        """The prelude: corpus, base model, stage 0, tokenised manifests, held-out contexts, classifier."""
        cfg = self.cfg
        corpus = self.corpus()
        base = self._timed("base", self.base_model)
        tokenizer = self.stage0(corpus, base)
        manifests = self.tokenize(corpus, tokenizer)
        train, test = load_manifest(manifests["train"]), load_manifest(manifests["test"])
        codes = code_table(test)
        contexts = heldout_contexts(test, codes, cfg.eval.heldout_sentences)
        clf = self._timed("classifier", lambda: self.classifier(train, test))
        return Prepared(base, tokenizer, manifests, contexts, codes, clf)

    def jobs(self) -> list[Job]:
        """Every job, in the order they start: the full models first (stage 3 waits for them), then per seed
        its stage-3 jobs and the other variants."""
        cfg = self.cfg
        first = [Job("variant", "full", seed) for seed in cfg.seeds]
        rest = [job for seed in cfg.seeds for job in (
            *(Job("stage3", critic, seed) for critic in cfg.critics),
            *(Job("variant", v, seed) for v in cfg.variants if v != "full"))]
        return first + rest

    def run_job(self, job: Job, prep: Prepared) -> None:
        cfg = self.cfg
        listen = job.seed == cfg.seeds[0]
        m = (prep.contexts, prep.codes, prep.classifier)
        if job.kind == "variant":
            model = self.sft(job.name, job.seed, prep.base, prep.manifests["train"])
            full = job.name == "full"
            self.measure(job.name, job.seed, model, *m, probe=full, listen=full and listen)
            if full:
                self.measure("context_free", job.seed, model, *m, context_free=True)
                self.measure("stage1", job.seed, model.parent.parent / "stage1" / "model", *m)
        else:
            policy = self.out / "runs" / "full" / f"seed{job.seed}" / "stage2" / "model"
            model = self.stage3(job.name, job.seed, policy, prep.manifests["train"])
            self.measure(f"stage3_{job.name}", job.seed, model, *m, listen=listen)

    def run(self) -> dict:
        started = time.perf_counter()
        dump_config(self.cfg, self.out / "config.yaml")
        prep = self.prepare()
        failed = run_jobs(self, prep, self.jobs(), self.cfg.workers)
        self.timings["total"] = time.perf_counter() - started
        timings = self.out / "timings.json"
        previous = json.loads(timings.read_text()) if timings.is_file() else []
        self._save(timings, previous + [self.timings])
        from .report import write_report

        report = write_report(self.out, self.cfg)
        if failed:
            raise SASLMError(f"paper-mini: {len(failed)} job(s) failed ({'; '.join(failed)}); the report "
                             f"{report} holds the rest; a rerun redoes only what is missing")
        return {"report": str(report), "timings": self.timings}


def _execute(cfg: PaperMiniConfig, job: Job, prep: Prepared, threads: int) -> dict[str, float]:
    """Run one job in a worker process; its step timings."""
    torch.set_num_threads(threads)
    pm = PaperMini(cfg, progress=False)
    pm.run_job(job, prep)
    return pm.timings


def run_jobs(pm: PaperMini, prep: Prepared, jobs: list[Job], workers: int) -> list[str]:
    """Run `jobs` with at most `workers` at once, each after the job it needs; a job's timings are added to
    `pm.timings`. Returns "label: reason" of each job that failed or was skipped because its model failed."""
    failed: dict[Job, str] = {}
    done: set[Job] = set()
    pending = list(jobs)
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))

    def ready() -> list[Job]:
        for job in [j for j in pending if j.needs in failed]:
            pending.remove(job)
            failed[job] = f"skipped: {job.needs.label} failed"
        return [j for j in pending if j.needs is None or j.needs in done]

    def finish(job: Job, run: Callable[[], dict[str, float]]) -> None:
        start = time.perf_counter()
        try:
            for name, seconds in run().items():
                pm.timings[name] = pm.timings.get(name, 0.0) + seconds
            done.add(job)
            log.info("paper-mini: %s done in %.0f s", job.label, time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - one job's failure is reported, the others go on
            failed[job] = f"{type(exc).__name__}: {exc}"
            log.error("paper-mini: %s failed:\n%s", job.label, traceback.format_exc())

    if workers <= 1:  # in this process, on `pm` itself (its timings grow as the steps run)
        while (todo := ready()):
            job = todo[0]
            pending.remove(job)
            finish(job, lambda: (pm.run_job(job, prep), {})[1])
        return [f"{j.label}: {why}" for j, why in failed.items()]
    # Spawned, not forked: a forked child would inherit this process's torch thread pools and locks.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        running: dict[Future, Job] = {}
        while pending or running:
            for job in ready()[: workers - len(running)]:
                pending.remove(job)
                running[pool.submit(_execute, pm.cfg, job, prep, threads)] = job
                log.info("paper-mini: %s started", job.label)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                finish(job, future.result)
    return [f"{j.label}: {why}" for j, why in failed.items()]


def write_read_aloud_manifest(path: Path, examples: list[Example]) -> None:
    """The examples' reply clips as read-aloud items (stage 0's real speech); audio paths are written relative
    to the manifest's folder, as manifests resolve them, whether the output folder is relative or absolute."""
    folder = path.parent.resolve()
    write_text_atomic(path, "".join(json.dumps({
        "id": ex.id, "user_text": READ_ALOUD, "reply_text": ex.reply_text,
        "reply_audio": os.path.relpath(Path(ex.reply_audio).resolve(), folder)}) + "\n" for ex in examples))


def heldout_contexts(test: list[Example], codes, limit: int | None) -> list[Example]:
    """The held-out contexts whose sentence has codes in every style (first `limit` sentences)."""
    sentences = [s for s in dict.fromkeys(str(ex.labels["sentence"]) for ex in test)
                 if all((s, style) in codes for style in STYLES)]
    keep = set(sentences[:limit] if limit else sentences)
    return [ex for ex in test if str(ex.labels["sentence"]) in keep]


def _listening_picks(contexts: list[Example], n: int) -> list[Example]:
    """n held-out contexts of different target styles, both kinds of context."""
    picks, seen = [], set()
    for ex in contexts:
        key = ex.labels["emotion"]
        if key not in seen:
            seen.add(key)
            picks.append(ex)
        if len(picks) == n:
            break
    return picks


def _locked(output_dir: str, fn: Callable[[], Any]) -> Any:
    with run_lock(output_dir):
        return fn()


def load_paper_mini_config(path: str | Path, overrides: list[str] | None = None) -> PaperMiniConfig:
    """The experiment config, its stage sections validated against their stage schemas too."""
    cfg = load_config(PaperMiniConfig, path, overrides)
    probe = Path(cfg.output_dir) / "(validation)"
    placeholder = {"model": "tiny", "output_dir": str(probe), "train_manifest": str(probe),
                   "prompts_manifest": str(probe)}
    for schema, shipped, section, keys in (
        (Stage0Config, "stage0_tiny", cfg.stage0, ("model", "output_dir")),
        (SFTConfig, "stage1_tiny", cfg.stage1, ("model", "output_dir", "train_manifest")),
        (SFTConfig, "stage2_tiny", cfg.stage2, ("model", "output_dir", "train_manifest")),
        (UAPOConfig, "stage3_tiny", cfg.stage3, ("model", "output_dir", "prompts_manifest")),
    ):
        try:
            stage_config(schema, shipped, section, {k: placeholder[k] for k in keys})
        except (ConfigError, OmegaConfBaseException) as exc:
            raise ConfigError(f"{path}: {shipped.split('_')[0]}: {exc}") from exc
    return cfg


def run_paper_mini(cfg: PaperMiniConfig, progress: bool = True) -> dict:
    with run_lock(cfg.output_dir):
        return PaperMini(cfg, progress).run()
