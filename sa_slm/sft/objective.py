"""The stage-1/2 objective on the policy's teacher-forced output:

    L = codec CE + kl_weight * KL(intent posterior || prior) + text_loss_weight * reply-text CE

each term a mean over its own real positions (code steps, reply tokens, reply tokens + EOS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..bridge.vib import masked_mean
from ..modeling import SASLMOutput


def codec_cross_entropy(logits: torch.Tensor, codes: torch.Tensor, mask: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CE of (B, N, V) raw codec logits against (B, N) codes over the real steps `mask`, and the
    argmax accuracy over the same steps."""
    ce = nn.functional.cross_entropy(logits.float().transpose(1, 2), codes.clamp_min(0), reduction="none")
    n = mask.sum().clamp_min(1)
    accuracy = ((logits.argmax(-1) == codes) & mask).sum() / n
    return (ce * mask).sum() / n, accuracy


def reply_text_cross_entropy(logits: torch.Tensor, mask: torch.Tensor, reply_ids: torch.Tensor,
                             reply_lengths: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Thinker CE of the reply: (B, n_max + 1, V) logits predict g_0 .. g_{n-1} and then the EOS."""
    steps = logits.shape[1]
    targets = torch.cat([reply_ids, reply_ids.new_zeros(reply_ids.shape[0], 1)], dim=1)[:, :steps].clone()
    targets[torch.arange(len(reply_lengths)), reply_lengths] = eos_id
    ce = nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
    return (ce * mask).sum() / mask.sum().clamp_min(1)


@torch.no_grad()
def intent_statistics(out: SASLMOutput) -> dict[str, torch.Tensor]:
    """|mu|, posterior sigma and the step-to-step change of z over real reply tokens (vib_adaln only)."""
    if out.intent_mu is None:
        return {}
    mask, mu, z = out.reply_mask, out.intent_mu, out.intent_z
    m = mask[..., None].float()
    count = m.sum().clamp_min(1) * mu.shape[-1]
    pair = (mask[:, 1:] & mask[:, :-1])[..., None].float()
    delta = ((z[:, 1:] - z[:, :-1]).abs() * pair).sum() / (pair.sum().clamp_min(1) * mu.shape[-1])
    return {
        "intent_mu_abs": (mu.abs() * m).sum() / count,
        "intent_sigma": ((0.5 * out.intent_logvar).exp() * m).sum() / count,
        "intent_step_change": delta,
    }


@dataclass
class SFTLoss:
    loss: torch.Tensor  # the weighted total
    terms: dict[str, torch.Tensor]  # every term and statistic, for logging


def sft_loss(out: SASLMOutput, batch: dict, kl_weight: float, text_loss_weight: float = 0.0,
             eos_id: int | None = None) -> SFTLoss:
    """The SFT objective of one collated batch (`codes`, `reply_ids`, `reply_lengths`) and its output.

    The KL is the per-token KL the bridge reports (against its prior, conditioned on the previous
    sampled latent), averaged over real reply tokens; 0 in modes without a latent. The text CE needs
    `out.reply_text_logits` (forward with `with_text_logits=True`) and the Thinker's EOS id.
    """
    codec, accuracy = codec_cross_entropy(out.logits, batch["codes"].to(out.logits.device), out.mask)
    kl = masked_mean(out.intent_kl, out.reply_mask) if out.intent_kl is not None else codec.new_zeros(())
    loss = codec + kl_weight * kl
    terms = {"codec_loss": codec, "codec_accuracy": accuracy, "kl": kl}
    if text_loss_weight > 0:
        if out.reply_text_logits is None or eos_id is None:
            raise ValueError("the text loss needs forward(with_text_logits=True) and the Thinker's EOS id")
        device = out.reply_text_logits.device
        text = reply_text_cross_entropy(out.reply_text_logits, out.reply_text_mask, batch["reply_ids"].to(device),
                                        batch["reply_lengths"].to(device), eos_id)
        terms["text_loss"] = text
        loss = loss + text_loss_weight * text
    return SFTLoss(loss, {**terms, **intent_statistics(out)})
