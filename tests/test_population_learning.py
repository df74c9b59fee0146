"""The population training engine learns: a real cell beats chance, the all-`none` cell cannot. A file of its
own so that it compiles with XLA's optimisations on (60 steps: unoptimised code would run slower than it
compiles faster), while test_population.py's exact checks compile with them off."""

import numpy as np

from jaxnas.models.nb201 import NB201Network
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.spaces import nb201


def test_training_learns_and_the_empty_cell_does_not(digits_8x8):
    net = NB201Network(channels=4, cells_per_stage=1, num_classes=10)
    trainer = PopulationTrainer(net, digits_8x8, TrainSettings(steps=60, batch_size=64), chunk_size=8)
    # code 0: the all-`none` cell, which cuts every path from input to output
    s = trainer.score(np.asarray(nb201.SPACE.decode(np.array([0, 6111]))), seed=0)
    assert s.valid_acc[1] > 0.5, s.valid_acc  # well above chance (10%) after 60 steps (accuracies are fractions)
    assert s.valid_acc[0] < 0.2, s.valid_acc
    assert s.train_loss[1, -5:].mean() < s.train_loss[1, :5].mean()
