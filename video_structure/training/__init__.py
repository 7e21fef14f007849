"""Training a model: the run directory and its loader, checkpoints, callbacks, tf.distribute
strategies, the SavedModel export and the figures drawn at the end of a run.

  builder.py      build_model(run_config): the model (and recipe) of a run, compiled
  run_dir.py      the run directory: config.json checks and `load_run`, THE run loader
  checkpoints.py  atomic checkpoints: save / latest / load and CheckpointCallback
  callbacks.py    NaN guard, progress line, loss log and TensorBoard summaries
  run_lock.py     one trainer per run directory (a lock naming its holder)
  reproducibility.py  bit-reproducible training steps
  precision.py    `--mixed_precision auto`: bfloat16 where the hardware computes it
  flops.py        the analytic FLOP count of a training step; the machine's measured peak
  strategies.py   the tf.distribute strategy of a run (train.py --strategy)
  export.py       the SavedModel with inference signatures
  figures.py      prediction figures (PNG and GIF) and TensorBoard example images
"""
