"""Action recognition from the learned representation (paper Sec. 5.5, S2.2, Figure 8).

  python -m video_structure.downstream.action_recognition --run_dir runs/human36m_cpu
  python -m video_structure.downstream.action_recognition --run_dir RUN --representation rnn_states
  python -m video_structure.downstream.action_recognition --run_dir RUN --epochs 100   # paper

A trained model turns every window of 8 observed frames of the human-motion data into a
sequence of 8 representation vectors: the detected keypoints `[8, K, 3]` flattened to `[8, 3K]`
(for a CNN-VRNN: its `[8, K, 3]` features), or with `--representation rnn_states` the
dynamics' GRU states h_t `[8, U]` of a teacher-forced rollout over those keypoints. A separate
classifier (two GRU layers of 128 units, 25% dropout after each, a dense softmax over the
action classes; Adam from 0.01 decaying to 0.0001) is trained on them and its test accuracy is
reported against (a) the null model that always predicts the most frequent training class and
(b) the same classifier trained on the ground-truth joint coordinates (`true_object_pos`,
`[8, 17, 2]` flattened to `[8, 34]`).

Which windows train and test the classifier (`--protocol`):
  splits  (default) classifier trained on the windows of the dataset's train split, tested on
          those of its test split (different sequences; for Human3.6M different subjects).
  paper   only the test split, as in S2.2 (the model never saw these videos): its sequences are
          divided at random (seeded) into classifier-train and classifier-test sequences,
          `--holdout_fraction` (default 279 / 1160, the paper's ratio) of them for testing;
          all windows of a sequence stay on one side.

Writes `<run_dir>/action_recognition_<representation>.json` (every number; schema in
docs/downstream.md) and a dot plot `action_recognition_<representation>.png` next to it.
The paper trains for 100 epochs; the default here (`--epochs 20`) is sized for a CPU.
"""

import argparse
import dataclasses
import os
import sys
import time
from typing import Optional

import keras
import numpy as np

from video_structure import downstream
from video_structure.evaluation import figures
from video_structure.evaluation import model_calls
from video_structure.evaluation import report as report_lib

REPRESENTATIONS = ("keypoints", "rnn_states")
PROTOCOLS = ("splits", "paper")
PAPER_EPOCHS = 100
DEFAULT_EPOCHS = 20  # CPU-sized; the paper's 100 with --epochs 100.
PAPER_HOLDOUT_FRACTION = 279 / (881 + 279)  # S2.2: 881 training and 279 test sequences.
DATASET = "human36m"


@dataclasses.dataclass
class Settings:
  """Everything that decides an action-recognition result (recorded in the JSON).

  Attributes:
    representation: `keypoints` (the detector's output, or a CNN-VRNN's features) or
      `rnn_states` (the dynamics' GRU states over the observed steps).
    window_length: observed steps per window (None: the run's `observed_steps`, 8).
    epochs, batch_size: classifier training (paper: 100 epochs; batch size not given).
    units, dropout: GRU width and the dropout rate after each GRU layer.
    learning_rate_start, learning_rate_end: Adam's exponentially decaying learning rate.
    seed: classifier initialisation, dropout, shuffling, the `paper` protocol's sequence
      split and the dynamics' z draws for `rnn_states`.
    protocol: `splits` or `paper` (module docstring).
    holdout_fraction: `paper` protocol: fraction of the test sequences held out.
    max_train_sequences, max_test_sequences: read at most this many sequences per split.
    windows_per_sequence: at most this many consecutive windows per sequence (None: all).
    model_batch_size: windows per call of the trained model.
    feed_decoded_observed: `rnn_states` only: probability of feeding the dynamics' decoded
      instead of the detected keypoints to the GRU (0: teacher-forced).
    ground_truth: also train the classifier on the true joint coordinates.
  """
  representation: str = "keypoints"
  window_length: Optional[int] = None
  epochs: int = DEFAULT_EPOCHS
  batch_size: int = 32
  units: int = 128
  dropout: float = 0.25
  learning_rate_start: float = 0.01
  learning_rate_end: float = 1e-4
  seed: int = 0
  protocol: str = "splits"
  holdout_fraction: float = PAPER_HOLDOUT_FRACTION
  max_train_sequences: Optional[int] = None
  max_test_sequences: Optional[int] = None
  windows_per_sequence: Optional[int] = None
  model_batch_size: int = 32
  feed_decoded_observed: float = 0.0
  ground_truth: bool = True

  def validate(self):
    if self.representation not in REPRESENTATIONS:
      raise ValueError(f"representation must be one of {REPRESENTATIONS}, got "
                       f"{self.representation!r}.")
    if self.protocol not in PROTOCOLS:
      raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}.")
    for name in ("epochs", "batch_size", "units", "model_batch_size"):
      downstream.check_positive_int(getattr(self, name), name)
    for name in ("window_length", "max_train_sequences", "max_test_sequences",
                 "windows_per_sequence"):
      if getattr(self, name) is not None:
        downstream.check_positive_int(getattr(self, name), name)
    downstream.check_positive_int(self.seed, "seed", minimum=0)
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}.")
    if not 0.0 <= self.feed_decoded_observed <= 1.0:
      raise ValueError(f"feed_decoded_observed must be in [0, 1], got "
                       f"{self.feed_decoded_observed!r}.")
    downstream.check_fraction(self.holdout_fraction, "holdout_fraction")
    if not 0 < self.learning_rate_end <= self.learning_rate_start:
      raise ValueError(f"learning rates must satisfy 0 < learning_rate_end <= "
                       f"learning_rate_start, got {self.learning_rate_start} -> "
                       f"{self.learning_rate_end}.")
    return self


# Null model and scores. -----------------------------------------------------------------------

def _check_labels(labels, num_classes, name):
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"{name} must be a non-empty 1-D integer array, got dtype {labels.dtype} "
                     f"shape {labels.shape}.")
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"{name} must lie in [0, {num_classes}), got values in "
                     f"[{labels.min()}, {labels.max()}].")
  return labels.astype(np.int64)


def majority_class(labels, num_classes):
  """The most frequent class of `labels` (the smallest index among ties)."""
  labels = _check_labels(labels, num_classes, "labels")
  return int(np.argmax(np.bincount(labels, minlength=num_classes)))


def null_model_accuracy(train_labels, test_labels, num_classes):
  """The majority-class null model: (its class, the fraction of `test_labels` equal to it)."""
  majority = majority_class(train_labels, num_classes)
  test_labels = _check_labels(test_labels, num_classes, "test_labels")
  return majority, float(np.mean(test_labels == majority))


def per_class_accuracy(predictions, labels, num_classes):
  """Accuracy on the examples of each class: list of `num_classes` floats (None if a class
  has no example)."""
  predictions = np.asarray(predictions)
  labels = _check_labels(labels, num_classes, "labels")
  return [float(np.mean(predictions[labels == c] == c)) if np.any(labels == c) else None
          for c in range(num_classes)]


# The classifier. ------------------------------------------------------------------------------

def build_classifier(window_length, num_features, num_classes, units=128, dropout=0.25):
  """S2.2's classifier: `[B, T, F]` -> GRU(units) -> Dropout -> GRU(units) -> Dropout ->
  Dense(num_classes, softmax) -> `[B, num_classes]` class probabilities."""
  inputs = keras.Input((window_length, num_features), name="representation")
  hidden = keras.layers.GRU(units, return_sequences=True, name="gru_1")(inputs)
  hidden = keras.layers.Dropout(dropout, name="dropout_1")(hidden)
  hidden = keras.layers.GRU(units, name="gru_2")(hidden)
  hidden = keras.layers.Dropout(dropout, name="dropout_2")(hidden)
  outputs = keras.layers.Dense(num_classes, activation="softmax", name="classes")(hidden)
  return keras.Model(inputs, outputs, name="action_classifier")


def train_classifier(train_features, train_labels, test_features, test_labels, num_classes,
                     settings, verbose=0):
  """Trains the classifier from scratch and scores it.

  Deterministic given `settings.seed` (weights, dropout masks and the shuffling are seeded).

  Args:
    train_features: `[N, T, F]` float; test_features `[M, T, F]`.
    train_labels: int `[N]` in [0, num_classes); test_labels `[M]`.
    num_classes: C.
    settings: `Settings` (epochs, batch size, units, dropout, learning rates, seed).

  Returns:
    dict with `test_accuracy`, `train_accuracy`, `per_class_test_accuracy` (C entries),
    `final_train_loss`, `loss_per_epoch`, `num_features`, `test_predictions` (int `[M]`).
  """
  train_features = np.asarray(train_features, np.float32)
  test_features = np.asarray(test_features, np.float32)
  if train_features.ndim != 3 or test_features.ndim != 3 or (
      train_features.shape[1:] != test_features.shape[1:]):
    raise ValueError(f"features must be [N, T, F] with the same T and F for training and "
                     f"testing, got {train_features.shape} and {test_features.shape}.")
  train_labels = _check_labels(train_labels, num_classes, "train_labels")
  test_labels = _check_labels(test_labels, num_classes, "test_labels")
  if len(train_labels) != len(train_features) or len(test_labels) != len(test_features):
    raise ValueError(f"features and labels disagree in number: {len(train_features)} vs "
                     f"{len(train_labels)} (train), {len(test_features)} vs "
                     f"{len(test_labels)} (test).")
  if not (np.all(np.isfinite(train_features)) and np.all(np.isfinite(test_features))):
    raise ValueError("features contain NaN or inf.")
  keras.utils.set_random_seed(settings.seed)
  classifier = build_classifier(train_features.shape[1], train_features.shape[2], num_classes,
                                settings.units, settings.dropout)
  total_steps = settings.epochs * downstream.steps_per_epoch(len(train_features),
                                                             settings.batch_size)
  learning_rate = downstream.decaying_learning_rate(
      settings.learning_rate_start, settings.learning_rate_end, total_steps)
  classifier.compile(optimizer=keras.optimizers.Adam(learning_rate),
                     loss="sparse_categorical_crossentropy", jit_compile=False)
  history = classifier.fit(train_features, train_labels, batch_size=settings.batch_size,
                           epochs=settings.epochs, shuffle=True, verbose=verbose)
  predict = lambda x: predict_classes(classifier, x)
  test_predictions = predict(test_features)
  train_predictions = predict(train_features)
  losses = [float(value) for value in history.history["loss"]]
  return {
      "num_features": int(train_features.shape[2]),
      "test_accuracy": float(np.mean(test_predictions == test_labels)),
      "train_accuracy": float(np.mean(train_predictions == train_labels)),
      "per_class_test_accuracy": per_class_accuracy(test_predictions, test_labels,
                                                    num_classes),
      "final_train_loss": losses[-1],
      "loss_per_epoch": losses,
      "test_predictions": test_predictions,
  }


def predict_classes(classifier, features, batch_size=1024):
  """Most probable class of every example (eager calls: `Model.predict` would retrace for
  every new classifier)."""
  return np.concatenate([
      np.argmax(classifier(features[i:i + batch_size], training=False).numpy(), axis=-1)
      for i in range(0, len(features), batch_size)])


# Data. ----------------------------------------------------------------------------------------

def extract_windows(calls, dataset, settings, window_length, max_sequences=None,
                    name="dataset", with_truth=True):
  """The classifier inputs of every window of a split.

  Args:
    calls: `model_calls.ModelCalls` of the trained model.
    dataset: sequence dataset with `image` and `label` (and `true_object_pos`).
    settings: `Settings` (representation, batch size, windows per sequence, seed).
    window_length: L.

  Returns:
    dict with `features` float32 `[N, L, F]`, `label` int64 `[N]`, `sequence_index` `[N]`
    and, with `with_truth`, `true_positions` float32 `[N, L, 2J]`.
  """
  time_keys = ["image"] + (["true_object_pos"] if with_truth else [])

  def compute(batch, batch_index):
    keypoints = calls.detect(batch["image"])  # [B, L, K, 3]
    size = len(batch["image"])
    if settings.representation == "rnn_states":
      features = calls.rnn_states(keypoints, seed=(settings.seed, batch_index))
    else:
      features = keypoints.reshape(size, window_length, -1)
    result = {"features": features.astype(np.float32)}
    if with_truth:
      result["true_positions"] = batch["true_object_pos"].reshape(
          size, window_length, -1).astype(np.float32)
    return result

  windows = downstream.map_windows(
      dataset, window_length, time_keys, compute, scalar_keys=["label"], keep_keys=["label"],
      batch_size=settings.model_batch_size, max_sequences=max_sequences,
      windows_per_sequence=settings.windows_per_sequence, name=name)
  windows["label"] = windows["label"].astype(np.int64)
  return windows


def holdout_split(sequence_index, fraction, seed):
  """Divides sequences (not windows) into classifier-train and classifier-test.

  Args:
    sequence_index: int `[N]`: the sequence each window comes from.
    fraction: share of the distinct sequences held out for testing (rounded, at least 1 and
      at most all but one).
    seed: the permutation's seed.

  Returns:
    (train mask, test mask), bool `[N]`, disjoint and covering all windows.
  """
  fraction = downstream.check_fraction(fraction, "holdout_fraction")
  sequences = np.unique(np.asarray(sequence_index))
  if len(sequences) < 2:
    raise ValueError(f"The `paper` protocol needs at least 2 sequences to split, got "
                     f"{len(sequences)}.")
  num_test = int(np.clip(round(fraction * len(sequences)), 1, len(sequences) - 1))
  held_out = np.random.default_rng(seed).permutation(sequences)[:num_test]
  test = np.isin(sequence_index, held_out)
  return ~test, test


def _subset(windows, mask):
  return {key: value[mask] for key, value in windows.items()}


# The experiment. ------------------------------------------------------------------------------

def check_run_config(config, run_dir="run"):
  """Raises ValueError unless the run was trained on the human-motion data."""
  if config.dataset != DATASET:
    raise ValueError(f"{run_dir}: action recognition needs a run trained on the human-motion "
                     f"data (config.dataset {DATASET!r}), got dataset {config.dataset!r}.")


def run_action_recognition(model, config, source, settings, run_info=None, stream=None):
  """Extracts the representation of every window and trains and scores the classifiers.

  Args:
    model: the trained `StructVRNN`.
    config: its `Config`.
    source: `sources.DataSource` with `train` / `test` sequences carrying `image`, `label`
      and `true_object_pos`, and `label_names`.
    settings: `Settings`.
    run_info: dict recorded under `run` in the report.

  Returns:
    The report (JSON-ready dict; see docs/downstream.md).
  """
  settings.validate()
  stream = stream or sys.stdout
  window_length = settings.window_length or config.observed_steps
  calls = model_calls.ModelCalls(model, feed_decoded_observed=settings.feed_decoded_observed)
  timing = {}
  start = time.time()
  with_truth = settings.ground_truth
  if settings.protocol == "splits":
    train = extract_windows(calls, source.train, settings, window_length,
                            settings.max_train_sequences, f"{source.name} train", with_truth)
    test = extract_windows(calls, source.test, settings, window_length,
                           settings.max_test_sequences, f"{source.name} test", with_truth)
  else:
    windows = extract_windows(calls, source.test, settings, window_length,
                              settings.max_test_sequences, f"{source.name} test", with_truth)
    train_mask, test_mask = holdout_split(windows["sequence_index"],
                                          settings.holdout_fraction, settings.seed)
    train, test = _subset(windows, train_mask), _subset(windows, test_mask)
  timing["extract_seconds"] = time.time() - start
  label_names = list(source.label_names) if source.label_names else None
  num_classes = len(label_names) if label_names else int(
      max(train["label"].max(), test["label"].max()) + 1)
  stream.write(f"Action recognition: {len(train['label'])} training and {len(test['label'])} "
               f"test windows of {window_length} steps, {num_classes} classes.\n")
  stream.flush()

  majority, null_accuracy = null_model_accuracy(train["label"], test["label"], num_classes)
  report = {
      "task": "action_recognition",
      "run": run_info or {},
      "dataset": source.name,
      "settings": dict(dataclasses.asdict(settings), window_length=window_length),
      "num_classes": num_classes,
      "label_names": label_names,
      "num_train_windows": int(len(train["label"])),
      "num_test_windows": int(len(test["label"])),
      "num_train_sequences": int(len(np.unique(train["sequence_index"]))),
      "num_test_sequences": int(len(np.unique(test["sequence_index"]))),
      "class_counts": {
          "train": np.bincount(train["label"], minlength=num_classes).tolist(),
          "test": np.bincount(test["label"], minlength=num_classes).tolist()},
      "null_model": {
          "majority_class": majority,
          "majority_class_name": label_names[majority] if label_names else None,
          "test_accuracy": null_accuracy},
  }
  start = time.time()
  result = train_classifier(train["features"], train["label"], test["features"],
                            test["label"], num_classes, settings)
  timing["classifier_seconds"] = time.time() - start
  result.pop("test_predictions")
  report["representation"] = dict(result, name=settings.representation,
                                   model_type=model_calls.model_type(config))
  report["ground_truth"] = None
  if with_truth:
    start = time.time()
    truth = train_classifier(train["true_positions"], train["label"], test["true_positions"],
                             test["label"], num_classes, settings)
    timing["ground_truth_classifier_seconds"] = time.time() - start
    truth.pop("test_predictions")
    report["ground_truth"] = dict(truth, name="true_object_pos")
  report["timing"] = timing
  return report


def summary_lines(report):
  null = report["null_model"]
  name = f" {null['majority_class_name']}" if null["majority_class_name"] else ""
  lines = [f"Null model (always class {null['majority_class']}{name}): test accuracy "
           f"{null['test_accuracy']:.3f}",
           f"{report['representation']['model_type']} {report['representation']['name']}: "
           f"test accuracy {report['representation']['test_accuracy']:.3f} (train "
           f"{report['representation']['train_accuracy']:.3f})"]
  if report["ground_truth"]:
    lines.append(f"Ground-truth coordinates: test accuracy "
                 f"{report['ground_truth']['test_accuracy']:.3f} (train "
                 f"{report['ground_truth']['train_accuracy']:.3f})")
  return lines


def write_figure(path, report):
  """Figure 8-like dot plot: null, representation and ground-truth test accuracy."""
  groups = {"null (majority)": [report["null_model"]["test_accuracy"]],
            f"{report['representation']['model_type']}\n{report['representation']['name']}":
                [report["representation"]["test_accuracy"]]}
  if report["ground_truth"]:
    groups["ground truth"] = [report["ground_truth"]["test_accuracy"]]
  figures.save_dot_plot(path, groups, title="Action recognition", ylabel="test accuracy")
  return path


# Command line. --------------------------------------------------------------------------------

def build_parser():
  parser = argparse.ArgumentParser(
      prog="python -m video_structure.downstream.action_recognition", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run_dir", required=True,
                      help="Run directory of a model trained on human36m (train.py).")
  parser.add_argument("--checkpoint", default=None, help="Default: the run's latest.")
  parser.add_argument("--data_dir", default="data", help="Where the datasets live.")
  parser.add_argument("--output", default=None, help="Output JSON (default <run_dir>/"
                      "action_recognition_<representation>.json); the PNG goes next to it.")
  parser.add_argument("--representation", choices=REPRESENTATIONS, default="keypoints")
  parser.add_argument("--protocol", choices=PROTOCOLS, default="splits")
  parser.add_argument("--holdout_fraction", type=float, default=PAPER_HOLDOUT_FRACTION,
                      help="`paper` protocol: share of test sequences held out (279/1160).")
  parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                      help=f"Classifier epochs (paper: {PAPER_EPOCHS}; default CPU-sized).")
  parser.add_argument("--batch_size", type=int, default=32, help="Classifier batch size.")
  parser.add_argument("--window_length", type=int, default=None,
                      help="Observed steps per window (default: the run's observed_steps).")
  parser.add_argument("--max_train_sequences", type=int, default=None)
  parser.add_argument("--max_test_sequences", type=int, default=None)
  parser.add_argument("--windows_per_sequence", type=int, default=None,
                      help="At most this many consecutive windows per sequence (default all).")
  parser.add_argument("--model_batch_size", type=int, default=32,
                      help="Windows per call of the trained model.")
  parser.add_argument("--feed_decoded_observed", type=float, default=0.0,
                      help="rnn_states: probability of feeding decoded keypoints to the GRU.")
  parser.add_argument("--skip_ground_truth", action="store_true",
                      help="Do not train the ground-truth-coordinates classifier.")
  parser.add_argument("--seed", type=int, default=0)
  return parser


def main(argv=None, source=None):
  """Runs the experiment from the command line; `source` injects a `DataSource` (tests)."""
  args = build_parser().parse_args(argv)
  settings = Settings(
      representation=args.representation, window_length=args.window_length,
      epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, protocol=args.protocol,
      holdout_fraction=args.holdout_fraction, max_train_sequences=args.max_train_sequences,
      max_test_sequences=args.max_test_sequences,
      windows_per_sequence=args.windows_per_sequence, model_batch_size=args.model_batch_size,
      feed_decoded_observed=args.feed_decoded_observed,
      ground_truth=not args.skip_ground_truth).validate()
  run = downstream.open_run(args.run_dir, args.checkpoint, check_run_config)
  config = run.config
  source = downstream.prepare_source(config, args.data_dir, source)
  report = run_action_recognition(run.model, config, source, settings, downstream.run_info(run))
  path = downstream.output_path(args.output, args.run_dir,
                                f"action_recognition_{settings.representation}.json")
  report["figure"] = os.path.abspath(os.path.splitext(path)[0] + ".png")
  write_figure(report["figure"], report)
  report_lib.write_json(path, report)
  print("\n".join(summary_lines(report)))
  print(f"Wrote {path}")
  return report


if __name__ == "__main__":  # Short errors and --debug, as the video-structure-downstream command.
  from video_structure.cli import console  # pylint: disable=g-import-not-at-top
  sys.exit(console.run_module(main, __spec__.name))
