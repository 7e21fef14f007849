"""Tests of video_structure/model/config.py: the paper's presets (Table S1), validation of every
field and `from_dict`. Run configurations (presets with the CPU recipe, JSON, command line,
docs): tests/test_presets.py."""

import argparse
import dataclasses
import math

import pytest

from video_structure import presets
from video_structure.model import config as config_lib


def test_preset_list_covers_the_paper_datasets():
  assert set(config_lib.PAPER_PRESETS) == {"basketball", "human36m", "dmcs", "video_folder"}


@pytest.mark.parametrize("dataset", sorted(config_lib.PAPER_PRESETS))
def test_every_paper_preset_validates(dataset):
  config = config_lib.paper_config(dataset)
  assert config.validate() is config
  assert config.dataset == dataset
  assert config.sequence_length == config.observed_steps + config.predicted_steps == 16


# Table S1 (paper) plus the shared values of S1.2 / S1.3.
TABLE_S1 = {
    "basketball": dict(num_keypoints=12, sparsity_weight=0.1, separation_weight=0.1,
                       separation_sigma=0.02, latent_size=16, kl_beta=0.01, prior_net_size=16,
                       layers_per_scale=1, action_size=0),
    "human36m": dict(num_keypoints=48, sparsity_weight=0.01, separation_weight=0.02,
                     separation_sigma=0.002, latent_size=16, kl_beta=0.01, prior_net_size=4,
                     layers_per_scale=2, action_size=0),
    "dmcs": dict(num_keypoints=64, sparsity_weight=5.0, separation_weight=0.1,
                 separation_sigma=0.02, latent_size=128, kl_beta=0.003, prior_net_size=16,
                 layers_per_scale=1, action_size=6),
}
SHARED_PAPER_VALUES = dict(
    batch_size=32, learning_rate=1e-3, observed_steps=8, predicted_steps=8, keypoint_width=1.5,
    posterior_net_size=128, decoder_net_size=128, rnn_units=512, num_samples=50,
    num_steps=100000, learning_rate_decay_steps=30000, kl_anneal_steps=25000,
    scheduled_sampling_observed=1.0, scheduled_sampling_predicted=0.5,
    scheduled_sampling_ramp_steps=100000, weight_decay=1e-4, image_size=64, heatmap_size=16,
    initial_filters=32, clipnorm=10.0, dynamics="vrnn", representation="keypoints",
    supervised_weight=0.0, mixed_precision=False, dataset_config="paper")


@pytest.mark.parametrize("dataset", sorted(TABLE_S1))
def test_paper_presets_match_table_s1(dataset):
  config = config_lib.paper_config(dataset)
  expected = dict(SHARED_PAPER_VALUES, **TABLE_S1[dataset])
  actual = {name: getattr(config, name) for name in expected}
  assert actual == expected


def test_video_folder_preset_is_basketballs_with_its_own_data():
  folder = config_lib.paper_config("video_folder").to_dict()
  basketball = config_lib.paper_config("basketball").to_dict()
  differences = {name for name in folder if folder[name] != basketball[name]}
  assert differences == {"dataset", "dataset_config"}
  assert folder["dataset_config"] == "default"


def test_overrides_apply_on_top_of_a_preset():
  config = config_lib.paper_config("human36m", num_keypoints=7, kl_beta=0.5)
  assert (config.num_keypoints, config.kl_beta, config.prior_net_size) == (7, 0.5, 4)


@pytest.mark.parametrize("dataset, overrides, match", [
    ("mnist", {}, r"Unknown dataset 'mnist'"),
    ("basketball", dict(num_keypoint=3), r"preset basketball/paper: unknown.*num_keypoint"),
    ("basketball", dict(num_keypoints=0), r"`num_keypoints`"),
])
def test_paper_config_rejects_bad_requests(dataset, overrides, match):
  with pytest.raises(ValueError, match=match):
    config_lib.paper_config(dataset, **overrides)


def test_the_model_config_has_no_recipe_settings():
  names = {field.name for field in dataclasses.fields(config_lib.Config)}
  assert not names & {"heatmap_bias_init", "heatmap_init_gain", "presence_warmup_steps",
                      "sparsity_warmup_steps", "moving_pixel_weight", "foreground_attention_weight",
                      "foreground_colour_weight", "reseed_every_steps", "concentration_weight",
                      "keypoint_width_start", "keypoint_width_anneal_steps",
                      "foreground_attention_residual"}


# Validation -----------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
BAD_VALUES = [
    # Sizes and counts that must be positive.
    ("image_size", 0), ("image_size", -64), ("observed_steps", 0), ("num_keypoints", 0),
    ("num_keypoints", -3), ("heatmap_size", 0), ("initial_filters", 0), ("rnn_units", 0),
    ("latent_size", 0), ("prior_net_size", 0), ("posterior_net_size", 0),
    ("decoder_net_size", 0), ("num_samples", 0), ("batch_size", 0), ("batch_size", -2),
    ("num_steps", 0), ("learning_rate_decay_steps", 0), ("checkpoint_every_steps", 0),
    ("log_every_steps", 0), ("image_summary_every_steps", 0),
    # Counts and weights that must be non-negative.
    ("predicted_steps", -1), ("layers_per_scale", -1), ("layers_per_scale", 0),
    ("weight_decay", -1e-4), ("sparsity_weight", -0.1), ("separation_weight", -0.1),
    ("kl_beta", -0.01), ("kl_anneal_steps", -1), ("scheduled_sampling_ramp_steps", -1),
    ("action_size", -1), ("num_eval_sequences", -1), ("supervised_weight", -1.0),
    # Widths and rates that must be positive.
    ("keypoint_width", 0.0), ("keypoint_width", -1.5), ("separation_sigma", 0.0),
    ("learning_rate", 0.0), ("learning_rate", -1e-3), ("clipnorm", 0.0),
    # Probabilities.
    ("scheduled_sampling_observed", 1.5), ("scheduled_sampling_predicted", -0.1),
    # Choices.
    ("representation", "pixels"), ("representation", ""), ("dynamics", "lstm"),
    # The image must halve down to the heatmap.
    ("image_size", 60), ("image_size", 48), ("image_size", 8),
] + [
    # NaN and infinities, in every float field.
    (field.name, value) for field in dataclasses.fields(config_lib.Config)
    if field.type in (float, "float") for value in (NAN, INF, -INF)
]


@pytest.mark.parametrize("field, value", BAD_VALUES)
def test_validate_names_the_bad_field(field, value):
  config = dataclasses.replace(config_lib.paper_config("basketball"), **{field: value})
  with pytest.raises(ValueError, match=f"`{field}`"):
    config.validate()


FLOAT_FIELDS = [field.name for field in dataclasses.fields(config_lib.Config)
                if field.type in (float, "float")]


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_non_finite_floats_are_refused_naming_the_flag(field, value):
  config = dataclasses.replace(config_lib.paper_config("basketball"), **{field: value})
  with pytest.raises(ValueError) as error:
    config.validate()
  assert str(error.value) == (f"config: `{field}` must be a finite number, got {value!r}; give "
                              f"--{field} a finite value.")


def test_non_finite_flags_are_refused_from_the_command_line():
  # `--kl_beta nan` parses as a float; the preset's validation refuses it.
  parser = presets.add_config_arguments(argparse.ArgumentParser())
  for flag, kind in [("kl_beta", "config"), ("learning_rate", "config"),
                     ("reseed_distance", "recipe"), ("heatmap_bias_init", "recipe")]:
    for text in ("nan", "inf", "-inf"):
      overrides = presets.overrides_from_args(parser.parse_args([f"--{flag}={text}"]))
      with pytest.raises(ValueError) as error:
        presets.get_config("basketball", "cpu", **overrides)
      assert str(error.value) == (f"{kind}: `{flag}` must be a finite number, got "
                                  f"{float(text)!r}; give --{flag} a finite value.")


@pytest.mark.parametrize("field, value", [("mixed_precision", "false"), ("num_keypoints", 2.5),
                                          ("num_keypoints", "12"), ("num_keypoints", True),
                                          ("learning_rate", "1e-3"), ("dynamics", None),
                                          ("seed", 1.0)])
def test_from_dict_rejects_wrongly_typed_values(field, value):
  values = dict(config_lib.paper_config("basketball").to_dict(), **{field: value})
  with pytest.raises(ValueError, match=f"`{field}`.*must be of type"):
    config_lib.Config.from_dict(values)


def test_an_integer_is_a_valid_float():
  config = config_lib.Config.from_dict({"clipnorm": 10, "learning_rate": 1})
  assert (config.clipnorm, config.learning_rate) == (10, 1)


def test_every_numeric_field_has_a_validation_case():
  numeric = {f.name for f in dataclasses.fields(config_lib.Config)
             if f.type in (int, float, "int", "float") and f.name != "seed"}
  # A finite bad value for each (the NaN / infinity cases are generated for every float field).
  assert numeric <= {field for field, value in BAD_VALUES
                     if not isinstance(value, float) or math.isfinite(value)}


def test_from_dict_rejects_unknown_keys():
  values = config_lib.paper_config("basketball").to_dict()
  values["num_keypoint"] = 3
  values["learningrate"] = 1.0
  with pytest.raises(ValueError, match=r"my_run.*unknown.*\['learningrate', 'num_keypoint'\]"):
    config_lib.Config.from_dict(values, source="my_run")


def test_from_dict_validates():
  with pytest.raises(ValueError, match="`batch_size`"):
    config_lib.Config.from_dict({"batch_size": 0})


def test_to_dict_from_dict_round_trip():
  config = config_lib.paper_config("dmcs", num_keypoints=5, mixed_precision=True)
  assert config_lib.Config.from_dict(config.to_dict()) == config


def test_every_field_is_documented():
  for field in dataclasses.fields(config_lib.Config):
    assert field.metadata.get("doc"), field.name
