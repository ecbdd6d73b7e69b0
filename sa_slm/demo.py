"""The main job on the built-in tiny model: answer a shipped spoken question with text and speech."""

from __future__ import annotations

from pathlib import Path

from .audio import write_wav
from .eval.config import EvalConfig, ModelEntry
from .eval.runner import run_eval
from .paths import CORPUS_DIR
from .talker.sampling import SamplingConfig

DEMO_QUESTION = CORPUS_DIR / "wavs" / "demo_question.wav"


def run_demo(out_dir: Path, seed: int = 0) -> Path:
    """Load `tiny` (random weights: the words and sounds are noise, the pipeline is the real one)."""
    from .facade import SASLM

    out_dir.mkdir(parents=True, exist_ok=True)
    print("loading the built-in tiny SA-SLM (random weights, CPU) ...")
    saslm = SASLM.from_pretrained("tiny", device="cpu", seed=seed)
    print(f"question: {DEMO_QUESTION}")
    result = saslm.generate(audio=DEMO_QUESTION, seed=seed)
    wav_path = write_wav(out_dir / "answer.wav", result.waveform, result.sample_rate)
    print(f"reply text: {result.reply_text!r}")
    print(f"codes: {len(result.codes[0])} Talker codes")
    print(f"wrote {wav_path} ({len(result.waveform) / result.sample_rate:.2f} s, {result.sample_rate} Hz)")
    scores = saslm.score(wav_path, result.reply_text, context_audio=DEMO_QUESTION)
    print("self-critic scores (expressive rubric, 0-1): " +
          ", ".join(f"{k} {v:.3f}" for k, v in scores.as_dict()["scores"].items()) + f"; utility {float(scores.utility[0]):.3f}")
    print("evaluating: one corpus reply spoken for each of its 5 emotion labels (WER, F0, energy, rate, critic) ...")
    run = run_eval(EvalConfig(manifest=str(CORPUS_DIR / "manifest.jsonl"), output_dir=str(out_dir / "eval"),
                              models=[ModelEntry(name="tiny")], max_items=5, sampling=SamplingConfig(max_new_codes=40),
                              batch_size=5, seed=seed),
                   loaded={"tiny": saslm})
    print(f"report: {run.report}")
    return wav_path
