"""The CPU recipe: what makes Struct-VRNN discover objects within ~1% of the paper's budget.

One plug-in (`CpuRecipe`) that `StructVRNN` accepts and stores with itself; the paper presets
use none. Every part acts on training only:
  * detector initialisation: a negative heatmap-head bias and a large kernel gain make the
    initial maps peaky, so keypoints start on salient image features (`heatmap_bias_init`,
    `heatmap_init_gain`);
  * warm-ups: blobs ignore mu at first (`presence_warmup_steps`), sparsity comes in slowly
    (`sparsity_warmup_steps`);
  * loss terms (`losses.py`): the error of moving pixels weighted up (`moving_pixel_weight`),
    heatmaps pulled onto the moving foreground (`foreground_attention_weight`), and an auxiliary
    decoder of the foreground colours from the detector's features
    (`foreground_colour_weight`); the masks of these terms can first match each frame's
    brightness and contrast to the reference's (`match_lighting`);
  * re-seeding of duplicate keypoints (`reseeding.py`, a training callback).
What was measured for each is in docs/cpu_preset.md.
"""

import keras
import tensorflow as tf

from video_structure.model import losses as model_losses
from video_structure.model import ops
from video_structure.recipes import losses
from video_structure.recipes import settings as settings_lib


CpuRecipeConfig = settings_lib.CpuRecipeConfig


@keras.saving.register_keras_serializable(package="video_structure")
class CpuRecipe(keras.layers.Layer):
  """The CPU recipe as a training plug-in of `StructVRNN` (see its module docstring).

  Args:
    settings: a `CpuRecipeConfig` or its dict.
    model_config: the model's `Config` (image and heatmap sizes, representation, sparsity).
  """

  loss_names = ("moving_pixels", "foreground_attention", "foreground_colour")

  def __init__(self, settings, model_config, **kwargs):
    kwargs.setdefault("dtype", "float32")
    kwargs.setdefault("name", "recipe")
    super().__init__(**kwargs)
    if isinstance(settings, dict):
      settings = CpuRecipeConfig.from_dict(settings)
    self.settings = settings.validate()
    self.model_config = model_config
    keypoints = model_config.representation == "keypoints"
    # Auxiliary decoder of the foreground colours from the detector's features: one 1x1 conv to
    # each heatmap cell's pixels.
    self.foreground_colour_decoder = None
    if settings.foreground_colour_weight and keypoints:
      pool = model_config.image_size // model_config.heatmap_size
      self.foreground_colour_decoder = keras.layers.Conv2D(
          3 * pool * pool, 1, dtype="float32", name="foreground_colour_decoder")

  @classmethod
  def part_options(cls, settings):
    """Keyword arguments of `struct_vrnn.build_parts`: the detector's initialisation."""
    if isinstance(settings, dict):
      settings = CpuRecipeConfig.from_dict(settings)
    return dict(heatmap_bias_init=settings.heatmap_bias_init,
                heatmap_init_gain=settings.heatmap_init_gain)

  def settings_dict(self):
    return self.settings.to_dict()

  def get_config(self):
    # StructVRNN stores the recipe as its settings and rebuilds it with the model's config.
    return {"name": self.name, "settings": self.settings_dict()}

  def build(self, input_shape=None):
    if self.built:
      return
    if self.foreground_colour_decoder is not None:
      cfg = self.model_config
      levels = (cfg.image_size // cfg.heatmap_size).bit_length() - 1
      filters = cfg.initial_filters * 2 ** levels  # The detector encoder's output width.
      self.foreground_colour_decoder.build([None, cfg.heatmap_size, cfg.heatmap_size, filters])
    self.built = True

  @property
  def needs_detector_features(self):
    return self.foreground_colour_decoder is not None

  def schedule(self, step, schedule):
    """The warm-ups: sparsity rising from 0 and the renderer's presence weight."""
    settings = self.settings
    schedule = dict(schedule)
    schedule["sparsity_weight"] = model_losses.linear_ramp(
        step, settings.sparsity_warmup_steps, self.model_config.sparsity_weight)
    schedule["presence_weight"] = model_losses.linear_ramp(
        step, settings.presence_warmup_steps, 1.0)
    return schedule

  def loss_terms(self, frames, heatmaps, features, reconstruction):
    """The recipe's weighted loss terms (0 where a part is off or does not apply).

    Args:
      frames: `[B, T, H, W, 3]` float32 in [-0.5, 0.5].
      heatmaps: `[B, T, S, S, K]` raw detector maps, or None (CNN-VRNN).
      features: `[B, T, S, S, F]` detector features if `needs_detector_features`, else None.
      reconstruction: `[B, T, H, W, 3]`.
    """
    settings = self.settings
    attention = settings.foreground_attention_weight and heatmaps is not None
    colour = self.foreground_colour_decoder is not None
    # The foreground mask (a sort over time) is shared by the terms that use it.
    foreground = (losses.foreground_pixel_mask(frames, settings.foreground_threshold,
                                               settings.match_lighting)
                  if colour or attention else None)
    zero = tf.constant(0.0)
    return {
        "moving_pixels": settings.moving_pixel_weight * losses.moving_pixel_loss(
            reconstruction, frames, settings.moving_pixel_threshold, settings.match_lighting)
                         if settings.moving_pixel_weight else zero,
        "foreground_attention": settings.foreground_attention_weight
                                * losses.foreground_attention_loss(
                                    heatmaps, frames, settings.foreground_threshold,
                                    pixel_mask=foreground) if attention else zero,
        "foreground_colour": settings.foreground_colour_weight * losses.foreground_colour_loss(
            self.predict_foreground_colours(features), frames, settings.foreground_threshold,
            pixel_mask=foreground) if colour else zero,
    }

  def predict_foreground_colours(self, features):
    """`[B, T, S, S, F]` detector features -> `[B, T, H, W, 3]` frames predicted by the
    auxiliary decoder (each cell's pixels from its features, depth-to-space)."""
    pool = self.model_config.image_size // self.model_config.heatmap_size
    pixels = tf.nn.depth_to_space(self.foreground_colour_decoder(ops.fold_time(features)), pool)
    return ops.unfold_time(pixels, tf.shape(features)[0])

  def reseeds(self, step):
    """Whether keypoint re-seeding still has events at or after `step`."""
    settings = self.settings
    return (bool(settings.reseed_every_steps) and step < settings.reseed_until_step
            and self.model_config.representation == "keypoints")
