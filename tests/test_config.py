"""Tests of video_structure/config.py: presets (Table S1), validation, JSON, command line and the
generated docs/hyperparameters.md."""

import argparse
import dataclasses
import json
import os

import pytest

from video_structure import config as config_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ALL_PRESETS = [(dataset, "paper") for dataset in config_lib.PAPER_PRESETS] + [
    (dataset, "cpu") for dataset in config_lib.CPU_PRESETS]


@pytest.mark.parametrize("dataset, preset", ALL_PRESETS)
def test_every_preset_validates(dataset, preset):
  config = config_lib.get_config(dataset, preset)
  assert config.validate() is config
  assert config.dataset == dataset
  assert config.sequence_length == config.observed_steps + config.predicted_steps


def test_preset_list_covers_the_paper_datasets():
  assert set(config_lib.PAPER_PRESETS) == {"basketball", "human36m", "dmcs", "video_folder"}
  assert set(config_lib.CPU_PRESETS) == set(config_lib.PAPER_PRESETS)
  assert ("basketball", "cpu") in ALL_PRESETS


# Table S1 (paper) plus the shared values of S1.2 / S1.3.
TABLE_S1 = {
    "basketball": dict(num_keypoints=12, sparsity_weight=0.1, separation_weight=0.1,
                       separation_sigma=0.02, latent_size=16, kl_beta=0.01, prior_net_size=16,
                       layers_per_scale=1),
    "human36m": dict(num_keypoints=48, sparsity_weight=0.01, separation_weight=0.02,
                     separation_sigma=0.002, latent_size=16, kl_beta=0.01, prior_net_size=4,
                     layers_per_scale=2),
    "dmcs": dict(num_keypoints=64, sparsity_weight=5.0, separation_weight=0.1,
                 separation_sigma=0.02, latent_size=128, kl_beta=0.003, prior_net_size=16,
                 layers_per_scale=1),
}
SHARED_PAPER_VALUES = dict(
    batch_size=32, learning_rate=1e-3, observed_steps=8, predicted_steps=8, keypoint_width=1.5,
    posterior_net_size=128, decoder_net_size=128, rnn_units=512, num_samples=50,
    num_steps=100000, learning_rate_decay_steps=30000, kl_anneal_steps=25000,
    scheduled_sampling_observed=1.0, scheduled_sampling_predicted=0.5,
    weight_decay=1e-4, image_size=64, heatmap_size=16, initial_filters=32, clipnorm=10.0,
    dynamics="vrnn", mixed_precision=False)


@pytest.mark.parametrize("dataset", sorted(TABLE_S1))
def test_paper_presets_match_table_s1(dataset):
  config = config_lib.get_config(dataset, "paper")
  expected = dict(SHARED_PAPER_VALUES, **TABLE_S1[dataset])
  actual = {name: getattr(config, name) for name in expected}
  assert actual == expected


def test_overrides_apply_on_top_of_a_preset():
  config = config_lib.get_config("human36m", "paper", num_keypoints=7, kl_beta=0.5)
  assert (config.num_keypoints, config.kl_beta, config.prior_net_size) == (7, 0.5, 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="mnist", preset="paper"), r"Unknown dataset 'mnist'"),
    (dict(dataset="basketball", preset="gpu"), r"Unknown preset 'gpu'"),
    (dict(dataset="ucf101", preset="cpu"), r"Unknown dataset 'ucf101'"),
    (dict(dataset="basketball", preset="paper", num_keypoint=3), r"unknown.*num_keypoint"),
    (dict(dataset="basketball", preset="paper", num_keypoints=0), r"`num_keypoints`"),
])
def test_get_config_rejects_bad_requests(kwargs, match):
  with pytest.raises(ValueError, match=match):
    config_lib.get_config(**kwargs)


# Validation -----------------------------------------------------------------------------------

BAD_VALUES = [
    ("image_size", 0), ("observed_steps", 0), ("num_keypoints", 0), ("num_keypoints", -3),
    ("heatmap_size", 0), ("initial_filters", 0), ("rnn_units", 0), ("latent_size", 0),
    ("prior_net_size", 0), ("posterior_net_size", 0), ("decoder_net_size", 0),
    ("num_samples", 0), ("batch_size", 0), ("num_steps", 0), ("learning_rate_decay_steps", 0),
    ("checkpoint_every_steps", 0), ("log_every_steps", 0), ("image_summary_every_steps", 0),
    ("predicted_steps", -1), ("layers_per_scale", -1), ("layers_per_scale", 0),
    ("weight_decay", -1e-4), ("sparsity_weight", -0.1), ("sparsity_warmup_steps", -1),
    ("separation_weight", -0.1), ("kl_beta", -0.01), ("kl_anneal_steps", -1),
    ("scheduled_sampling_ramp_steps", -1), ("action_size", -1),
    ("keypoint_width_anneal_steps", -1), ("num_eval_sequences", -1),
    ("presence_warmup_steps", -1), ("heatmap_init_gain", 0.0),
    ("moving_pixel_weight", -1.0), ("moving_pixel_threshold", 0.0),
    ("foreground_attention_weight", -1.0), ("foreground_threshold", 0.0),
    ("concentration_weight", -0.5), ("foreground_colour_weight", -1.0),
    ("reseed_every_steps", -100), ("reseed_until_step", -1), ("reseed_max_keypoints", -1),
    ("reseed_distance", 0.0),
    ("keypoint_width", 0.0), ("keypoint_width_start", -1.0), ("separation_sigma", 0.0),
    ("learning_rate", 0.0), ("clipnorm", 0.0), ("clipnorm", float("nan")),
    ("scheduled_sampling_observed", 1.5), ("scheduled_sampling_predicted", -0.1),
    ("supervised_weight", -1.0), ("representation", "pixels"),
    ("scheduled_sampling_predicted", float("nan")), ("dynamics", "lstm"),
    ("image_size", 60), ("image_size", 48), ("image_size", 8),
]


@pytest.mark.parametrize("field, value", BAD_VALUES)
def test_validate_names_the_bad_field(field, value):
  config = dataclasses.replace(config_lib.get_config("basketball", "paper"), **{field: value})
  with pytest.raises(ValueError, match=f"`{field}`"):
    config.validate()


@pytest.mark.parametrize("field, value", [("mixed_precision", "false"), ("num_keypoints", 2.5),
                                          ("num_keypoints", "12")])
def test_from_dict_rejects_wrongly_typed_values(field, value):
  values = dict(config_lib.get_config("basketball", "paper").to_dict(), **{field: value})
  with pytest.raises(ValueError, match=f"`{field}`"):
    config_lib.Config.from_dict(values)


def test_every_numeric_field_has_a_validation_case():
  numeric = {f.name for f in dataclasses.fields(config_lib.Config)
             if f.type in (int, float) and f.name != "seed"}
  numeric -= {"heatmap_bias_init"}  # any real number is a valid bias
  assert numeric <= {field for field, _ in BAD_VALUES}


def test_from_dict_rejects_unknown_keys():
  values = config_lib.get_config("basketball", "paper").to_dict()
  values["num_keypoint"] = 3
  values["learningrate"] = 1.0
  with pytest.raises(ValueError, match=r"my_run.*unknown.*\['learningrate', 'num_keypoint'\]"):
    config_lib.Config.from_dict(values, source="my_run")


def test_from_dict_validates():
  with pytest.raises(ValueError, match="`batch_size`"):
    config_lib.Config.from_dict({"batch_size": 0})


def test_every_field_is_documented():
  for field in dataclasses.fields(config_lib.Config):
    assert field.metadata.get("doc"), field.name


# JSON -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, preset", ALL_PRESETS)
def test_save_load_round_trip(tmp_path, dataset, preset):
  config = config_lib.get_config(dataset, preset, num_keypoints=5, mixed_precision=True)
  path = str(tmp_path / "config.json")
  config.save(path)
  assert not os.path.exists(path + ".tmp")
  with open(path) as f:
    assert json.load(f) == config.to_dict()
  assert config_lib.Config.load(path) == config


def test_load_missing_file_names_the_path(tmp_path):
  path = str(tmp_path / "missing.json")
  with pytest.raises(FileNotFoundError, match="missing.json"):
    config_lib.Config.load(path)


def test_load_with_unknown_key_names_the_file(tmp_path):
  path = tmp_path / "old.json"
  path.write_text(json.dumps({"num_keypoints": 4, "not_a_field": 1}))
  with pytest.raises(ValueError, match=r"old\.json.*not_a_field"):
    config_lib.Config.load(str(path))


# Command line ---------------------------------------------------------------------------------

def _parser():
  return config_lib.add_config_arguments(argparse.ArgumentParser())


def test_command_line_overrides():
  args = _parser().parse_args(["--num_keypoints", "7", "--mixed_precision", "false"])
  overrides = config_lib.overrides_from_args(args)
  assert overrides == {"num_keypoints": 7, "mixed_precision": False}
  assert type(overrides["num_keypoints"]) is int
  config = config_lib.get_config("basketball", "cpu", **overrides)
  assert config.num_keypoints == 7 and config.mixed_precision is False


@pytest.mark.parametrize("flag, text, expected", [
    ("mixed_precision", "true", True), ("mixed_precision", "0", False),
    ("mixed_precision", "YES", True), ("learning_rate", "5e-4", 5e-4),
    ("dynamics", "rnn", "rnn"), ("kl_anneal_steps", "100", 100), ("keypoint_width", "2", 2.0),
])
def test_command_line_types(flag, text, expected):
  overrides = config_lib.overrides_from_args(_parser().parse_args([f"--{flag}", text]))
  assert overrides == {flag: expected}
  assert type(overrides[flag]) is type(expected)


def test_no_flags_means_no_overrides():
  assert config_lib.overrides_from_args(_parser().parse_args([])) == {}


@pytest.mark.parametrize("argv", [["--mixed_precision", "maybe"], ["--num_keypoints", "7.5"],
                                  ["--num_keypointz", "7"]])
def test_bad_command_line_values_are_rejected(argv, capsys):
  with pytest.raises(SystemExit):
    _parser().parse_args(argv)
  assert argv[0].lstrip("-") in capsys.readouterr().err


def test_dataset_is_not_a_hyperparameter_flag():
  # The scripts define `--dataset` themselves (it selects the preset).
  flags = {option for action in _parser()._actions for option in action.option_strings}
  assert "--dataset" not in flags
  assert {f"--{f.name}" for f in dataclasses.fields(config_lib.Config)} - flags == {"--dataset"}


# docs/hyperparameters.md ----------------------------------------------------------------------

def test_hyperparameter_docs_are_up_to_date():
  path = os.path.join(REPO_ROOT, "docs", "hyperparameters.md")
  with open(path) as f:
    lines = f.read().splitlines(keepends=True)
  starts = [i for i, line in enumerate(lines) if line.startswith("| hyperparameter")]
  assert starts, f"{path} has no table (a line starting with '| hyperparameter')"
  documented_table = "".join(lines[starts[0]:])
  assert documented_table == config_lib.markdown_table(), (
      f"{path} is stale: regenerate the table with `python -m video_structure.config "
      f"--markdown`")


def test_markdown_table_lists_every_field_and_preset():
  table = config_lib.markdown_table().splitlines()
  header = table[0]
  assert header == ("| hyperparameter | meaning | basketball paper | basketball cpu | "
                    "human36m paper | human36m cpu | dmcs paper | dmcs cpu | video_folder paper "
                    "| video_folder cpu |")
  assert len(table) == 2 + len(dataclasses.fields(config_lib.Config))
  row = next(line for line in table if line.startswith("| `num_keypoints`"))
  assert row.endswith("| 12 | 24 | 48 | 48 | 64 | 64 | 12 | 12 |")
  # The foreground attention, the foreground colours and re-seeding were measured on Basketball
  # only; the other CPU presets keep them off.
  for name, on in [("foreground_attention_weight", "1.0"), ("foreground_colour_weight", "1.0"),
                   ("reseed_every_steps", "100"), ("reseed_until_step", "700")]:
    off = "0.0" if "." in on else "0"
    row = next(line for line in table if line.startswith(f"| `{name}`"))
    assert row.endswith(f"| {off} | {on} | {off} | {off} | {off} | {off} | {off} | {off} |"), row
