"""Training: one trainer for every registered method, the published recipes, checkpoints, DDP."""

from .config import TrainConfig
from .trainer import FINAL, train

__all__ = ["FINAL", "TrainConfig", "train"]
