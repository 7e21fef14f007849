"""The CPU presets, one per dataset: one rule for the model settings that differ from the
dataset's Table S1 preset (`model.config.PAPER_PRESETS`) and one CPU recipe for all (every value
of every preset is in the table of docs/hyperparameters.md). No setting is tuned per dataset.

Measured for each change: docs/cpu_preset.md.
"""

from video_structure.model import config as config_lib

# Compute budget shared by every CPU preset: a quarter of the paper's conv cost per frame,
# batch 8 x 16 frames, ~1000 steps in ~12 minutes on 2 cores; a smaller GRU and fewer
# best-of-many samples; schedules scaled to the run.
_BUDGET = dict(
    initial_filters=16, batch_size=8, num_steps=1000, learning_rate=2e-3,
    learning_rate_decay_steps=1000, rnn_units=256, num_samples=20, kl_anneal_steps=500,
    scheduled_sampling_ramp_steps=1000, checkpoint_every_steps=250, log_every_steps=50,
    image_summary_every_steps=250)

# The CPU recipe, the same for every dataset (docs/cpu_preset.md): peaky initial heatmaps, the
# presence and sparsity warm-ups, moving-pixel weighting (runs E, G and R), foreground attention,
# foreground colours and re-seeding (measured on Basketball, then checked on the development
# suite of docs/dev_suite.md and on the human-motion and DMCS data). `match_lighting` stays off
# until Basketball is shown not to lose by it (docs/cpu_preset.md).
CPU_RECIPE = dict(
    heatmap_bias_init=-4.0, heatmap_init_gain=10.0, presence_warmup_steps=300,
    sparsity_warmup_steps=400, moving_pixel_weight=20.0, moving_pixel_threshold=0.1,
    foreground_threshold=0.1, reseed_distance=0.1, reseed_max_keypoints=4,
    foreground_attention_weight=1.0, foreground_colour_weight=1.0, reseed_every_steps=100,
    reseed_until_step=700)

# Model changes from Table S1 shared by every CPU preset: the budget, one conv per scale,
# narrower blobs and a stronger separation loss.
_CPU_MODEL = dict(_BUDGET, layers_per_scale=1, keypoint_width=1.0, separation_weight=1.0)
# K: at least this many keypoints (twice Table S1's Basketball value, so that more of them start
# near an object), or Table S1's K where that is larger (Human3.6M 48, DMCS 64).
MIN_CPU_KEYPOINTS = 24


def _cpu_preset(dataset, **model):
  num_keypoints = max(MIN_CPU_KEYPOINTS, config_lib.paper_config(dataset).num_keypoints)
  return {"model": dict(_CPU_MODEL, num_keypoints=num_keypoints, **model),
          "recipe": dict(CPU_RECIPE)}


CPU_PRESETS = {
    "basketball": _cpu_preset("basketball", dataset_config="cpu"),
    "human36m": _cpu_preset("human36m", dataset_config="cpu"),
    "dmcs": _cpu_preset("dmcs", dataset_config="cpu"),
    # A user's folder: its size is what the folder holds.
    "video_folder": _cpu_preset("video_folder"),
}
