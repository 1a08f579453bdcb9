"""Fine-tuning settings as an application passes them: names and values checked without torch."""

import pytest

from medsam2.training.recipe import FineTuneSettings, SettingsError


def test_unset_values_follow_the_published_recipe_and_set_ones_are_typed():
    settings = FineTuneSettings.from_dict({"steps": 40, "lr_other": 1e-3, "seed": 2.0})
    assert (settings.steps, settings.lr_other, settings.seed, settings.num_frames) == (40, 1e-3, 2, 8)
    assert settings.optim_overrides() == {"lr_other": 1e-3}
    assert FineTuneSettings.from_dict(None) == FineTuneSettings()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 3}, "unknown setting 'epochs'"),
        ({"steps": 2.5}, "steps must be an integer"),
        ({"steps": True}, "steps must be an integer"),
        ({"lr_other": "fast"}, "lr_other must be a number"),
        ({"steps": 0}, "steps must lie in [1, 1000000]"),
        ({"ema_decay": 1.0}, "ema_decay must lie in [0.0, 0.99999]"),
    ],
)
def test_unknown_names_and_bad_values_are_refused_by_name(values, message):
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FineTuneSettings.from_dict(values)
