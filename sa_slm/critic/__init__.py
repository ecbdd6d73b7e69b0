"""The rubric critic: the model listens to a spoken reply and scores it, read from answer-token logits."""

from .critic import ClipScore, CriticScores, RubricCritic, expected_scores
from .rubric import Rubric, RubricError, load_rubric

__all__ = ["ClipScore", "CriticScores", "RubricCritic", "expected_scores", "Rubric", "RubricError", "load_rubric"]
