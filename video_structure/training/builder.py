"""Builds the model of a run: the paper's parts, the recipe (if any), Adam."""

import keras

from video_structure.model import struct_vrnn
from video_structure.recipes import cpu as cpu_recipe


def build_model(run_config):
  """Creates a StructVRNN (with the run's recipe), builds its weights on a dummy window and
  compiles it with Adam.

  Args:
    run_config: a `presets.RunConfig`.

  The learning rate halves every `learning_rate_decay_steps` (staircase) and every gradient
  tensor is clipped to norm `clipnorm` (Keras' per-tensor `clipnorm`). Weights initialise from
  `config.seed` in a fixed order: the parts, then the recipe's layers.
  """
  config = run_config.model
  keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision
                                          else "float32")
  keras.utils.set_random_seed(config.seed)
  recipe_settings = run_config.recipe
  part_options = {} if recipe_settings is None else cpu_recipe.CpuRecipe.part_options(
      recipe_settings)
  parts = struct_vrnn.build_parts(config, **part_options)
  recipe = (None if recipe_settings is None
            else cpu_recipe.CpuRecipe(recipe_settings, config))
  model = struct_vrnn.StructVRNN(config, **parts, recipe=recipe)
  model.build()
  learning_rate = keras.optimizers.schedules.ExponentialDecay(
      config.learning_rate, config.learning_rate_decay_steps, 0.5, staircase=True)
  model.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999,
                                                clipnorm=config.clipnorm),
                jit_compile=False)  # XLA is 2-2.5x slower on this CPU (measured).
  # Creating the optimizer's slots here, not inside the first traced train step, saves a
  # second trace of the whole step.
  model.optimizer.build(model.trainable_variables)
  return model
