"""Tests of video_structure/presets.py: run configurations (model config plus CPU recipe), the
`paper` and `cpu` presets, misconfiguration, JSON (and legacy flat configs), command-line flags
and the generated docs/hyperparameters.md. The model's own config: tests/model/test_config.py."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from video_structure import presets
from video_structure.model import config as config_lib
from video_structure.recipes import presets as recipe_presets
from video_structure.recipes import settings as recipe_settings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEGACY_CONFIG = os.path.join(REPO_ROOT, "tests", "reference", "legacy_run", "config.json")
ALL_PRESETS = [(dataset, "paper") for dataset in config_lib.PAPER_PRESETS] + [
    (dataset, "cpu") for dataset in recipe_presets.CPU_PRESETS]
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("dataset, preset", ALL_PRESETS)
def test_every_preset_validates(dataset, preset):
  run_config = presets.get_config(dataset, preset)
  assert isinstance(run_config, presets.RunConfig)
  assert run_config.model.validate() is run_config.model
  assert run_config.model.dataset == dataset
  if preset == "paper":
    assert run_config.recipe is None
  else:
    assert run_config.recipe.validate() is run_config.recipe


def test_cpu_presets_cover_the_paper_datasets():
  assert set(recipe_presets.CPU_PRESETS) == set(config_lib.PAPER_PRESETS)
  assert len(ALL_PRESETS) == 8


@pytest.mark.parametrize("dataset", sorted(config_lib.PAPER_PRESETS))
def test_paper_preset_is_table_s1(dataset):
  assert presets.get_config(dataset, "paper") == presets.RunConfig(
      config_lib.paper_config(dataset), None)


@pytest.mark.parametrize("dataset", sorted(recipe_presets.CPU_PRESETS))
def test_cpu_preset_is_table_s1_with_its_changes_and_recipe(dataset):
  run_config = presets.get_config(dataset, "cpu")
  preset = recipe_presets.CPU_PRESETS[dataset]
  assert run_config.model == config_lib.paper_config(dataset, **preset["model"])
  assert run_config.recipe == recipe_settings.CpuRecipeConfig(**preset["recipe"])
  # The CPU budget shared by every dataset.
  model = run_config.model
  assert (model.initial_filters, model.batch_size, model.num_steps, model.rnn_units,
          model.num_samples, model.kl_anneal_steps) == (16, 8, 1000, 256, 20, 500)


def test_basketball_cpu_preset_values():
  run_config = presets.get_config("basketball", "cpu")
  model, recipe = run_config.model, run_config.recipe
  assert (model.num_keypoints, model.keypoint_width, model.separation_weight,
          model.dataset_config) == (24, 1.0, 1.0, "cpu")
  assert recipe == recipe_settings.CpuRecipeConfig(
      heatmap_bias_init=-4.0, heatmap_init_gain=10.0, presence_warmup_steps=300,
      sparsity_warmup_steps=400, moving_pixel_weight=20.0, moving_pixel_threshold=0.1,
      foreground_attention_weight=1.0, foreground_threshold=0.1, match_lighting=False,
      foreground_colour_weight=1.0, reseed_every_steps=100, reseed_until_step=700,
      reseed_distance=0.1, reseed_max_keypoints=4)


def test_one_cpu_recipe_and_one_rule_for_every_dataset():
  # No per-dataset tuning: the same recipe everywhere; the model differs from Table S1 by the
  # same changes, K = max(24, Table S1's K), and the generated datasets' `cpu` size.
  expected_keypoints = {"basketball": 24, "human36m": 48, "dmcs": 64, "video_folder": 24}
  recipes = {dataset: presets.get_config(dataset, "cpu").recipe
             for dataset in recipe_presets.CPU_PRESETS}
  assert all(recipe == recipes["basketball"] for recipe in recipes.values())
  for dataset, num_keypoints in expected_keypoints.items():
    model = presets.get_config(dataset, "cpu").model
    assert model.num_keypoints == num_keypoints, dataset
    assert (model.layers_per_scale, model.keypoint_width, model.separation_weight) == (
        1, 1.0, 1.0), dataset
    changed = {name for name, value in dataclasses.asdict(model).items()
               if value != getattr(config_lib.paper_config(dataset), name)}
    assert changed <= set(recipe_presets._CPU_MODEL) | {"num_keypoints", "dataset_config"}, (
        dataset, changed)


def test_recipe_argument_overrides_the_presets_choice():
  paper_with_recipe = presets.get_config("basketball", "paper", recipe="cpu")
  assert paper_with_recipe.model == config_lib.paper_config("basketball")
  assert paper_with_recipe.recipe == presets.get_config("basketball", "cpu").recipe
  cpu_without_recipe = presets.get_config("basketball", "cpu", recipe="none")
  assert cpu_without_recipe.model == presets.get_config("basketball", "cpu").model
  assert cpu_without_recipe.recipe is None
  assert presets.get_config("basketball", "paper", recipe="none").recipe is None


def test_overrides_go_to_the_model_or_the_recipe():
  run_config = presets.get_config("human36m", "cpu", num_keypoints=7, kl_beta=0.5,
                                  moving_pixel_weight=3.0, reseed_every_steps=10)
  assert (run_config.model.num_keypoints, run_config.model.kl_beta,
          run_config.model.prior_net_size) == (7, 0.5, 4)
  assert (run_config.recipe.moving_pixel_weight, run_config.recipe.reseed_every_steps,
          run_config.recipe.presence_warmup_steps) == (3.0, 10, 300)
  paper = presets.get_config("basketball", "paper", recipe="cpu", heatmap_init_gain=2.0)
  assert paper.recipe.heatmap_init_gain == 2.0


# Misconfiguration -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="mnist", preset="paper"), r"Unknown dataset 'mnist'"),
    (dict(dataset="ucf101", preset="cpu"), r"Unknown dataset 'ucf101'"),
    (dict(dataset="basketball", preset="gpu"), r"Unknown preset 'gpu'"),
    (dict(dataset="basketball", preset="paper", recipe="gpu"), r"Unknown recipe 'gpu'"),
    (dict(dataset="basketball", preset="cpu", recipe=""), r"Unknown recipe ''"),
    (dict(dataset="basketball", preset="paper", num_keypoint=3), r"unknown.*num_keypoint"),
    (dict(dataset="basketball", preset="paper", concentration_weight=0.0),
     r"unknown.*concentration_weight"),
    (dict(dataset="basketball", preset="cpu", keypoint_width_start=2.0),
     r"unknown.*keypoint_width_start"),
    # A recipe setting without a recipe.
    (dict(dataset="basketball", preset="paper", moving_pixel_weight=1.0),
     r"--moving_pixel_weight: CPU-recipe setting.*no recipe.*--recipe cpu"),
    (dict(dataset="basketball", preset="cpu", recipe="none", reseed_every_steps=5,
          heatmap_bias_init=-1.0),
     r"--heatmap_bias_init, --reseed_every_steps: CPU-recipe setting"),
    # Bad model values.
    (dict(dataset="basketball", preset="paper", num_keypoints=0), r"`num_keypoints`"),
    (dict(dataset="basketball", preset="cpu", batch_size=-8), r"`batch_size`"),
    (dict(dataset="basketball", preset="cpu", learning_rate=NAN), r"`learning_rate`"),
    (dict(dataset="dmcs", preset="paper", kl_beta=INF), r"`kl_beta`"),
    (dict(dataset="basketball", preset="cpu", dynamics="lstm"), r"`dynamics`"),
    (dict(dataset="basketball", preset="cpu", representation="pixels"), r"`representation`"),
    # Bad recipe values.
    (dict(dataset="basketball", preset="cpu", moving_pixel_weight=-1.0),
     r"`moving_pixel_weight` must be >= 0"),
    (dict(dataset="basketball", preset="cpu", heatmap_init_gain=0.0),
     r"`heatmap_init_gain` must be > 0"),
    (dict(dataset="human36m", preset="cpu", reseed_distance=NAN),
     r"`reseed_distance` must be a finite number"),
    (dict(dataset="basketball", preset="paper", recipe="cpu", foreground_threshold=INF),
     r"`foreground_threshold` must be a finite number"),
    (dict(dataset="basketball", preset="cpu", presence_warmup_steps=1.5),
     r"`presence_warmup_steps` must be of type int"),
], ids=lambda value: None if isinstance(value, (dict, str)) else value)
def test_get_config_rejects_bad_requests(kwargs, match):
  with pytest.raises(ValueError, match=match):
    presets.get_config(**kwargs)


BAD_RECIPE_VALUES = [
    ("presence_warmup_steps", -1), ("sparsity_warmup_steps", -1), ("moving_pixel_weight", -1.0),
    ("foreground_attention_weight", -1.0), ("foreground_colour_weight", -1.0),
    ("reseed_every_steps", -100), ("reseed_until_step", -1), ("reseed_max_keypoints", -1),
    ("heatmap_init_gain", 0.0), ("heatmap_init_gain", -10.0), ("moving_pixel_threshold", 0.0),
    ("foreground_threshold", 0.0), ("reseed_distance", 0.0), ("reseed_every_steps", 1.0),
    ("moving_pixel_weight", "20"), ("moving_pixel_weight", True), ("match_lighting", 1),
    ("match_lighting", "true"),
] + [
    (field.name, value) for field in dataclasses.fields(recipe_settings.CpuRecipeConfig)
    if field.type in (float, "float") for value in (NAN, INF, -INF)
]


@pytest.mark.parametrize("field, value", BAD_RECIPE_VALUES)
def test_recipe_validate_names_the_bad_setting(field, value):
  settings = dataclasses.replace(recipe_settings.CpuRecipeConfig(), **{field: value})
  with pytest.raises(ValueError, match=f"recipe: `{field}`"):
    settings.validate()


def test_every_recipe_setting_has_a_validation_case():
  bounded = {f.name for f in dataclasses.fields(recipe_settings.CpuRecipeConfig)}
  bounded -= {"heatmap_bias_init"}  # Any finite real number is a valid bias.
  assert bounded <= {field for field, value in BAD_RECIPE_VALUES
                     if not isinstance(value, float) or value in (0.0, -1.0, -10.0)}


def test_recipe_defaults_switch_everything_off():
  settings = recipe_settings.CpuRecipeConfig().validate()
  assert (settings.heatmap_bias_init, settings.heatmap_init_gain) == (0.0, 1.0)
  assert all(getattr(settings, name) == 0 for name in [
      "presence_warmup_steps", "sparsity_warmup_steps", "moving_pixel_weight",
      "foreground_attention_weight", "foreground_colour_weight", "reseed_every_steps",
      "reseed_until_step"])


def test_recipe_from_dict_rejects_unknown_settings():
  with pytest.raises(ValueError, match=r"my_run: unknown CPU-recipe setting\(s\) "
                                       r"\['concentration_weight'\]"):
    recipe_settings.CpuRecipeConfig.from_dict({"concentration_weight": 1.0}, source="my_run")


# JSON -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, preset", ALL_PRESETS)
def test_save_load_round_trip(tmp_path, dataset, preset):
  run_config = presets.get_config(dataset, preset, num_keypoints=5, mixed_precision=True)
  path = str(tmp_path / "config.json")
  presets.save_run_config(run_config, path)
  assert os.listdir(tmp_path) == ["config.json"]  # No temporary file left behind.
  with open(path) as f:
    stored = json.load(f)
  assert stored == run_config.to_dict()
  assert stored["format_version"] == presets.CONFIG_FORMAT_VERSION == 2
  assert (stored["recipe"] is None) == (preset == "paper")
  assert presets.load_run_config(path) == run_config


def test_load_missing_file_names_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing.json"):
    presets.load_run_config(str(tmp_path / "missing.json"))


def test_load_invalid_json_names_the_file(tmp_path):
  path = tmp_path / "broken.json"
  path.write_text('{"model": ')
  with pytest.raises(ValueError, match=r"broken\.json is not valid JSON"):
    presets.load_run_config(str(path))


@pytest.mark.parametrize("values, match", [
    ({"model": {"num_keypoints": 4}, "recipes": None}, r"unknown entries \['recipes'\]"),
    ({"model": {"num_keypoints": 4, "not_a_field": 1}}, r"old\.json.*not_a_field"),
    ({"model": {}, "recipe": {"moving_pixel_weight": -1.0}}, r"`moving_pixel_weight`"),
    ({"num_keypoints": 4, "not_a_field": 1}, r"old\.json.*not_a_field"),  # flat (legacy)
])
def test_load_with_bad_entries_names_the_problem(tmp_path, values, match):
  path = tmp_path / "old.json"
  path.write_text(json.dumps(values))
  with pytest.raises(ValueError, match=match):
    presets.load_run_config(str(path))


def test_legacy_flat_config_of_a_cpu_run_is_read():
  with open(LEGACY_CONFIG) as f:
    flat = json.load(f)
  run_config = presets.load_run_config(LEGACY_CONFIG)
  model_fields = {field.name for field in dataclasses.fields(config_lib.Config)}
  recipe_fields = {field.name for field in dataclasses.fields(recipe_settings.CpuRecipeConfig)}
  assert run_config.model.to_dict() == {k: v for k, v in flat.items() if k in model_fields}
  # A setting added after that run (match_lighting) takes its off default, as the run trained.
  assert run_config.recipe.to_dict() == dict(
      {k: v for k, v in flat.items() if k in recipe_fields}, match_lighting=False)
  assert set(flat) - model_fields - recipe_fields == {
      "concentration_weight", "foreground_attention_residual", "keypoint_width_anneal_steps",
      "keypoint_width_start"}


def _legacy_flat(dataset, preset, **changes):
  """The flat config.json that version 85e9fe4 wrote for a preset (removed settings no-op)."""
  run_config = presets.get_config(dataset, preset)
  recipe = run_config.recipe or recipe_settings.CpuRecipeConfig()
  flat = dict(run_config.model.to_dict(), **recipe.to_dict(), concentration_weight=0.0,
              foreground_attention_residual=False, keypoint_width_anneal_steps=0,
              keypoint_width_start=run_config.model.keypoint_width)
  flat.update(changes)
  return flat


@pytest.mark.parametrize("dataset, preset", ALL_PRESETS)
def test_legacy_flat_config_gives_the_presets_run_config(dataset, preset):
  expected = presets.get_config(dataset, preset)
  assert presets.RunConfig.from_dict(_legacy_flat(dataset, preset)) == expected


def test_legacy_flat_config_without_the_removed_settings_is_read():
  flat = _legacy_flat("basketball", "paper")
  for name in ("concentration_weight", "foreground_attention_residual",
               "keypoint_width_anneal_steps", "keypoint_width_start"):
    del flat[name]
  assert presets.RunConfig.from_dict(flat) == presets.get_config("basketball", "paper")


@pytest.mark.parametrize("changes, match", [
    (dict(concentration_weight=0.5), r"old_run: this run uses `concentration_weight`.*85e9fe4"),
    (dict(foreground_attention_residual=True), r"`foreground_attention_residual`.*85e9fe4"),
    (dict(keypoint_width_anneal_steps=100), r"`keypoint_width_anneal_steps`.*85e9fe4"),
    (dict(keypoint_width_start=3.0), r"anneals the keypoint width.*85e9fe4"),
])
def test_legacy_flat_config_using_a_removed_setting_is_refused(changes, match):
  with pytest.raises(ValueError, match=match):
    presets.RunConfig.from_dict(_legacy_flat("basketball", "cpu", **changes), source="old_run")


# Command line ---------------------------------------------------------------------------------

def _parser():
  return presets.add_config_arguments(argparse.ArgumentParser())


def test_command_line_overrides():
  args = _parser().parse_args(["--num_keypoints", "7", "--mixed_precision", "false",
                               "--moving_pixel_weight", "2.5", "--recipe", "cpu"])
  overrides = presets.overrides_from_args(args)
  assert overrides == {"num_keypoints": 7, "mixed_precision": False,
                       "moving_pixel_weight": 2.5}
  assert type(overrides["num_keypoints"]) is int
  assert args.recipe == "cpu"
  run_config = presets.get_config("basketball", "paper", recipe=args.recipe, **overrides)
  assert run_config.model.num_keypoints == 7 and run_config.model.mixed_precision is False
  assert run_config.recipe.moving_pixel_weight == 2.5


@pytest.mark.parametrize("flag, text, expected", [
    ("mixed_precision", "true", True), ("mixed_precision", "0", False),
    ("mixed_precision", "YES", True), ("learning_rate", "5e-4", 5e-4),
    ("dynamics", "rnn", "rnn"), ("kl_anneal_steps", "100", 100), ("keypoint_width", "2", 2.0),
    ("heatmap_bias_init", "-4", -4.0), ("reseed_every_steps", "50", 50),
])
def test_command_line_types(flag, text, expected):
  overrides = presets.overrides_from_args(_parser().parse_args([f"--{flag}", text]))
  assert overrides == {flag: expected}
  assert type(overrides[flag]) is type(expected)


def test_no_flags_means_no_overrides():
  args = _parser().parse_args([])
  assert presets.overrides_from_args(args) == {}
  assert args.recipe is None


@pytest.mark.parametrize("argv", [["--mixed_precision", "maybe"], ["--num_keypoints", "7.5"],
                                  ["--num_keypointz", "7"], ["--recipe", "gpu"],
                                  ["--reseed_every_steps", "0.5"]])
def test_bad_command_line_values_are_rejected(argv, capsys):
  with pytest.raises(SystemExit):
    _parser().parse_args(argv)
  assert argv[0].lstrip("-") in capsys.readouterr().err


def test_every_field_and_setting_has_a_flag_but_dataset():
  # The scripts define `--dataset` themselves (it selects the preset).
  flags = {option for action in _parser()._actions for option in action.option_strings}
  expected = {f"--{f.name}" for f in dataclasses.fields(config_lib.Config)}
  expected |= {f"--{f.name}" for f in dataclasses.fields(recipe_settings.CpuRecipeConfig)}
  assert flags - {"-h", "--help", "--recipe"} == expected - {"--dataset"}


# docs/hyperparameters.md ----------------------------------------------------------------------

def test_hyperparameter_docs_are_up_to_date():
  path = os.path.join(REPO_ROOT, "docs", "hyperparameters.md")
  with open(path) as f:
    lines = f.read().splitlines(keepends=True)
  starts = [i for i, line in enumerate(lines) if line.startswith("| hyperparameter")]
  assert starts, f"{path} has no table (a line starting with '| hyperparameter')"
  documented_table = "".join(lines[starts[0]:])
  assert documented_table == presets.markdown_table(), (
      f"{path} is stale: regenerate the table with `python -m video_structure.presets "
      f"--markdown`")


def test_markdown_table_lists_every_field_setting_and_preset():
  table = presets.markdown_table().splitlines()
  columns = ("basketball paper | basketball cpu | human36m paper | human36m cpu | dmcs paper | "
             "dmcs cpu | video_folder paper | video_folder cpu |")
  assert table[0] == "| hyperparameter | meaning | " + columns
  num_fields = len(dataclasses.fields(config_lib.Config))
  num_settings = len(dataclasses.fields(recipe_settings.CpuRecipeConfig))
  recipe_header = 2 + num_fields + 3
  assert table[recipe_header] == "| setting | meaning | " + columns
  assert len(table) == recipe_header + 2 + num_settings
  row = next(line for line in table if line.startswith("| `num_keypoints`"))
  assert row.endswith("| 12 | 24 | 48 | 48 | 64 | 64 | 12 | 24 |")
  # Paper presets have no recipe; every CPU preset has the same one.
  for name, on in [("foreground_attention_weight", "1.0"), ("foreground_colour_weight", "1.0"),
                   ("reseed_every_steps", "100"), ("reseed_until_step", "700")]:
    row = next(line for line in table if line.startswith(f"| `{name}`"))
    assert row.endswith(f"| — | {on} | — | {on} | — | {on} | — | {on} |"), row


@pytest.mark.slow
def test_module_prints_the_markdown_table():
  result = subprocess.run([sys.executable, "-m", "video_structure.presets", "--markdown"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True)
  assert result.stdout == presets.markdown_table()


@pytest.mark.slow
def test_presets_imports_no_training_evaluation_or_tensorflow():
  code = ("import json, sys; import video_structure.presets; "
          "print(json.dumps(sorted(sys.modules)))")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
  modules = json.loads(result.stdout.strip().splitlines()[-1])
  assert "video_structure.presets" in modules
  assert "tensorflow" not in modules and "keras" not in modules  # The command line stays fast.
  for forbidden in ("training", "evaluation", "downstream", "cli", "data"):
    assert not [m for m in modules if m.startswith(f"video_structure.{forbidden}")], modules
