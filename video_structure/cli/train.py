"""Train Struct-VRNN.

  python train.py --dataset basketball                  # CPU preset on a machine without GPU
  python train.py --dataset basketball --preset paper   # Table S1 (GPU budget)
  python train.py --dataset basketball --num_keypoints 16 --run_dir runs/k16

Builds the dataset if it is missing, trains with a progress line, TensorBoard summaries
(`tensorboard --logdir <run_dir>/tensorboard`) and atomic checkpoints, resumes from the last
checkpoint when started again with the same --run_dir, and at the end exports a SavedModel,
measures tracking and prediction (evaluation.json) and draws predictions (PNG and GIFs).

Several devices or hosts (docs/scaling.md): `--strategy mirrored` (all local GPUs; on a CPU-only
machine `--num_cpu_devices N` splits the CPU), `--strategy multi_worker` (every host runs the same
command with its own TF_CONFIG), `--strategy tpu --tpu ADDRESS`. `--batch_size` is the global
batch (split evenly over the replicas); only the chief writes to --run_dir, which every worker
must be able to read.
"""

import argparse
import contextlib
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
  # Imported here, after TF_CPP_MIN_LOG_LEVEL is set (presets imports TensorFlow).
  from video_structure import presets  # pylint: disable=import-outside-toplevel
  from video_structure.data import folder_options  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--dataset", default="basketball",
                      help="basketball, human36m, dmcs (TFDS builders in datasets/, generated "
                           "offline when missing), or a folder of videos (mp4, gif, avi) or "
                           ".npz files, decoded once into TFRecords under --data_dir.")
  parser.add_argument("--model", default="struct_vrnn", choices=sorted(presets.MODEL_VARIANTS),
                      help="Model variant (paper Sec. 5): the full Struct-VRNN, its ablations and "
                           "the CNN-VRNN / supervised baselines; flags given explicitly win.")
  parser.add_argument("--manual_dir", default=None,
                      help="human36m with --dataset_config h36m: your licensed Human3.6M copy "
                           "(docs/human36m.md).")
  parser.add_argument("--preset", choices=presets.PRESETS, default=None,
                      help="Hyperparameter preset: `paper` (Table S1) or `cpu` (minutes on a "
                           "2-core CPU). Default: `paper` if a GPU is visible, else `cpu`.")
  parser.add_argument("--run_dir", default=None,
                      help="Output directory (default runs/<dataset>_<preset>). Starting again "
                           "with the same directory resumes from its last checkpoint.")
  parser.add_argument("--data_dir", default="data", help="Where the TFDS datasets live.")
  parser.add_argument("--restart", action="store_true",
                      help="Train from scratch: after every flag is checked, the previous run's files "
                           "are moved into <run_dir>/replaced-<time>/ (nothing is deleted).")
  parser.add_argument("--skip_final", action="store_true",
                      help="Skip the export, evaluation and figures after training.")
  parser.add_argument("--strategy", default="default",
                      choices=["default", "mirrored", "multi_worker", "tpu"],
                      help="tf.distribute strategy: one device, all local GPUs, several hosts "
                           "(TF_CONFIG) or a TPU (--tpu). See docs/scaling.md.")
  parser.add_argument("--num_cpu_devices", type=int, default=None,
                      help="mirrored / multi_worker without GPU: split the CPU into this many "
                           "logical devices (replicas per worker; for tests).")
  parser.add_argument("--tpu", default=None,
                      help="--strategy tpu: the TPU's address (grpc://host:8470) or name.")
  parser.add_argument("--shard_policy", default="data", choices=["data", "sequences"],
                      help="multi_worker: how workers split the training windows (see "
                           "data/windows.py SHARD_POLICIES); `data` gives exactly one device's "
                           "batches.")
  folder_options.add_folder_arguments(parser)
  presets.add_config_arguments(parser)
  args = parser.parse_args(argv)
  # The video-folder flags given, for sources.prepare.
  args.folder_options = folder_options.folder_options_from_args(args)
  return args


def main(argv=None):
  """Trains, exports and evaluates (module docstring); returns the model. The run directory is
  locked against a second training until it returns (also when it raises)."""
  with contextlib.ExitStack() as until_return:
    return _train(argv, until_return)


def _train(argv, until_return):
  """`main`; `until_return` (a `contextlib.ExitStack`) holds the run directory's lock."""
  args = parse_args(argv)
  # Keras warns that `shuffle` is ignored for tf.data input; our pipeline shuffles itself.
  warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
  # Imported here, not at the top: the strategy below is created before any other module of
  # the project runs.
  import tensorflow as tf

  from video_structure.training import strategies
  # First: a multi-worker strategy must exist before any other TensorFlow op, and the CPU split
  # before TensorFlow initialises its devices.
  strategy = strategies.make_strategy(args.strategy, args.num_cpu_devices, args.tpu)
  from video_structure.training import reproducibility
  # Before any model is built or step traced: the same seed and flags give the same weights.
  reproducibility.make_training_reproducible()
  is_chief = strategies.is_chief(strategy)

  from video_structure.evaluation import model_calls
  from video_structure.model import ops
  from video_structure.evaluation import protocol
  from video_structure.evaluation import report as report_lib
  from video_structure import presets
  from video_structure.data import sources
  from video_structure.data import windows
  from video_structure.recipes import reseeding
  from video_structure.training import builder
  from video_structure.training import callbacks as callbacks_lib
  from video_structure.training import checkpoints
  from video_structure.training import export
  from video_structure.training import figures
  from video_structure.training import precision
  from video_structure.training import run_dir as run_dir_lib
  from video_structure.training import run_lock

  has_gpu = bool(tf.config.list_physical_devices("GPU"))
  preset = args.preset or ("paper" if has_gpu else "cpu")
  dataset_name, dataset_path = sources.dataset_for_argument(args.dataset)
  run_name = (os.path.basename(os.path.normpath(dataset_path)) if dataset_path
              else dataset_name)
  run_dir = args.run_dir or os.path.join(
      "runs", f"{run_name}_{preset}" + ("" if args.model == "struct_vrnn" else f"_{args.model}"))
  overrides = presets.variant_overrides(args.model)
  if dataset_path:
    overrides["dataset_path"] = dataset_path
  overrides.update(presets.overrides_from_args(args))
  if overrides.get("mixed_precision") == "auto":
    resuming = not args.restart and os.path.isfile(os.path.join(run_dir,
                                                                run_dir_lib.CONFIG_FILE))
    use_bfloat16, message = precision.resolve_auto(
        resuming, has_gpu, precision.cpu_flags())
    if use_bfloat16 is None:  # The precision the run was started with.
      use_bfloat16 = run_dir_lib.load_config(run_dir).model.mixed_precision
    else:
      print(message, flush=True)
    overrides["mixed_precision"] = use_bfloat16
  run_config = presets.get_config(dataset_name, preset, recipe=args.recipe, **overrides)
  config = run_config.model
  if config.num_steps % config.log_every_steps or (
      config.checkpoint_every_steps % config.log_every_steps):
    raise ValueError(
        f"--num_steps ({config.num_steps}) and --checkpoint_every_steps "
        f"({config.checkpoint_every_steps}) must be multiples of --log_every_steps "
        f"({config.log_every_steps}).")
  num_replicas = strategy.num_replicas_in_sync
  if config.batch_size % num_replicas:
    raise ValueError(
        f"--batch_size ({config.batch_size}) is the global batch and must be a multiple of the "
        f"number of replicas ({num_replicas}, {strategies.describe(strategy)}).")
  if args.strategy == "multi_worker" and (getattr(config, "supervised_weight", 0)
                                          or config.action_size):
    raise ValueError(
        "--strategy multi_worker feeds the model frames only (Keras 3.15 cannot start a "
        "multi-worker fit on dict batches, keras-team/keras#20329), but supervised_weight > 0 "
        "or action_size > 0 needs the positions or actions too; use --strategy mirrored.")
  config_path = os.path.join(run_dir, run_dir_lib.CONFIG_FILE)
  if is_chief:  # Only the chief writes to the run directory, so only it needs the lock.
    until_return.enter_context(run_lock.RunLock(run_dir))
  # With --restart the chief moves the previous run aside only once the data are ready (below).
  if not args.restart:  # Other workers only check the config, against the checkpoint.
    run_config = run_dir_lib.prepare_run_dir(run_dir, run_config, write=is_chief)
    config = run_config.model
  print(f"Run directory: {run_dir}  (preset {preset}; full config in {config_path})",
        flush=True)
  print(f"Strategy: {strategies.describe(strategy)}; global batch {config.batch_size} = "
        f"{config.batch_size // num_replicas} per replica x {num_replicas}.", flush=True)

  start = time.time()
  if not is_chief:
    strategies.wait_for_all_workers(strategy)  # The chief generates missing data first.
  source = sources.prepare(config, args.data_dir, manual_dir=args.manual_dir,
                           folder_options=args.folder_options)
  if is_chief:
    strategies.wait_for_all_workers(strategy)
  window_length = config.sequence_length

  if args.restart and is_chief:
    # Only now, with every setting checked and the data ready: a command that fails before
    # leaves the previous run as it was.
    replaced = run_dir_lib.move_previous_run_aside(run_dir)
    if replaced:
      print(f"--restart: moved the previous run's files to {replaced} (nothing was deleted).",
            flush=True)
    run_dir_lib.prepare_run_dir(run_dir, run_config)
  # With --restart every worker starts from scratch.
  checkpoint = None if args.restart else checkpoints.latest_checkpoint(run_dir)
  with strategy.scope():  # Variables (model and optimizer) mirrored on every replica.
    if checkpoint:
      # The newest checkpoint that loads; the chief sets damaged ones aside.
      run = run_dir_lib.load_run(run_dir, run_config=run_config, set_aside_damaged=is_chief)
      model, step, checkpoint = run.model, run.step, run.checkpoint
      print(f"Resuming from {checkpoint} at step {step}.", flush=True)
    else:
      model = builder.build_model(run_config)
      step = 0
      print(f"Model: {model.count_params():,} parameters.", flush=True)
  strategies.check_same_on_all_workers(strategy, step, "the step to start from")

  def training_windows(first_step):
    # Batches first_step, first_step + 1, ... of the one stream of config.seed: a resumed run
    # trains on exactly the batches an uninterrupted run would. Global batches: tf.distribute
    # splits each over the replicas (and the workers, by --shard_policy).
    batches = windows.make_windows_dataset(
        source.training_sequences, window_length, config.batch_size, training=True,
        seed=config.seed, first_step=first_step, name=f"{source.name}/train",
        num_workers=strategies.num_workers(strategy),
        worker_index=strategies.worker_index(strategy), shard_policy=args.shard_policy)
    if args.strategy == "multi_worker":
      # Frames only: Keras 3.15 cannot start a multi-worker fit on dict batches
      # (keras-team/keras#20329).
      batches = batches.map(lambda batch: batch["image"])
    return batches

  example_window = next(iter(windows.make_windows_dataset(
      source.test, window_length, 1, training=False, name=f"{source.name}/test")))
  example_frames = example_window["image"]
  example_actions = example_window.get("actions") if config.action_size else None

  tensorboard = None
  if step < config.num_steps:
    # Keras calls the callbacks in this order. Whatever changes the weights at a step (the
    # re-seeding) or records it (loss log, TensorBoard) comes before the checkpoint of that
    # step, so a run resumed from the checkpoint neither skips nor loses any of it.
    callbacks = [callbacks_lib.NaNGuard()]
    recipe = run_config.recipe
    if (recipe is not None and recipe.reseed_every_steps and step < recipe.reseed_until_step
        and config.representation == "keypoints"):  # The CNN-VRNN has no heatmap heads.
      # Unsharded windows with a seed fixed by the step: the same batch on every worker and
      # after a resume. (config.seed, seed) are the seeds these windows had before the stream
      # became independent of TensorFlow's global seed (config.seed in a fresh run).
      callbacks.append(reseeding.KeypointReseeding(
          lambda seed: windows.make_windows_dataset(
              source.training_sequences, window_length, reseeding.RESEED_WINDOWS,
              training=True, seed=(config.seed, seed), name=f"{source.name}/train"),
          log=(lambda line: print(line, flush=True)) if is_chief else None))
    callbacks.append(
        callbacks_lib.ProgressCallback(config.num_steps, config.batch_size * window_length))
    if is_chief:
      callbacks.append(
          callbacks_lib.LossLogCallback(os.path.join(run_dir, callbacks_lib.LOSS_LOG_FILE)))
      tensorboard = callbacks_lib.TensorBoardCallback(
          os.path.join(run_dir, "tensorboard"), example_frames, config.image_summary_every_steps,
          example_actions)
      callbacks.append(tensorboard)
    callbacks.append(
        checkpoints.CheckpointCallback(run_dir, config.checkpoint_every_steps))  # Chief only.
    interval = config.log_every_steps
    if step % interval:
      # A resume with a changed --log_every_steps: first run up to the next multiple of the
      # new interval, so that logging and checkpoints fall on multiples of it again.
      model.fit(training_windows(step), epochs=1, steps_per_epoch=interval - step % interval,
                callbacks=callbacks, verbose=0)
      step = int(model.optimizer.iterations.numpy())
    model.fit(training_windows(step), epochs=config.num_steps // interval,
              initial_epoch=step // interval,
              steps_per_epoch=interval, callbacks=callbacks, verbose=0)
    if tensorboard is not None:
      tensorboard.close()
  print(f"Training done at step {int(model.optimizer.iterations.numpy())} "
        f"({(time.time() - start) / 60:.1f} min including data preparation).", flush=True)
  if args.skip_final or not is_chief:
    strategies.wait_for_all_workers(strategy)  # Workers leave together (see below).
    return model
  if args.strategy != "default":
    # Export and evaluate an undistributed copy: the SavedModel then holds plain variables.
    model = strategies.local_copy(model, lambda: builder.build_model(run_config))

  path = export.export_saved_model(model, os.path.join(run_dir, "saved_model"))
  print(f"Exported SavedModel to {path}", flush=True)

  if config.action_size:
    # Predictions of an action-conditional model need the test actions; the downstream
    # reward-prediction script evaluates it (docs/downstream.md).
    print(f"Action-conditional model: see `python -m video_structure.downstream."
          f"reward_prediction --run_dir {run_dir}` (total {(time.time() - start) / 60:.1f} "
          f"min).", flush=True)
    strategies.wait_for_all_workers(strategy)
    return model
  # The quick setting of the evaluation protocol: tracking only, into <run_dir>/evaluation.json.
  report, evaluation_data = protocol.evaluate_model(
      model, config, protocol.EvaluationSettings.quick(config.observed_steps, config.seed),
      run_dir, source=source, run_info={"step": int(model.optimizer.iterations.numpy())
                                        if model.optimizer else None})
  print("\n".join(report_lib.summary_lines(report)), flush=True)

  test_frames = ops.frames_to_model(evaluation_data.test_frames).numpy()
  paths = figures.write_prediction_figures(model, test_frames[:config.num_eval_sequences],
                                          os.path.join(run_dir, "predictions"))
  print(f"Wrote {len(paths)} figures to {os.path.join(run_dir, 'predictions')} "
        f"(total {(time.time() - start) / 60:.1f} min).", flush=True)
  # The other workers wait here, so that none leaves the cluster while the chief still works.
  strategies.wait_for_all_workers(strategy)
  return model


def run():
  """The `video-structure-train` command and `python train.py`: `main()` with short error lines
  and --debug (cli/console.py); returns the exit status."""
  from video_structure.cli import console  # pylint: disable=import-outside-toplevel
  return console.run_command(
      main, "train",
      interrupted_hint="start the same command again to resume from the last checkpoint")
