"""Trainers compute their objective on the `model` the Trainer passes: a re-wrapped policy (here a PEFT
LoRA adapter on the Talker) trains in stage 1 and stage 3, with gradients on the wrapped parameters."""

import pytest
import torch
from peft import LoraConfig, get_peft_model

from sa_slm import SASLM
from sa_slm.bridge import IntentBridgeConfig
from sa_slm.data import ExampleDataset, PromptCollator, TeacherForcingCollator, load_manifest
from sa_slm.paths import CORPUS_DIR
from sa_slm.rewards import UtilityInput, Utilities
from sa_slm.sft.trainer import SFTTrainer
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.training.config import TrainSection
from sa_slm.training.trainer_utils import training_arguments
from sa_slm.uapo.trainer import UAPOTrainer, frozen_reference

TALKER_ATTENTION = r"talker\.model\.layers\.\d+\.self_attn\.(q_proj|v_proj)"
# PEFT's get_peft_model reads transformers' deprecated `is_gradient_checkpointing` (not our code).
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def lora_policy(seed: int = 0):
    """A tiny policy with a LoRA adapter on the Talker's attention; everything else frozen."""
    torch.manual_seed(seed)
    saslm = SASLM.from_pretrained("tiny", device="cpu", bridge=IntentBridgeConfig(mode="vib_adaln", latent_dim=8,
                                                                                   vib_hidden=16))
    reference = frozen_reference(saslm.model)
    saslm.model.set_trainable(talker=False, bridge=False)
    wrapped = get_peft_model(saslm.model, LoraConfig(r=4, lora_alpha=8, target_modules=TALKER_ATTENTION))
    lora = {n: p for n, p in wrapped.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n for n in lora)
    return saslm, wrapped, reference, lora


def args(tmp_path, steps: int, batch: int):
    return training_arguments(TrainSection(learning_rate=1e-2, max_steps=steps, per_device_train_batch_size=batch,
                                           lr_scheduler_type="constant", save_steps=1000, logging_steps=1,
                                           report_to=[]), tmp_path, 0)


def _snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def test_stage1_trains_a_peft_wrapped_policy(tmp_path):
    saslm, wrapped, _, lora = lora_policy()
    before = _snapshot(wrapped)
    examples = load_manifest(CORPUS_DIR / "manifest_codes.jsonl")[:4]
    trainer = SFTTrainer(model=wrapped, args=args(tmp_path, 2, 4), train_dataset=ExampleDataset(examples),
                         data_collator=TeacherForcingCollator.for_model(saslm.model, saslm.processor, saslm.speakers),
                         param_groups={"speech": list(lora.values()), "llm": []}, llm_learning_rate=1e-4,
                         reply_eos_id=saslm.model.reply_eos_id)
    trainer.train()
    after = _snapshot(wrapped)
    moved = [n for n in lora if not torch.equal(before[n], after[n])]
    assert len(moved) == len(lora)  # every adapter matrix got a gradient and a step
    frozen = [n for n in before if n not in lora]
    assert all(torch.equal(before[n], after[n]) for n in frozen)  # the base weights did not move


def low_code_utility(batch: UtilityInput) -> Utilities:
    """Utility = the fraction of a clip's codes below 4224 (a synthetic, noise-free target)."""
    frac = lambda c: float((c < 4224).float().mean()) if c.numel() else 0.0  # noqa: E731
    K = len(batch.codes[0]) - 1
    policy = torch.tensor([[frac(c) for c in codes[:K]] for codes in batch.codes])
    anchor = torch.tensor([frac(codes[K]) for codes in batch.codes])
    return Utilities(policy, anchor, torch.ones_like(policy, dtype=torch.bool), torch.ones_like(anchor, dtype=torch.bool))


@pytest.mark.slow
def test_stage3_trains_a_peft_wrapped_policy(tmp_path):
    saslm, wrapped, reference, lora = lora_policy(seed=1)
    before = _snapshot(wrapped)
    examples = load_manifest(CORPUS_DIR / "manifest.jsonl")[:2]
    trainer = UAPOTrainer(model=wrapped, args=args(tmp_path, 2, 2), train_dataset=ExampleDataset(examples),
                          data_collator=PromptCollator(saslm.processor), reference=reference,
                          processor=saslm.processor, speakers=saslm.speakers, utility_fn=low_code_utility,
                          sampling=SamplingConfig(max_new_codes=12), num_samples=4, beta=1.0,
                          params=list(lora.values()))
    trainer.train()
    after = _snapshot(wrapped)
    assert all(not torch.equal(before[n], after[n]) for n in lora if "lora_B" in n)  # zero-init B moved
    assert all(torch.equal(before[n], after[n]) for n in before if n not in lora)
    # The reference is the unwrapped starting policy: no adapter, untouched.
    assert not any("lora_" in n for n, _ in reference.named_parameters())
