"""The weight average that distillation deploys (training/ema.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stylecast.training.ema import WeightAverage
from stylecast.training.presets import build_generator


def test_the_average_is_the_exponential_average_of_the_weights():
    model = nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.9, warmup=False)
    expected = [p.detach().clone() for p in model.parameters()]
    for _ in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update(model)
        expected = [0.9 * e + 0.1 * p.detach() for e, p in zip(expected, model.parameters(),
                                                                strict=True)]
    for got, want in zip(average.average.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want)
    assert int(average.updates) == 5


def test_warmup_follows_closely_at_first_then_reaches_the_decay():
    average = WeightAverage(nn.Linear(1, 1), decay=0.99)
    assert average.current_decay() == pytest.approx(2 / 11)
    average.updates.fill_(10_000)
    assert average.current_decay() == 0.99


def test_batchnorm_statistics_are_averaged_and_counters_copied():
    model = build_generator("nano").train()
    average = WeightAverage(model, decay=0.5, warmup=False)
    model(torch.rand(2, 3, 16, 16) * 2 - 1)  # updates the running statistics
    bn, averaged_bn = model.stem[1], average.average.stem[1]
    expected = 0.5 * averaged_bn.running_mean + 0.5 * bn.running_mean
    average.update(model)
    torch.testing.assert_close(averaged_bn.running_mean, expected)
    assert averaged_bn.num_batches_tracked == bn.num_batches_tracked == 1


def test_the_average_stays_frozen_and_in_eval_mode():
    average = WeightAverage(build_generator("nano"), decay=0.9).train()
    assert not average.average.training
    assert not any(p.requires_grad for p in average.parameters())
    assert set(average.state_dict()) >= {"updates", "average.stem.0.weight"}
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(1, 1), decay=1.0)
