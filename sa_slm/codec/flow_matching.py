"""Optional stage-0 objective on real speech: the frozen DiT's flow-matching loss through the codes.

The tokenizer's logits are quantised straight-through: the forward pass uses the one-hot argmax
code (the DiT sees exactly the code the tokenizer would emit, embedded with the DiT's own frozen
code table), the backward pass uses the softmax. So the codes the tokenizer picks are pushed towards
those from which the DiT resynthesises the input mel. The classification head *is* the quantiser,
with the DiT's embedding table as its frozen codebook, so CE and flow matching train one head.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


def straight_through(logits: torch.Tensor) -> torch.Tensor:
    """(…, V) logits → one-hot of the argmax in the forward pass, softmax gradient in the backward."""
    probs = logits.softmax(-1)
    hard = nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
    return hard + probs - probs.detach()


@contextmanager
def given_code_embeddings(dit: nn.Module, embeds: torch.Tensor):
    """Make the DiT's code-embedding layer return `embeds` (B, T, emb_dim), repeated per mel frame."""
    repeats = dit.text_embed.repeats

    def hook(module, args, output):
        return torch.repeat_interleave(embeds, repeats=repeats, dim=1)

    handle = dit.text_embed.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def flow_matching_loss(
    dit: nn.Module,
    logits: torch.Tensor,
    mel: torch.Tensor,
    cond: torch.Tensor,
    ref_mel: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rectified-flow loss of the frozen DiT for one clip.

    logits: (T, V) tokenizer logits; mel: (T * repeats, mel_dim) target log-mel of the same audio;
    cond: (1, enc_emb_dim) speaker vector; ref_mel: (1, F, mel_dim) the speaker's reference mel, as
    Token2Wav is conditioned when it speaks. Not the clip's own mel: the DiT pools its reference into
    one global vector (its ECAPA speaker encoder), so a clip's own reference would hand the DiT the
    clip's pitch, loudness and pace around the codes, and the codes would need to carry none of them.
    x_t = (1 - t) x0 + t x1, target velocity x1 - x0, mean squared error.
    """
    table = dit.text_embed.codec_embed.weight[: logits.shape[-1]]
    embeds = straight_through(logits.float()) @ table  # (T, emb_dim)
    x1 = mel[None].float()
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device) if generator else torch.randn_like(x1)
    t = torch.rand(1, generator=generator, device=x1.device) if generator else torch.rand(1, device=x1.device)
    x_t = (1 - t) * x0 + t * x1
    with given_code_embeddings(dit, embeds[None]):
        pred = dit(
            hidden_states=x_t,
            condition_vector=ref_mel.to(x1),
            speaker_embedding=cond.float().unsqueeze(1).repeat(1, x1.shape[1], 1),
            quantized_code=torch.zeros(1, logits.shape[0], dtype=torch.long, device=x1.device),
            time_step=t,
            apply_cfg=False,
        )
    return nn.functional.mse_loss(pred, x1 - x0)
