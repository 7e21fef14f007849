"""The CPU recipe's settings (no TensorFlow: the command line and the presets read them).

Each part is described in `recipes/cpu.py`; what was measured for each in docs/cpu_preset.md.
"""

import dataclasses

from video_structure.model import config as config_lib

_setting = config_lib.setting


@dataclasses.dataclass
class CpuRecipeConfig(config_lib.Settings):
  """Settings of the CPU recipe. The defaults switch every part off."""
  KIND = "recipe"
  UNKNOWN = "CPU-recipe setting(s)"

  heatmap_bias_init: float = _setting(0.0, "Initial bias of the softplus heatmap head.")
  heatmap_init_gain: float = _setting(1.0, "Multiplier on the std of the heatmap head's Glorot "
                                      "kernel init. With a negative bias, a gain > 1 makes the "
                                      "initial maps peaky (softplus ~ exp), so keypoints start on "
                                      "salient image features instead of the image centre.")
  presence_warmup_steps: int = _setting(0, "Steps over which the renderer blends from ignoring mu "
                                        "(every blob at full strength) to using it: "
                                        "mu' = 1 - w (1 - mu), w rising 0 -> 1. Keeps keypoints "
                                        "from being switched off before they find an object.")
  sparsity_warmup_steps: int = _setting(0, "Steps over which lambda_sparse rises from 0.")
  moving_pixel_weight: float = _setting(0.0, "lambda_move: extra weight on the squared error of "
                                        "pixels that differ from the window's first frame "
                                        "(`recipes.losses.moving_pixel_loss`).")
  moving_pixel_threshold: float = _setting(0.1, "Colour change (max over channels, frames in "
                                           "[-0.5, 0.5], so 0.1 ~ 25 of 255 levels) at which a "
                                           "pixel counts fully as moving.")
  foreground_attention_weight: float = _setting(
      0.0, "lambda_fg: weight of the share of each keypoint's heatmap off the moving "
      "foreground (`recipes.losses.foreground_attention_loss`); pulls keypoints that have not "
      "found an object onto one.")
  foreground_threshold: float = _setting(0.1, "Colour change from the window's temporal median "
                                         "at which a pixel counts fully as foreground.")
  match_lighting: bool = _setting(
      False, "Before the moving-pixel and foreground masks compare a frame with the window's "
      "first frame or temporal median, bring its brightness and contrast to theirs (a per-frame "
      "gain and offset, `recipes.losses.match_lighting`), so a change of the light is not taken "
      "for motion.")
  foreground_colour_weight: float = _setting(
      0.0, "lambda_colour: weight of an auxiliary decoder that predicts the colours of the "
      "moving foreground from the detector's features (`recipes.losses.foreground_colour_loss`);"
      " makes the detector represent every moving object, also those no keypoint has found. "
      "Keypoint representation only.")
  reseed_every_steps: int = _setting(
      0, "Every this many steps, point keypoints that duplicate another keypoint at the worst "
      "reconstructed moving object (`recipes.reseeding`); 0 = never. Keypoint representation "
      "only.")
  reseed_until_step: int = _setting(0, "Last step at which keypoints are re-seeded.")
  reseed_distance: float = _setting(0.1, "Mean distance (coordinate units) below which two "
                                    "keypoints count as duplicates for re-seeding.")
  reseed_max_keypoints: int = _setting(4, "Most keypoints re-seeded at one event.")

  def validate(self):
    """Raises ValueError naming the offending setting."""
    self.check_types()
    for name in ["presence_warmup_steps", "sparsity_warmup_steps", "moving_pixel_weight",
                 "foreground_attention_weight", "foreground_colour_weight",
                 "reseed_every_steps", "reseed_until_step", "reseed_max_keypoints"]:
      if getattr(self, name) < 0:
        raise ValueError(f"recipe: `{name}` must be >= 0, got {getattr(self, name)!r}.")
    for name in ["heatmap_init_gain", "moving_pixel_threshold", "foreground_threshold",
                 "reseed_distance"]:
      if not getattr(self, name) > 0:
        raise ValueError(f"recipe: `{name}` must be > 0, got {getattr(self, name)!r}.")
    return self
