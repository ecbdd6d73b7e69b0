"""Stage-3 rewards: named, weighted reward functions mixed into one utility, gated by WER."""

from .base import Reward, RewardInput, RewardNotApplicable, RewardResult
from .builtin import EmotionModelReward, F0VarianceReward, FunctionReward, RubricReward, import_function
from .config import RewardSpec, WERGateSection, build_rewards, check_rewards
from .utility import RewardUtility, UtilityFn, UtilityInput, Utilities, WERGate

__all__ = [
    "EmotionModelReward", "F0VarianceReward", "FunctionReward", "Reward", "RewardInput", "RewardNotApplicable",
    "RewardResult", "RewardSpec", "RewardUtility", "RubricReward", "UtilityFn", "UtilityInput", "Utilities",
    "WERGate", "WERGateSection", "build_rewards", "check_rewards", "import_function",
]
