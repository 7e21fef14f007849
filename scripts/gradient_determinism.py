"""Does one batch give the same gradient every time? A check of the training graph on this CPU.

  python scripts/gradient_determinism.py                          # CPU preset, as train.py runs it
  python scripts/gradient_determinism.py --tensorflow_defaults    # grappler as TensorFlow ships it

Trains the Basketball CPU preset for `--steps` steps (seed 0), then computes the gradient of the
total loss on the next batch `--repeats` times (one traced function, persistent tape) and prints
how many distinct results the detector's gradient and all the gradients had: 1 each is
reproducible. With `--tensorflow_defaults` the grappler passes that
`training.reproducibility.make_training_reproducible()` turns off stay on; the memory optimizer's
AddN rewrite then sums the detector's gradient in arrival order. `--hog_gb G` first fills G GB
of RAM in this process: the rewrite happens only when grappler's peak-memory estimate exceeds
80% of the free RAM.
"""

import argparse
import collections
import hashlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=24, help="Training steps before the check.")
  parser.add_argument("--repeats", type=int, default=12, help="Gradient computations compared.")
  parser.add_argument("--tensorflow_defaults", action="store_true",
                      help="Keep TensorFlow's default grappler passes.")
  parser.add_argument("--hog_gb", type=float, default=0.0, help="RAM to fill first (GB).")
  parser.add_argument("--data_dir", default="data",
                      help="Where the TFDS datasets live (as train.py's --data_dir).")
  return parser.parse_args(argv)


def digest(tensors):
  return hashlib.sha256(b"".join(t.numpy().tobytes() for t in tensors)).hexdigest()[:12]


def main(argv=None):
  args = parse_args(argv)
  # Imported here so that --help answers at once.
  # pylint: disable=import-outside-toplevel
  import numpy as np
  import tensorflow as tf

  from video_structure import presets
  from video_structure.data import sources, windows
  from video_structure.model import replicas
  from video_structure.training import builder, reproducibility
  # pylint: enable=import-outside-toplevel
  hog = np.ones(int(args.hog_gb * 1e9), np.uint8) if args.hog_gb else None
  if not args.tensorflow_defaults:
    reproducibility.make_training_reproducible()
  run_config = presets.get_config("basketball", "cpu")
  config = run_config.model
  model = builder.build_model(run_config)
  source = sources.prepare(config, args.data_dir)

  def batches(first_step):
    return windows.make_windows_dataset(source.training_sequences, config.sequence_length,
                                        config.batch_size, seed=0, first_step=first_step)
  if args.steps:
    model.fit(batches(0), steps_per_epoch=args.steps, epochs=1, verbose=0)
  frames = next(iter(batches(args.steps)))["image"]
  seed = replicas.replica_seed(model.dynamics.seed_generator)

  @tf.function
  def gradients(frames, seed):
    # A persistent tape keeps every intermediate alive: a large peak-memory estimate, which is
    # what makes grappler's memory optimizer rewrite the gradient sums (as it did, less often,
    # in whole training runs under load).
    with tf.GradientTape(persistent=True) as tape:
      loss_terms, _ = model.compute_losses(frames, None, training=True, seed=seed)
    return tape.gradient(loss_terms["total"], model.trainable_variables)

  detector_ids = {id(v) for v in model.keypoint_detector.trainable_variables}
  counts = collections.defaultdict(collections.Counter)
  for _ in range(args.repeats):
    grads = list(zip(gradients(frames, seed), model.trainable_variables))
    counts["detector"][digest([g for g, v in grads if id(v) in detector_ids])] += 1
    counts["all variables"][digest([g for g, _ in grads if g is not None])] += 1
  free_gb = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9
  print(f"Grappler: {'TensorFlow defaults' if args.tensorflow_defaults else 'train.py'}; "
        f"{free_gb:.1f} GB RAM free at the end{' (with the hog)' if hog is not None else ''}.")
  reproducible = True
  for name, counter in counts.items():
    print(f"{name}: {len(counter)} distinct gradient(s) in {args.repeats} computations "
          f"{dict(counter)}")
    reproducible &= len(counter) == 1
  print("REPRODUCIBLE" if reproducible else "NOT REPRODUCIBLE")
  return 0 if reproducible else 1


if __name__ == "__main__":
  sys.exit(main())
