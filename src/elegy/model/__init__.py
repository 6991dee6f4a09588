from elegy.model.base import ModelBase
from elegy.model.model import Model
from elegy.model.steps import GradStep, PredStep, TestStep, TrainStep

__all__ = ["GradStep", "Model", "ModelBase", "PredStep", "TestStep", "TrainStep"]
