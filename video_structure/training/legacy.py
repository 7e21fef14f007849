"""Checkpoints written before the CPU recipe became a plug-in (video_structure 85e9fe4 and
earlier), converted on load.

Those `.keras` files differ from today's in two places only:
  * config.json: the model's config is one flat dict of every setting (model and recipe), and
    there is no `recipe` entry;
  * model.weights.h5: the foreground-colour decoder's weights sit at the top level
    (`foreground_colour_decoder/...`) instead of inside the recipe layer.
Every other weight and the optimizer's state (slot order included) are stored identically, so
the conversion copies them unchanged; the user's file is never modified.
"""

import json
import os
import shutil
import tempfile
import zipfile

import h5py
import keras

from video_structure import presets
from video_structure.recipes import cpu as cpu_recipe

_CONFIG_NAME = "config.json"
_WEIGHTS_NAME = "model.weights.h5"
_OLD_DECODER_GROUP = "foreground_colour_decoder"
_RECIPE_GROUP = "layers/cpu_recipe"


def _read_model_config(path):
  with zipfile.ZipFile(path) as archive:
    return json.loads(archive.read(_CONFIG_NAME))


def is_legacy_checkpoint(path):
  """Whether the `.keras` file at `path` holds a StructVRNN in the pre-plug-in format."""
  try:
    saved = _read_model_config(path)
  except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError):
    return False  # Not ours to judge: `keras.models.load_model` reports what is wrong.
  model_config = saved.get("config", {})
  return (saved.get("class_name") == "StructVRNN" and "recipe" not in model_config
          and "model" not in model_config.get("config", {}))


def _converted_model_config(saved, source):
  run_config = presets.RunConfig.from_dict(saved["config"]["config"], source=source)
  recipe = None
  if run_config.recipe is not None:
    recipe = {"class_name": keras.saving.get_registered_name(cpu_recipe.CpuRecipe),
              "settings": run_config.recipe.to_dict()}
  saved = dict(saved, module="video_structure.model.struct_vrnn")
  saved["config"] = {"config": run_config.model.to_dict(), "recipe": recipe,
                     "name": saved["config"].get("name", "struct_vrnn")}
  return saved


def _convert_weights(old_path, new_path, has_recipe):
  with h5py.File(old_path, "r") as old, h5py.File(new_path, "w") as new:
    for name in old:
      if name == _OLD_DECODER_GROUP:
        continue
      old.copy(old[name], new, name=name)
    if has_recipe:
      recipe_group = new.require_group(_RECIPE_GROUP)
      recipe_group.require_group("vars")  # The recipe layer's own (empty) variable list.
      if _OLD_DECODER_GROUP in old:
        old.copy(old[_OLD_DECODER_GROUP], recipe_group, name=_OLD_DECODER_GROUP)


def convert_checkpoint(path, output_path):
  """Writes a copy of the legacy checkpoint `path` in today's format at `output_path`.

  Raises:
    ValueError: the run used a setting that this version removed (the message names it).
  """
  saved = _read_model_config(path)
  converted = _converted_model_config(saved, source=path)
  with tempfile.TemporaryDirectory() as scratch:
    with zipfile.ZipFile(path) as archive:
      archive.extractall(scratch)
    new_weights = os.path.join(scratch, "converted.weights.h5")
    _convert_weights(os.path.join(scratch, _WEIGHTS_NAME), new_weights,
                     converted["config"]["recipe"] is not None)
    shutil.move(new_weights, os.path.join(scratch, _WEIGHTS_NAME))
    with open(os.path.join(scratch, _CONFIG_NAME), "w") as f:
      json.dump(converted, f)
    with zipfile.ZipFile(output_path, "w") as archive:
      for name in sorted(os.listdir(scratch)):
        archive.write(os.path.join(scratch, name), arcname=name)
  return output_path
