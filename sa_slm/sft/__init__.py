"""Stages 1–2: supervised fine-tuning of the Talker and the intent bridge (+ last Thinker layers)."""
