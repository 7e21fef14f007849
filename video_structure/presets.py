"""A run's configuration: the model's hyperparameters plus, optionally, the CPU recipe.

  get_config("basketball", "cpu", num_keypoints=16)   # -> RunConfig(model=Config, recipe=...)

Presets:
  * `paper`: Table S1 (`model.config.PAPER_PRESETS`; GPU budget: batch 32, 100k steps), no
    recipe.
  * `cpu`: sized to train in minutes on a 2-core CPU and still discover the objects
    (`recipes.presets.CPU_PRESETS`; docs/cpu_preset.md).
Overrides are flat keyword arguments (or `--<name>` flags): model fields and recipe settings
alike. A run directory stores its RunConfig as `config.json` (`save_run_config`); run
directories written before the recipe was split from the model config (one flat dict) are
read by `load_run_config` too. `python -m video_structure.presets --markdown` prints the table
of docs/hyperparameters.md.
"""

import argparse
import dataclasses
import json
import os
import sys
from typing import Optional

from video_structure import io_utils
from video_structure.model import config as config_lib
from video_structure.recipes import settings as recipe_settings
from video_structure.recipes import presets as recipe_presets

Config = config_lib.Config
CpuRecipeConfig = recipe_settings.CpuRecipeConfig
PRESETS = ("paper", "cpu")
RECIPES = ("none", "cpu")
MODEL_VARIANTS = config_lib.MODEL_VARIANTS
variant_overrides = config_lib.variant_overrides
CONFIG_FORMAT_VERSION = 2

_MODEL_FIELDS = {field.name: field for field in dataclasses.fields(Config)}
_RECIPE_FIELDS = {field.name: field for field in dataclasses.fields(CpuRecipeConfig)}
# Settings of the flat config.json of runs written before the recipe had its own config, that
# no preset used and that were removed; a legacy run is read if they hold these no-op values.
_REMOVED_SETTINGS = {"concentration_weight": 0.0, "foreground_attention_residual": False,
                     "keypoint_width_anneal_steps": 0}


@dataclasses.dataclass
class RunConfig:
  """What a training run is: the model's `Config` and the CPU recipe's settings (or None)."""
  model: Config
  recipe: Optional[CpuRecipeConfig] = None

  def to_dict(self):
    return {"format_version": CONFIG_FORMAT_VERSION, "model": self.model.to_dict(),
            "recipe": None if self.recipe is None else self.recipe.to_dict()}

  @classmethod
  def from_dict(cls, values, source="config"):
    """Reads `to_dict`'s format, or the flat dict of runs written before (see module doc)."""
    if "model" in values:
      unknown = sorted(set(values) - {"format_version", "model", "recipe"})
      if unknown:
        raise ValueError(f"{source}: unknown entries {unknown}.")
      recipe = values.get("recipe")
      return cls(Config.from_dict(values["model"], source),
                 None if recipe is None else CpuRecipeConfig.from_dict(recipe, source))
    return _from_flat_dict(values, source)


def _from_flat_dict(values, source):
  """A RunConfig from the single flat config of earlier versions."""
  values = dict(values)
  for name, no_op in _REMOVED_SETTINGS.items():
    if name in values and values.pop(name) != no_op:
      raise ValueError(f"{source}: this run uses `{name}`, a setting that no preset used and "
                       f"that this version removed; evaluate or resume it with version 85e9fe4 "
                       f"of video_structure.")
  width_start = values.pop("keypoint_width_start", values.get("keypoint_width"))
  if width_start != values.get("keypoint_width", width_start):
    raise ValueError(f"{source}: this run anneals the keypoint width, which this version "
                     f"removed; use version 85e9fe4 of video_structure.")
  recipe_values = {name: values.pop(name) for name in list(values) if name in _RECIPE_FIELDS}
  model = Config.from_dict(values, source)
  recipe = CpuRecipeConfig.from_dict(recipe_values, source)
  return RunConfig(model, None if recipe == CpuRecipeConfig() else recipe)


def get_config(dataset="basketball", preset="cpu", recipe=None, **overrides):
  """The RunConfig of a preset for a dataset, with overrides applied and validated.

  Args:
    dataset: a key of `model.config.PAPER_PRESETS`.
    preset: `paper` or `cpu`.
    recipe: `none`, `cpu` or None (the preset's: none for `paper`, the dataset's CPU recipe
      for `cpu`). `cpu` with the paper preset adds the dataset's CPU recipe to Table S1.
    **overrides: model fields and recipe settings.
  """
  if dataset not in config_lib.PAPER_PRESETS:
    raise ValueError(f"Unknown dataset {dataset!r}; known: {sorted(config_lib.PAPER_PRESETS)}.")
  if preset not in PRESETS:
    raise ValueError(f"Unknown preset {preset!r}; known: {list(PRESETS)}.")
  if recipe not in (None,) + RECIPES:
    raise ValueError(f"Unknown recipe {recipe!r}; known: {list(RECIPES)}.")
  unknown = sorted(set(overrides) - set(_MODEL_FIELDS) - set(_RECIPE_FIELDS) - {"dataset"})
  if unknown:
    raise ValueError(f"preset {dataset}/{preset}: unknown hyperparameter(s) {unknown}.")
  cpu_preset = recipe_presets.CPU_PRESETS.get(dataset)
  if cpu_preset is None and (preset == "cpu" or recipe == "cpu"):
    raise ValueError(f"No `cpu` preset for dataset {dataset!r} yet; use --preset paper or one "
                     f"of {sorted(recipe_presets.CPU_PRESETS)}.")
  model_values = dict(cpu_preset["model"]) if preset == "cpu" else {}
  model_values.update({k: v for k, v in overrides.items() if k in _MODEL_FIELDS})
  recipe_overrides = {k: v for k, v in overrides.items() if k in _RECIPE_FIELDS}
  with_recipe = preset == "cpu" if recipe is None else recipe == "cpu"
  if not with_recipe and recipe_overrides:
    raise ValueError(f"{', '.join('--' + k for k in sorted(recipe_overrides))}: CPU-recipe "
                     f"setting(s), but this run has no recipe (preset {preset!r}); add "
                     f"--recipe cpu.")
  model = config_lib.paper_config(dataset, **model_values)
  run_recipe = None
  if with_recipe:
    run_recipe = CpuRecipeConfig.from_dict(dict(cpu_preset["recipe"], **recipe_overrides),
                                           source=f"preset {dataset}/{preset}")
  return RunConfig(model, run_recipe)


def save_run_config(run_config, path):
  """Writes the RunConfig as JSON atomically."""
  io_utils.atomic_write_json(path, run_config.to_dict(), indent=2, sort_keys=True)


def load_run_config(path):
  """Reads a run's config.json (either format); a clear error if it is missing or invalid."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"No config file at {path}.")
  with open(path) as f:
    try:
      values = json.load(f)
    except json.JSONDecodeError as error:
      raise ValueError(f"{path} is not valid JSON ({error}); restore it from a backup or "
                       f"start a new run directory.") from None
  return RunConfig.from_dict(values, source=path)


# Command line. --------------------------------------------------------------------------------

def _parse_bool(text):
  lowered = str(text).lower()
  if lowered in ("1", "true", "yes", "on"):
    return True
  if lowered in ("0", "false", "no", "off"):
    return False
  raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parse_precision(text):
  """`--mixed_precision`: true/false, or `auto` (train.py decides by the hardware:
  `training/precision.py`)."""
  if str(text).strip().lower() == "auto":
    return "auto"
  try:
    return _parse_bool(text)
  except argparse.ArgumentTypeError:
    raise argparse.ArgumentTypeError(f"expected auto, true or false, got {text!r}") from None


def _add_fields(group, fields, default_note):
  for field in fields.values():
    if field.name == "dataset":
      continue
    kind = _parse_bool if field.type in (bool, "bool") else {
        "int": int, "float": float, "str": str}.get(field.type, field.type)
    help_text = f"{field.metadata['doc']} ({default_note}: {field.default!r})"
    if field.name == "mixed_precision":
      kind = _parse_precision
      help_text = (f"{field.metadata['doc']} `auto`: bfloat16 where the hardware computes it "
                   f"natively (a GPU, or a CPU with AVX512_BF16 or AMX), else float32; a "
                   f"resumed run keeps its precision. ({default_note}: {field.default!r})")
    group.add_argument(f"--{field.name}", type=kind, default=None, help=help_text)


def add_config_arguments(parser):
  """Adds `--recipe` and one `--<name>` flag per model field and recipe setting (default None
  = keep the preset's value)."""
  parser.add_argument("--recipe", choices=RECIPES, default=None,
                      help="Training recipe: `cpu` (the CPU recipe, default of --preset cpu) "
                           "or `none` (the paper's objective, default of --preset paper).")
  _add_fields(parser.add_argument_group("hyperparameters (override the preset)"),
              _MODEL_FIELDS, "paper default")
  _add_fields(parser.add_argument_group("CPU recipe (override the preset's recipe)"),
              _RECIPE_FIELDS, "off")
  return parser


def overrides_from_args(args):
  """The hyperparameter and recipe flags the user actually set."""
  names = [name for name in list(_MODEL_FIELDS) + list(_RECIPE_FIELDS) if name != "dataset"]
  return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def markdown_table():
  """The hyperparameter table of docs/hyperparameters.md: meaning and value in every preset."""
  columns = []
  for dataset in config_lib.PAPER_PRESETS:
    columns.append((f"{dataset} paper", get_config(dataset, "paper")))
    if dataset in recipe_presets.CPU_PRESETS:
      columns.append((f"{dataset} cpu", get_config(dataset, "cpu")))
  lines = ["| hyperparameter | meaning | " + " | ".join(name for name, _ in columns) + " |",
           "|---|---|" + "---|" * len(columns)]
  for field in _MODEL_FIELDS.values():
    values = " | ".join(f"{getattr(run.model, field.name)!r}".strip("'") for _, run in columns)
    lines.append(f"| `{field.name}` | {field.metadata['doc']} | {values} |")
  lines += ["", "CPU recipe (no recipe: —):", "",
            "| setting | meaning | " + " | ".join(name for name, _ in columns) + " |",
            "|---|---|" + "---|" * len(columns)]
  for field in _RECIPE_FIELDS.values():
    values = " | ".join("—" if run.recipe is None else
                        f"{getattr(run.recipe, field.name)!r}" for _, run in columns)
    lines.append(f"| `{field.name}` | {field.metadata['doc']} | {values} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  if "--markdown" in sys.argv:
    print(markdown_table(), end="")
