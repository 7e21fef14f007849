"""The CPU presets, one per dataset: model settings that differ from the dataset's Table S1
preset (`model.config.PAPER_PRESETS`), and the CPU recipe's settings (every value of every
preset is in the table of docs/hyperparameters.md).

Measured for each change: docs/cpu_preset.md. The foreground attention, the foreground colours
and re-seeding were measured on Basketball only, so only Basketball uses them so far.
"""

# Compute budget shared by every CPU preset: a quarter of the paper's conv cost per frame,
# batch 8 x 16 frames, ~1000 steps in ~12 minutes on 2 cores; a smaller GRU and fewer
# best-of-many samples; schedules scaled to the run.
_BUDGET = dict(
    initial_filters=16, batch_size=8, num_steps=1000, learning_rate=2e-3,
    learning_rate_decay_steps=1000, rnn_units=256, num_samples=20, kl_anneal_steps=500,
    scheduled_sampling_ramp_steps=1000, checkpoint_every_steps=250, log_every_steps=50,
    image_summary_every_steps=250)

# Recipe settings of every CPU preset (docs/cpu_preset.md, runs E, G and R): peaky initial
# heatmaps, the presence and sparsity warm-ups, moving-pixel weighting.
_SHARED_RECIPE = dict(
    heatmap_bias_init=-4.0, heatmap_init_gain=10.0, presence_warmup_steps=300,
    sparsity_warmup_steps=400, moving_pixel_weight=20.0, moving_pixel_threshold=0.1,
    foreground_threshold=0.1, reseed_distance=0.1, reseed_max_keypoints=4)
# Foreground attention, foreground colours and re-seeding: measured on Basketball only so far.
_DISCOVERY_ON = dict(foreground_attention_weight=1.0, foreground_colour_weight=1.0,
                     reseed_every_steps=100, reseed_until_step=700)
_DISCOVERY_OFF = dict(foreground_attention_weight=0.0, foreground_colour_weight=0.0,
                      reseed_every_steps=0, reseed_until_step=0)

CPU_PRESETS = {
    "basketball": {
        "model": dict(
            _BUDGET, dataset_config="cpu",
            # Narrower blobs, a stronger separation loss, twice the paper's keypoints (more of
            # them start near an object).
            keypoint_width=1.0, separation_weight=1.0, num_keypoints=24),
        "recipe": dict(_SHARED_RECIPE, **_DISCOVERY_ON),
    },
    "human36m": {
        "model": dict(_BUDGET, dataset_config="cpu", keypoint_width=1.0, layers_per_scale=1),
        "recipe": dict(_SHARED_RECIPE, **_DISCOVERY_OFF),
    },
    "dmcs": {
        "model": dict(_BUDGET, dataset_config="cpu", keypoint_width=1.0),
        "recipe": dict(_SHARED_RECIPE, **_DISCOVERY_OFF),
    },
    "video_folder": {
        "model": dict(_BUDGET, keypoint_width=1.0, separation_weight=1.0),
        "recipe": dict(_SHARED_RECIPE, **_DISCOVERY_OFF),
    },
}
