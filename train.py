"""Train Struct-VRNN.

  python train.py --dataset basketball                  # CPU preset on a machine without GPU
  python train.py --dataset basketball --preset paper   # Table S1 (GPU budget)
  python train.py --dataset basketball --num_keypoints 16 --run_dir runs/k16

Builds the dataset if it is missing, trains with a progress line, TensorBoard summaries
(`tensorboard --logdir <run_dir>/tensorboard`) and atomic checkpoints, resumes from the last
checkpoint when started again with the same --run_dir, and at the end exports a SavedModel,
measures tracking and prediction (evaluation.json) and draws predictions (PNG and GIFs).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
  from video_structure import config as config_lib
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--dataset", default="basketball", choices=sorted(config_lib.CPU_PRESETS),
                      help="Dataset to train on.")
  parser.add_argument("--preset", choices=config_lib.PRESETS, default=None,
                      help="Hyperparameter preset: `paper` (Table S1) or `cpu` (minutes on a "
                           "2-core CPU). Default: `paper` if a GPU is visible, else `cpu`.")
  parser.add_argument("--run_dir", default=None,
                      help="Output directory (default runs/<dataset>_<preset>). Starting again "
                           "with the same directory resumes from its last checkpoint.")
  parser.add_argument("--data_dir", default="data", help="Where the TFDS datasets live.")
  parser.add_argument("--restart", action="store_true",
                      help="Ignore existing checkpoints in --run_dir and train from scratch.")
  parser.add_argument("--skip_final", action="store_true",
                      help="Skip the export, evaluation and figures after training.")
  config_lib.add_config_arguments(parser)
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  import warnings
  # Keras warns that `shuffle` is ignored for tf.data input; our pipeline shuffles itself.
  warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
  import numpy as np
  import tensorflow as tf

  from video_structure import config as config_lib
  from video_structure import data
  from video_structure import evaluation
  from video_structure import export
  from video_structure import model as model_lib
  from video_structure import training

  preset = args.preset or ("paper" if tf.config.list_physical_devices("GPU") else "cpu")
  config = config_lib.get_config(args.dataset, preset, **config_lib.overrides_from_args(args))
  if config.num_steps % config.log_every_steps or (
      config.checkpoint_every_steps % config.log_every_steps):
    raise ValueError(
        f"--num_steps ({config.num_steps}) and --checkpoint_every_steps "
        f"({config.checkpoint_every_steps}) must be multiples of --log_every_steps "
        f"({config.log_every_steps}).")
  run_dir = args.run_dir or os.path.join("runs", f"{args.dataset}_{preset}")
  if args.restart and os.path.isdir(os.path.join(run_dir, training.CHECKPOINT_DIR)):
    import shutil
    shutil.rmtree(os.path.join(run_dir, training.CHECKPOINT_DIR))
    if os.path.exists(os.path.join(run_dir, "config.json")):
      os.remove(os.path.join(run_dir, "config.json"))
  config = training.prepare_run_dir(run_dir, config)
  print(f"Run directory: {run_dir}  (preset {preset}; full config in "
        f"{os.path.join(run_dir, 'config.json')})", flush=True)

  start = time.time()
  builder = data.prepare_basketball(args.data_dir, config.dataset_config)
  window_length = config.sequence_length

  checkpoint = training.latest_checkpoint(run_dir)
  if checkpoint:
    model = training.load_checkpoint(checkpoint, config)
    step = int(model.optimizer.iterations.numpy())
    print(f"Resuming from {checkpoint} at step {step}.", flush=True)
  else:
    model = model_lib.build_model(config)
    step = 0
    print(f"Model: {model.count_params():,} parameters.", flush=True)

  # A different shuffle seed after a resume, so the restarted run does not replay the windows
  # it has already seen.
  train_windows = data.make_windows_dataset(
      data.load_split(builder, "train"), window_length, config.batch_size, training=True,
      seed=config.seed + step, name=f"{args.dataset}/train")
  test_sequences = data.load_split(builder, "test")
  example_frames = next(iter(data.make_windows_dataset(
      test_sequences, window_length, 1, training=False, name=f"{args.dataset}/test")))["image"]

  if step < config.num_steps:
    callbacks = [
        training.NaNGuard(),
        training.ProgressCallback(config.num_steps, config.batch_size * window_length),
        training.TensorBoardCallback(os.path.join(run_dir, "tensorboard"), example_frames,
                                     config.image_summary_every_steps),
        training.CheckpointCallback(run_dir, config.checkpoint_every_steps),
    ]
    interval = config.log_every_steps
    if step % interval:
      # A resume with a changed --log_every_steps: first run up to the next multiple of the
      # new interval, so that logging and checkpoints fall on multiples of it again.
      model.fit(train_windows, epochs=1, steps_per_epoch=interval - step % interval,
                callbacks=callbacks, verbose=0)
      step = int(model.optimizer.iterations.numpy())
    model.fit(train_windows, epochs=config.num_steps // interval, initial_epoch=step // interval,
              steps_per_epoch=interval, callbacks=callbacks, verbose=0)
    callbacks[2].close()
  print(f"Training done at step {int(model.optimizer.iterations.numpy())} "
        f"({(time.time() - start) / 60:.1f} min including data preparation).", flush=True)
  if args.skip_final:
    return model

  path = export.export_saved_model(model, os.path.join(run_dir, "saved_model"))
  print(f"Exported SavedModel to {path}", flush=True)

  from video_structure import basketball
  report, test_frames = evaluation.evaluate_on_builder(model, builder, config,
                                                       object_names=basketball.OBJECT_NAMES)
  with open(os.path.join(run_dir, "evaluation.json"), "w") as f:
    json.dump(report, f, indent=1)
  print("\n".join(evaluation.summary_lines(report)), flush=True)

  figures = training.write_prediction_figures(model, test_frames[:config.num_eval_sequences],
                                              os.path.join(run_dir, "predictions"))
  print(f"Wrote {len(figures)} figures to {os.path.join(run_dir, 'predictions')} "
        f"(total {(time.time() - start) / 60:.1f} min).", flush=True)
  return model


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  main()
