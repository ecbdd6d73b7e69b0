"""The paper-mini report: every table as mean [95 % interval], paired tests, the paper's numbers beside
ours, training curves, listening examples and how this differs from the paper.

`summarise` turns `results/<model>/seed<k>.json` into `summary.json` (what tests and notes read);
`write_report` renders it to `report/index.html`.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from urllib.parse import quote

from ..eval.curves import plot_curves, read_scalars
from ..eval.report import CSS
from ..paths import write_text_atomic
from .config import PaperMiniConfig
from .corpus import STYLES
from .measure import calibrate
from .stats import Estimate, estimate, paired, wilson

CHANCE = 1.0 / len(STYLES)
#: The published numbers each table is set beside (SASLM paper, EchoMind response speech; DESIGN §3.3).
PAPER = {
    "emoalign": {"vanilla": "21.44 (Qwen2.5-Omni-3B)", "full": "35.61 (SASLM-3B)"},
    "overall": {"text": "4.17", "add": "4.20", "adaln_h": "4.22", "full": "4.31",
                "stage3_self": "4.33 (3B self-critic)", "stage3_oracle": "4.38 (30B oracle critic)"},
    "probe": {"e": "18.1", "h": "41.4", "z": "64.5"},
}
MODE_ROWS = [("text", "text (e only, TTS-like)"), ("add", "add (h + e, stock Qwen)"),
             ("adaln_h", "adaln_h (AdaLN on h)"), ("full", "vib_adaln (AdaLN on z, SA-SLM)")]
KINDS = ("spoken", "asked")


def _load(out: Path, model: str, seeds: list[int]) -> list[dict] | None:
    """The per-seed results of one model, or None when any seed is missing. The calibrated readings are
    recomputed from the stored log-likelihoods, so results written by an earlier version report them too."""
    results = []
    for seed in seeds:
        path = out / "results" / model / f"seed{seed}.json"
        if not path.is_file():
            return None
        r = json.loads(path.read_text())
        results.append({**r, "discrimination": calibrate(r["discrimination"], list(STYLES))})
    return results


def _items(results: list[dict], part: str, key: str, kind: str | None = None) -> list[list[float]]:
    """Per seed, the per-item values `key` of `part` (discrimination / rollouts), in a fixed order."""
    out = []
    for r in results:
        rows = sorted(r[part], key=lambda x: (x["id"], x.get("sample", 0)))
        out.append([float(x[key]) for x in rows if kind is None or x["context"] == kind])
    return out


def model_summary(results: list[dict]) -> dict:
    s = {"discrimination": estimate(_items(results, "discrimination", "correct")).to_dict(),
         "calibrated": estimate(_items(results, "discrimination", "correct_calibrated")).to_dict(),
         "margin": estimate(_items(results, "discrimination", "margin_calibrated"), binary=False).to_dict(),
         "emoalign": estimate(_items(results, "rollouts", "aligned")).to_dict(),
         "p_target": estimate(_items(results, "rollouts", "p_target")).to_dict(),
         "truncated": float(sum(x["truncated"] for r in results for x in r["rollouts"]) /
                            max(sum(len(r["rollouts"]) for r in results), 1))}
    for kind in KINDS:
        if any(x["context"] == kind for x in results[0]["discrimination"]):
            s[f"discrimination_{kind}"] = estimate(_items(results, "discrimination", "correct", kind)).to_dict()
            s[f"calibrated_{kind}"] = estimate(_items(results, "discrimination", "correct_calibrated", kind)).to_dict()
            s[f"margin_{kind}"] = estimate(_items(results, "discrimination", "margin_calibrated", kind),
                                           binary=False).to_dict()
            s[f"emoalign_{kind}"] = estimate(_items(results, "rollouts", "aligned", kind)).to_dict()
    if all("probe" in r for r in results):
        s["probe"] = {rep: estimate([_probe_outcomes(r["probe"], rep) for r in results]).to_dict()
                      if all(r["probe"]["accuracy"].get(rep) is not None for r in results) else None
                      for rep in ("e", "h", "z")}
        s["probe_chance"] = results[0]["probe"]["chance"]
    return s


def _probe_outcomes(probe: dict, rep: str) -> list[float]:
    """A cross-validated probe accuracy as its 0/1 outcomes over the probed examples (every example is
    predicted once, in its held-out fold), so that one seed gets a Wilson interval over examples."""
    n = int(probe["examples"])
    hits = round(float(probe["accuracy"][rep]) * n)
    return [1.0] * hits + [0.0] * (n - hits)


#: The paired metrics: name → (result section, per-item value, whether it is a 0/1 outcome).
PAIRED_METRICS = {"discrimination": ("discrimination", "correct", True),
                  "calibrated": ("discrimination", "correct_calibrated", True),
                  "margin": ("discrimination", "margin_calibrated", False),
                  "emoalign": ("rollouts", "aligned", True)}


def _scale(metric: str) -> float:
    """How a metric is shown: 0/1 outcomes in percent, graded values (the margin, nats) as they are."""
    return 100.0 if PAIRED_METRICS[metric][2] else 1.0


def compare(a: list[dict], b: list[dict]) -> dict:
    """b against a, paired over seeds and items: raw and calibrated discrimination, and EmoAlign."""
    return {name: paired(_items(a, section, key), _items(b, section, key), binary).to_dict()
            for name, (section, key, binary) in PAIRED_METRICS.items()}


def summarise(out: Path, cfg: PaperMiniConfig) -> dict:
    out = Path(out)
    models = ["context_free", "stage1", *cfg.variants, *(f"stage3_{c}" for c in cfg.critics)]
    loaded = {m: r for m in models if (r := _load(out, m, cfg.seeds)) is not None}
    summary: dict = {"seeds": cfg.seeds, "chance": CHANCE, "models": {m: model_summary(r) for m, r in loaded.items()},
                     "comparisons": {}}
    full = loaded.get("full")
    if full:
        for other in [m for m in loaded if m != "full"]:
            summary["comparisons"][f"{other}_vs_full"] = compare(full, loaded[other])
    clf = out / "results" / "classifier.json"
    if clf.is_file():
        c = json.loads(clf.read_text())
        hits = int(sum(x["correct"] for x in c["items"]))
        low, high = wilson(hits, len(c["items"]))
        summary["classifier"] = {"heldout_accuracy": hits / max(len(c["items"]), 1), "low": low, "high": high,
                                 "test_clips": c["test_clips"], "train_clips": c["train_clips"],
                                 "train_accuracy": c["train_accuracy"], "vocab_size": c["vocab_size"]}
    stage0 = out / "stage0" / "metrics.json"
    if stage0.is_file():
        summary["stage0"] = json.loads(stage0.read_text())
    corpus = out / "corpus" / "corpus.json"
    if corpus.is_file():
        summary["corpus"] = json.loads(corpus.read_text())
    timings = out / "timings.json"
    if timings.is_file():
        summary["timings"] = json.loads(timings.read_text())
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1))
    return summary


# ---- rendering -------------------------------------------------------------------------------------
def _est(d: dict | None, scale: float = 100.0) -> str:
    """A proportion in percent (scale 100) or a value as it is (scale 1: the margin in nats), with its interval."""
    if d is None:
        return "—"
    e = Estimate(**d)
    return f"{e.text(scale, 1 if scale == 100 else 2)} <span class='n'>({e.n} {e.over})</span>"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _cmp(summary: dict, name: str, metric: str) -> list[str]:
    """[difference from the full model, paired tests] cells of setting `name`."""
    c = summary["comparisons"].get(f"{name}_vs_full", {}).get(metric)
    if not c:
        return ["—", "—"]
    scale = _scale(metric)
    if c["mcnemar_p"] is None:  # not 0/1 outcomes
        return [_est(c["difference"], scale), f"t: {_p(c['t_p'])}"]
    return [_est(c["difference"], scale),
            f"t: {_p(c['t_p'])} · McNemar: {_p(c['mcnemar_p'])} ({c['b_better']}↑ / {c['a_better']}↓)"]


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _delivery_table(s: dict) -> str:
    rows = []
    names = [("context_free", "context-free reading (the stage-3 anchor)", PAPER["emoalign"]["vanilla"] + " ¹"),
             ("stage1", "stage 1 (full model)", "—"), ("full", "stage 2 (full model: vib_adaln + acoustic context)",
                                                       PAPER["emoalign"]["full"]),
             ("stage3_self", "stage 3, self-critic", "overall " + PAPER["overall"]["stage3_self"]),
             ("stage3_oracle", "stage 3, oracle reward", "overall " + PAPER["overall"]["stage3_oracle"])]
    for key, label, paper in names:
        m = s["models"].get(key)
        if m is None:
            continue
        rows.append([label, _est(m.get("discrimination_spoken")), _est(m.get("discrimination_asked")),
                     _est(m["discrimination"]), _est(m.get("calibrated_spoken")), _est(m.get("calibrated_asked")),
                     _est(m.get("calibrated")), _est(m.get("margin"), _scale("margin")), _est(m["emoalign"]),
                     f"{m['truncated'] * 100:.1f}", paper])
    return _table(["model", "discrimination, spoken contexts %", "discrimination, asked contexts %",
                   "discrimination, all %", "calibrated, spoken %", "calibrated, asked %", "calibrated, all %",
                   "calibrated margin (nats per reply)", "code-space EmoAlign %", "rollouts cut by budget %", "paper"],
                  rows)


def _ablation_table(s: dict, rows_spec: list[tuple[str, str]], paper: dict[str, str]) -> str:
    rows = []
    for key, label in rows_spec:
        m = s["models"].get(key)
        if m is None:
            continue
        row = [label, _est(m["discrimination"]), _est(m.get("calibrated")), _est(m.get("margin"), _scale("margin")),
               _est(m["emoalign"])]
        if key == "full":
            row += ["(reference)", ""] * len(PAIRED_METRICS)
        else:
            row += [cell for metric in PAIRED_METRICS for cell in _cmp(s, key, metric)]
        rows.append(row + [paper.get(key, "—")])
    return _table(["setting", "discrimination %", "calibrated %", "calibrated margin (nats)", "code-space EmoAlign %",
                   "Δ discrimination vs full (pp)", "paired tests", "Δ calibrated vs full (pp)", "paired tests",
                   "Δ margin vs full (nats)", "paired tests", "Δ EmoAlign vs full (pp)", "paired tests", "paper"], rows)


def _stage3_table(s: dict, critics: list[str]) -> str:
    rows = []
    for critic in critics:
        key = f"stage3_{critic}"
        if key not in s["models"]:
            continue
        for metric, label in (("discrimination", "discrimination %"), ("calibrated", "calibrated discrimination %"),
                              ("margin", "calibrated margin (nats)"), ("emoalign", "code-space EmoAlign %")):
            scale = _scale(metric)
            rows.append([{"self": "self-critic (rubric)", "oracle": "oracle (code-style classifier)"}[critic], label,
                         _est(s["models"]["full"][metric], scale), _est(s["models"][key][metric], scale),
                         *_cmp(s, key, metric), PAPER["overall"][key]])
    return _table(["critic", "metric", "before (stage 2)", "after (stage 3)", "Δ (pp; nats for the margin)",
                   "paired tests", "paper (overall 1–5)"], rows)


def _probe_table(s: dict) -> str:
    m = s["models"].get("full", {})
    probe = m.get("probe")
    if not probe:
        return "<p class='note'>No probe results.</p>"
    rows = [[rep, _est(probe[rep]), PAPER["probe"][rep]] for rep in ("e", "h", "z")]
    return (_table(["representation", "held-out probe accuracy %", "paper %"], rows) +
            f"<p class='note'>Chance (most frequent class): {s['models']['full']['probe_chance'] * 100:.1f} %. "
            "Cross-validated linear probe on the held-out contexts, folds grouped by sentence.</p>")


def _curves(out: Path, report: Path, cfg: PaperMiniConfig) -> str:
    seed = cfg.seeds[0]
    parts = []
    runs = [("stage1", out / "runs" / "full" / f"seed{seed}" / "stage1"),
            ("stage2", out / "runs" / "full" / f"seed{seed}" / "stage2")]
    runs += [(f"stage3_{c}", out / "runs" / f"stage3_{c}" / f"seed{seed}") for c in cfg.critics]
    for name, folder in runs:
        scalars = read_scalars(folder / "checkpoints" / "runs") if folder.is_dir() else {}
        png = plot_curves(scalars, report / f"curves_{name}.png", f"{name} (full model, seed {seed})")
        if png:
            parts.append(f'<img src="{escape(quote(png.name))}" alt="{escape(name)} curves">')
    return "".join(parts) or "<p class='note'>No training logs found.</p>"


def _listening(out: Path, report: Path, cfg: PaperMiniConfig) -> str:
    rows = []
    for model in ("full", "stage3_oracle"):
        path = out / "results" / model / f"seed{cfg.seeds[0]}.json"
        if not path.is_file():
            continue
        items = json.loads(path.read_text()).get("listening", [])
        anchors = {x["id"]: x for x in items if x["anchor"]}
        for x in items:
            if x["anchor"]:
                continue
            audio = lambda p: f'<audio controls src="{escape(quote(os.path.relpath(p, report)))}"></audio>'  # noqa: E731
            context = audio(x["user_audio"]) if x["user_audio"] else escape(x["user_text"] or "")
            anchor = anchors.get(x["id"])
            rows.append([escape(model), escape(x["id"]), context, escape(x["target"]), escape(x["reply_text"]),
                         audio(x["wav"]), audio(anchor["wav"]) if anchor else "—"])
    if not rows:
        return "<p class='note'>No listening examples.</p>"
    return _table(["model", "context id", "user turn", "target style", "reply", "model's reply",
                   "context-free anchor"], rows)


DIFFERENCES = """
<ul>
<li><b>Random-weight Thinker.</b> The Thinker is the tiny preset with random weights (the same base model
for every run; seeds vary training order and latent noise). It understands nothing; whatever it passes
on about the user's voice or request comes through untrained attention and the layers the stages train
(the last Thinker layer in stage 2, the bridge, the acoustic projection, the Talker).</li>
<li><b>Synthetic voices.</b> The corpus is espeak-ng speech with SSML prosody presets: five delivery
styles that differ in pitch, pitch range, rate and loudness, not human emotion. A context calls for
the style the user spoke in (spoken contexts) or the style the user's text asks for (asked contexts).</li>
<li><b>Code-space emotion metrics.</b> There is no emotion2vec and no judge: EmoAlign is measured by a
small classifier over Talker codes trained on the tokenised training clips (its held-out accuracy is the
ceiling), and "discrimination" compares teacher-forced likelihoods of the five styles' codes. The
paper's columns are EchoMind numbers (EmoAlign %, overall 1–5) of 3B models; they stand beside ours for
orientation only: the scales and tasks differ.</li>
<li><b>Tiny tokenizer.</b> The stage-0 tokenizer is trained by the flow-matching loss of the random DiT on
the corpus clips alone (the random Talker's own audio, the paper's self-bootstrapped pairs, teaches nothing
about speech and is left out of the loss). It keeps a handful of codes that follow each frame's level and
spectrum, and a style survives in their frequencies and in the clip's length; the classifier's ceiling
shows how much.</li>
<li><b>Stage 3.</b> The self-critic is the same random model listening to its own audio; the
"oracle" is the code-style classifier applied to the codes each rollout was decoded from (through the
reward interface), standing where the paper's 30B critic stands. The WER gate runs with the tiny model's
audio, which no recogniser can transcribe; its threshold is in the stage-3 section of the config.</li>
<li><b>Scale.</b> Minutes of CPU training per run instead of days on 8 GPUs, a few hundred dialogues
instead of thousands of hours.</li>
</ul>
"""


def write_report(out: Path, cfg: PaperMiniConfig) -> Path:
    out = Path(out)
    s = summarise(out, cfg)
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    corpus = s.get("corpus", {})
    clf = s.get("classifier")
    stage0 = s.get("stage0", {})
    intro = (f"<p>Seeds: {', '.join(map(str, cfg.seeds))}. Chance: {CHANCE * 100:.0f} %. Every number is a mean "
             "with its 95 % interval: over seeds (t) when there are several, else over held-out items (Wilson). "
             "Comparisons are paired over the same seeds and items: a paired t-test over seeds and an exact "
             "McNemar test over items (↑/↓: items only the compared setting / only the full model got right).</p>")
    instruments = []
    if corpus:
        instruments.append(f"corpus: {escape(json.dumps(corpus.get('counts', corpus.get('rows', {}))))}")
    if stage0:
        keys = [k for k in stage0 if "accuracy" in k or "wer" in k.lower() or "mel" in k]
        instruments.append("stage-0 tokenizer: " + ", ".join(f"{k} {stage0[k]:.3g}" for k in keys
                                                             if isinstance(stage0[k], (int, float))))
    if clf:
        instruments.append(f"code-style classifier: held-out accuracy {clf['heldout_accuracy'] * 100:.1f} % "
                           f"[{clf['low'] * 100:.1f}, {clf['high'] * 100:.1f}] on {clf['test_clips']} clips "
                           f"(the EmoAlign ceiling; train {clf['train_accuracy'] * 100:.1f} %, "
                           f"{clf['vocab_size']} distinct codes)")
    body = [
        "<h1>SA-SLM paper-mini: the paper's tables in miniature</h1>", intro,
        "<h2>Instruments</h2><ul>" + "".join(f"<li>{x}</li>" for x in instruments) + "</ul>",
        "<h2>Delivery of the reply (paper Table 2)</h2>", _delivery_table(s),
        "<p class='note'>¹ The paper's vanilla model is stock Qwen2.5-Omni, not a context-free reading; it is the "
        "nearest published row. Discrimination: accuracy of picking, by teacher-forced log-likelihood per code, the style the "
        "context calls for among the five (as the task defines it). Calibrated: the model read as a Bayes classifier "
        "of the context: each clip's likelihood is normalised over the contexts of its sentence and kind (log P(context "
        "| clip), uniform prior), and the context picks the clip whose posterior it holds most; the intrinsic "
        "likelihood of a clip (short, repetitive), which decides the raw choice under every context, cancels. Margin: "
        "log P(context | the clip it calls for) + log 5, in nats: 0 for a model that ignores its context. The "
        "context-free reading cannot know the "
"target: with every held-out sentence present once per style it sits exactly at chance on both.</p>",
        "<h2>Modulation (paper Table 3)</h2>", _ablation_table(s, MODE_ROWS, PAPER["overall"]),
        "<p class='note'>Paper column: the ablation's overall score (1–5).</p>",
        "<h2>Prior</h2>", _ablation_table(s, [("full", "OU prior (α 0.95)"), ("prior_iid", "i.i.d. N(0, I)")], {}),
        "<h2>Context grounding</h2>",
        _ablation_table(s, [("full", "acoustic context: audio tower"), ("no_context", "acoustic context: none")], {}),
        _kind_split(s),
        "<h2>Linear probe of e / h / z (paper §5.3)</h2>", _probe_table(s),
        "<h2>Stage 3: self-critic vs oracle (paper Table 4)</h2>", _stage3_table(s, cfg.critics),
        "<h2>Training curves</h2>", _curves(out, report, cfg),
        "<h2>Listening examples</h2>", _listening(out, report, cfg),
        "<h2>How this differs from the paper</h2>", DIFFERENCES,
        "<h2>Run time</h2>", _timings(s),
    ]
    page = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>SA-SLM paper-mini</title>\n'
            f"<style>{CSS} .n{{color:#777;font-size:85%}}</style>\n</head>\n<body>\n" + "\n".join(body) +
            "\n</body>\n</html>\n")
    index = report / "index.html"
    write_text_atomic(index, page)
    return index


def _kind_split(s: dict) -> str:
    rows = []
    for key, label in (("full", "audio tower"), ("no_context", "none")):
        m = s["models"].get(key)
        if m:
            rows.append([label] + [_est(m.get(f"{metric}_{kind}"), _scale(metric))
                                   for metric in ("discrimination", "calibrated", "margin", "emoalign") for kind in KINDS])
    if len(rows) < 2:
        return ""
    return ("<p>By kind of context (spoken: only the user's voice carries the target; asked: the user's text "
            "does):</p>" + _table(["acoustic context", "discrimination, spoken %", "discrimination, asked %",
                                   "calibrated, spoken %", "calibrated, asked %", "margin, spoken (nats)",
                                   "margin, asked (nats)", "EmoAlign, spoken %",
                                   "EmoAlign, asked %"], rows))


def _timings(s: dict) -> str:
    runs = s.get("timings") or []
    if not runs:
        return "<p class='note'>No timings.</p>"
    last = runs[-1]
    items = ", ".join(f"{k} {v / 60:.1f} min" for k, v in last.items())
    return f"<p>Last invocation: {escape(items)} ({len(runs)} invocation(s) in all).</p>"
