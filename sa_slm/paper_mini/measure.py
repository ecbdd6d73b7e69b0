"""The paper-mini measurements of one trained model on the held-out contexts.

- `discrimination`: for each context, the teacher-forced log-likelihood of the reply's codes in each
  of the styles (greedy policy: raw logits with codec-bos suppressed, no penalty), per code with the
  EOS step included; correct when the style the context calls for scores highest. No sampling noise.
  Per code, because the sum favours the shortest style under any model: every code costs about the
  code entropy, so a 50-code reading beats a 100-code one by far more than a misplaced EOS costs.
  The sums are recorded too.
- `calibrate`: the same records scored as a Bayes classifier of the context. Within each group of
  contexts that share a sentence and a kind of context (one per style), each candidate clip's
  likelihood is normalised over the group's contexts: log P(context | clip) = loglik[c][k] minus the
  log-sum-exp over the group's contexts c' of loglik[c'][k] (a uniform prior over the contexts). The
  intrinsic likelihood of a code sequence (its length, its repetitiveness), the same under every
  context, cancels; a context that calls for the clip's style raises its posterior. The context picks
  the clip whose posterior it holds most. A model that ignores its context gives every posterior 1/G
  and so scores exactly chance. (Centring by the arithmetic mean of the log-likelihoods instead, as
  this reading once did, caps even the true generative model far below its Bayes accuracy: a clip
  that is very unlikely under most contexts gets a large centred score under any context that merely
  tolerates it. On the paper-mini corpus, a Gaussian length model fitted per style on the training
  clips scores 40 % centred by the mean and 68 % normalised by the posterior.)
- `rollout_alignment`: sampled replies classified by the code-space style classifier; EmoAlign is
  the share assigned to the target style.
- `context_free=True` measures the stage-3 anchor's reading instead: the same reply after a plain
  read-aloud prompt, conditioning `text`, no acoustic context. It cannot know the target, so over a
  set where every sentence appears once per style its discrimination is exactly chance.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from ..audio import write_wav
from ..data.collate import TeacherForcingCollator, example_conversation
from ..data.manifest import Example
from ..modeling import SASLMOmniModel
from ..paths import path_inside
from ..pipeline import prompt_inputs, speak
from ..processor import READ_ALOUD, OmniProcessor
from ..seeding import prompt_seeds
from ..speakers import SpeakerBank
from ..talker.sampling import SamplingConfig
from ..token2wav import SAMPLE_RATE
from ..uapo.rollouts import anchor_states
from .codestyle import CodeStyleClassifier

#: the scoring policy of `discrimination`: the model's own distribution (no temperature, no penalty)
GREEDY = SamplingConfig(do_sample=False, repetition_penalty=1.0)
CodeTable = dict[tuple[str, str], list[int]]  # (sentence id, style) → the tokenised reply clip


def code_table(examples: list[Example]) -> CodeTable:
    """(sentence, style) → reply codes, from tokenised manifest rows (rows of one clip share its codes)."""
    table: CodeTable = {}
    for ex in examples:
        if ex.reply_codes:
            table.setdefault((str(ex.labels["sentence"]), str(ex.labels["emotion"])), list(ex.reply_codes))
    return table


def read_aloud(ex: Example) -> Example:
    """The same reply after the anchor's context-free prompt."""
    return replace(ex, user_audio=None, user_text=READ_ALOUD, history=[], system_prompt=None)


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


@torch.no_grad()
def discrimination(model: SASLMOmniModel, processor: OmniProcessor, speakers: SpeakerBank, contexts: list[Example],
                   codes: CodeTable, styles: list[str], batch_size: int = 16, context_free: bool = False,
                   progress: bool = True) -> list[dict]:
    """One record per context: target, predicted style, correct (0/1), the log-likelihood of each style."""
    collate = TeacherForcingCollator.for_model(model, processor, speakers, require_codes=False)
    eos, pad = model.talker.codec_eos_token, model.talker.codec_pad_token
    S, records = len(styles), []
    bar = tqdm(total=len(contexts), desc="discrimination" + (" (context-free)" if context_free else ""),
               disable=not progress)
    for chunk in _chunks(contexts, batch_size):
        batch = collate([read_aloud(ex) if context_free else ex for ex in chunk])
        device = batch["input_ids"].device
        replies = [r[:n] for r, n in zip(batch["reply_ids"], batch["reply_lengths"].tolist())]
        states = model.thinker_states(**prompt_inputs(batch), reply_ids=replies)
        candidates = [torch.tensor(codes[(str(ex.labels["sentence"]), s)] + [eos]) for ex in chunk for s in styles]
        lengths = torch.tensor([len(c) for c in candidates])
        out = model(thinker_states=states, speaker_bos=batch["speaker_bos"].to(device),
                    rows=torch.arange(len(chunk), device=device).repeat_interleave(S),
                    codes=pad_sequence(candidates, batch_first=True, padding_value=pad), code_lengths=lengths,
                    sampling=GREEDY, mode="text" if context_free else None)
        total = out.logprobs.sum(-1).view(len(chunk), S).cpu()
        per_code = total / lengths.view(len(chunk), S)
        for ex, row, row_total in zip(chunk, per_code, total):
            predicted = styles[int(row.argmax())]
            records.append({"id": ex.id, "sentence": ex.labels["sentence"], "context": ex.labels["context"],
                            "target": ex.labels["emotion"], "predicted": predicted,
                            "correct": float(predicted == ex.labels["emotion"]),
                            "loglik_per_code": [float(v) for v in row], "loglik": [float(v) for v in row_total]})
        bar.update(len(chunk))
    bar.close()
    return calibrate(records, styles)


#: Calibrated log-likelihoods closer than this are tied (batching moves a log-likelihood by ~1e-6 nats).
TIE_NATS = 1e-4


def calibrate(records: list[dict], styles: list[str]) -> list[dict]:
    """`loglik_calibrated`, `predicted_calibrated`, `correct_calibrated` (0/1) and `margin_calibrated` added to
    each discrimination record.

    loglik_calibrated[c][k] = log P(c | clip k) = loglik[c][k] - logsumexp over the group's contexts c' of
    loglik[c'][k], the group being the records of one (sentence, context kind); the predicted style is its
    argmax over k (the first on a tie, entries within TIE_NATS counting as tied).
    margin_calibrated = loglik_calibrated[c][target] + log G (G contexts in the group), in nats: how much the
    clip of the style context c calls for favours c over a uniform guess among the group's contexts (0 for a
    model that ignores the context; log G when the clip names its context with certainty).
    """
    key = lambda r: (str(r["sentence"]), str(r["context"]))  # noqa: E731
    groups: dict[tuple[str, str], list[list[float]]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r["loglik"])
    normalisers = {k: torch.logsumexp(torch.tensor(rows, dtype=torch.float64), dim=0) for k, rows in groups.items()}
    out = []
    for r in records:
        rows = groups[key(r)]
        posterior = torch.tensor(r["loglik"], dtype=torch.float64) - normalisers[key(r)]
        # The first style within TIE_NATS of the best: a context-blind reading ties exactly, up to the ~1e-6 nats
        # by which batching with other contexts moves a log-likelihood.
        predicted = styles[int((posterior >= posterior.max() - TIE_NATS).nonzero()[0, 0])]
        t = styles.index(r["target"])
        margin = float(posterior[t]) + math.log(len(rows))
        out.append({**r, "loglik_calibrated": posterior.tolist(), "predicted_calibrated": predicted,
                    "correct_calibrated": float(predicted == r["target"]), "margin_calibrated": margin})
    return out


def _seeds(seed: int, chunk: list[Example], samples: int) -> list[list[int]]:
    return prompt_seeds(seed, [ex.id for ex in chunk], samples, "paper-mini rollout")


@torch.no_grad()
def sample_replies(model: SASLMOmniModel, processor: OmniProcessor, speakers: SpeakerBank, contexts: list[Example],
                   sampling: SamplingConfig, samples: int, seed: int, batch_size: int = 16,
                   context_free: bool = False, progress: bool = True) -> list[tuple[Example, int, list[int], bool]]:
    """(context, sample k, codes without EOS, truncated) per rollout. Sample k of a context draws from
    `derive_seed(seed, "paper-mini rollout", context id, k)`: the same for every model (common random numbers
    for paired comparisons), and different for every context (shared draws would end every context's reply
    at the same steps, whatever the context calls for)."""
    out = []
    bar = tqdm(total=len(contexts), desc="rollouts" + (" (context-free)" if context_free else ""),
               disable=not progress)
    for chunk in _chunks(contexts, batch_size):
        replies = [torch.tensor(processor.encode_reply(ex.reply_text)) for ex in chunk]
        if context_free:
            bos = [speakers[ex.speaker].bos_token for ex in chunk]
            conditioning = model.condition(anchor_states(model, processor, replies), bos, mode="text")
            rollouts = model.sample_codes(conditioning, sampling, samples, _seeds(seed, chunk, samples))
        else:
            conversations = [example_conversation(processor, ex) for ex in chunk]
            rollouts = speak(model, processor, speakers, conversations, sampling, samples, replies,
                             [ex.speaker for ex in chunk], seeds=_seeds(seed, chunk, samples)).codes
        for r in range(len(chunk) * samples):
            out.append((chunk[r // samples], r % samples, rollouts.audio_codes(r).tolist(),
                        not bool(rollouts.finished[r])))
        bar.update(len(chunk))
    bar.close()
    return out


def rollout_alignment(model: SASLMOmniModel, processor: OmniProcessor, speakers: SpeakerBank, contexts: list[Example],
                      classifier: CodeStyleClassifier, sampling: SamplingConfig, samples: int, seed: int,
                      batch_size: int = 16, context_free: bool = False, progress: bool = True) -> list[dict]:
    """One record per (context, sample k): the classifier's style, aligned (0/1), p(target), truncated."""
    rollouts = sample_replies(model, processor, speakers, contexts, sampling, samples, seed, batch_size, context_free,
                              progress)
    probs = classifier.probabilities([codes for _, _, codes, _ in rollouts])
    records = []
    for (ex, k, codes, truncated), p in zip(rollouts, probs):
        target = ex.labels["emotion"]
        predicted = classifier.styles[int(p.argmax())]
        records.append({"id": ex.id, "sample": k, "context": ex.labels["context"], "target": target,
                        "predicted": predicted, "aligned": float(predicted == target),
                        "p_target": float(p[classifier.styles.index(target)]), "length": len(codes),
                        "truncated": truncated})
    return records


def listening_examples(model: SASLMOmniModel, processor: OmniProcessor, speakers: SpeakerBank,
                       contexts: list[Example], sampling: SamplingConfig, seed: int, folder: Path,
                       tag: str) -> list[dict]:
    """Decode one rollout per context, and the context-free anchor's, to 24 kHz WAVs under `folder`."""
    out = []
    for context_free in (False, True):
        rollouts = sample_replies(model, processor, speakers, contexts, sampling, 1, seed, max(len(contexts), 1),
                                  context_free, progress=False)
        wavs = model.decode_codes([torch.tensor(codes, dtype=torch.long) for _, _, codes, _ in rollouts],
                                  [speakers[None]] * len(rollouts))
        for (ex, _, codes, _), wav in zip(rollouts, wavs):
            path = path_inside(folder, f"{tag}_{'anchor' if context_free else 'model'}_{ex.id}", suffix=".wav")
            write_wav(path, wav.numpy(), SAMPLE_RATE)
            out.append({"id": ex.id, "target": ex.labels["emotion"], "context": ex.labels["context"],
                        "reply_text": ex.reply_text, "user_text": ex.user_text,
                        "user_audio": str(ex.user_audio) if ex.user_audio else None, "anchor": context_free,
                        "wav": str(path), "codes": len(codes)})
    return out
