"""Validation of the model's inputs at its public entry points (`StructVRNN.detect`, `call`,
`predict_future`, ...) and in the SavedModel signatures (`training/export.py`).

`InputChecks(entry_point)` collects conditions on frames, keypoints, counts, actions and seeds:
in eager mode a failed condition raises ValueError at once; inside a graph it becomes an
assertion that raises InvalidArgumentError with the same message when the graph runs
(`gate` ties the checked tensors to the assertions). With `static_only=True` (the training step)
only what is known when a graph is traced is checked, so a step pays nothing for it.
"""

import numpy as np
import tensorflow as tf

# Frames may leave [-0.5, 0.5] by this much (float rounding) before they are refused; frames in
# [0, 1] or [0, 255], the usual mistake, leave it by far.
FRAME_RANGE_TOLERANCE = 1e-3
CONVERT_FRAMES = "convert uint8 frames with video_structure.model.ops.frames_to_model"


class _ShapeOf:
  """A message value: the shape of `tensor` (its static shape when the message is raised at
  once, `tf.shape` inside a graph)."""

  def __init__(self, tensor):
    self.tensor = tensor


def _text(value):
  """`value` (Python number, numpy value, tensor with a static value, `_ShapeOf`) as message
  text; floats with three decimals, vectors as `[a, b]`, unknown values as `?`."""
  if isinstance(value, _ShapeOf):
    dims = value.tensor.shape.as_list() if value.tensor.shape.rank is not None else None
    return "?" if dims is None else "[" + ", ".join(str(d) for d in dims) + "]"
  if tf.is_tensor(value):
    value = tf.get_static_value(value)
    if value is None:
      return "?"
  array = np.asarray(value)
  items = [f"{item:.3f}" if array.dtype.kind == "f" else str(item) for item in array.ravel()]
  return items[0] if array.ndim == 0 else "[" + ", ".join(items) + "]"


def _graph_text(value):
  """`_text` of `value` as a string tensor computed in the graph."""
  if isinstance(value, _ShapeOf):
    dims = tf.strings.as_string(tf.shape(value.tensor))
    return tf.strings.join(["[", tf.strings.reduce_join(dims, separator=", "), "]"])
  if not tf.is_tensor(value):
    return tf.constant(_text(value))
  if value.dtype.is_floating:
    return tf.strings.as_string(tf.cast(value, tf.float32), precision=3)
  return tf.strings.as_string(value)


def dim(tensor, axis):
  """Size of `tensor` along `axis`: a Python int if static, else a scalar int32 tensor."""
  static = tensor.shape[axis] if tensor.shape.rank is not None else None
  return static if static is not None else tf.shape(tensor)[axis]


def _all(*conditions):
  """Logical and of Python bools and bool tensors (a Python bool if all are)."""
  tensors = [c for c in conditions if tf.is_tensor(c)]
  if not all(bool(c) for c in conditions if not tf.is_tensor(c)):
    return False
  if not tensors:
    return True
  return tensors[0] if len(tensors) == 1 else tf.reduce_all(tf.stack(tensors))


class InputChecks:
  """Validation of one entry point's inputs, the same in eager code, in `tf.function` and in
  the exported SavedModel.

  A check whose outcome is known when it is made (eager execution, static shapes, Python
  numbers) raises ValueError at once. One that depends on values inside a graph becomes a
  `tf.debugging.Assert` with the same message (raised as InvalidArgumentError when the graph
  runs; its text is stored in the graph, so it survives export); `gate` makes the inputs depend
  on those assertions, so nothing is computed from bad inputs. No check changes a value.

  Args:
    entry_point: how messages name the caller (`StructVRNN.detect`, or a SavedModel signature).
    static_only: make only the checks decidable without running anything (the training step:
      no per-step graph assertions).
  """

  def __init__(self, entry_point, static_only=False):
    self.entry_point = entry_point
    self.static_only = static_only
    self._assertions = []

  def require(self, condition, message, *values):
    """Checks `condition` (a bool or a scalar bool tensor); `message` has a `{}` per value."""
    known = tf.get_static_value(condition) if tf.is_tensor(condition) else condition
    if known is not None:
      if not bool(known):
        raise ValueError(f"{self.entry_point}: " + message.format(*map(_text, values)))
      return
    if self.static_only:
      return
    pieces = f"{self.entry_point}: {message}".split("{}")
    parts = [tf.constant(pieces[0])]
    for value, piece in zip(values, pieces[1:]):
      parts += [_graph_text(value), tf.constant(piece)]
    self._assertions.append(tf.debugging.Assert(condition, [tf.strings.join(parts)]))

  def gate(self, *tensors):
    """`tensors` (None passes through), made to depend on the graph assertions so far."""
    if not self._assertions:
      return tensors
    with tf.control_dependencies(self._assertions):
      return tuple(None if tensor is None else tf.identity(tensor) for tensor in tensors)

  def not_empty(self, tensor, name, layout, time_axis=None):
    """At least one sequence in `tensor` of shape `layout` (e.g. `[B, T, H, W, 3]`) and, if
    `time_axis` names its axis 1 (e.g. `T`), at least one step."""
    self.require(dim(tensor, 0) >= 1,
                 f"`{name}` must hold at least one sequence (B >= 1 in {layout}), got shape {{}}.",
                 _ShapeOf(tensor))
    if time_axis:
      self.require(dim(tensor, 1) >= 1,
                   f"`{name}` must hold at least one step per sequence ({time_axis} >= 1 in "
                   f"{layout}), got shape {{}}.", _ShapeOf(tensor))

  def frames(self, frames, name, image_size, layout="[B, T, H, W, 3]"):
    """Float frames of shape `layout` (rank 5, or rank 4 for one frame per sequence) of the
    model's size, not empty, with values in [-0.5, 0.5]. Returns them as a tensor, dtype kept."""
    if isinstance(frames, dict):
      raise ValueError(f"{self.entry_point}: `{name}` must be a {layout} tensor, got a dict with "
                       f"keys {sorted(frames)}.")
    frames = tf.convert_to_tensor(frames)
    if not frames.dtype.is_floating:
      raise ValueError(f"{self.entry_point}: `{name}` must be float frames in [-0.5, 0.5], got "
                       f"dtype {frames.dtype.name}; {CONVERT_FRAMES}.")
    rank = layout.count(",") + 1
    if frames.shape.rank is not None and (frames.shape.rank != rank
                                          or frames.shape[-1] not in (None, 3)):
      raise ValueError(f"{self.entry_point}: `{name}` must have shape {layout}, got "
                       f"{_text(_ShapeOf(frames))}.")
    self.require(_all(dim(frames, -3) == image_size, dim(frames, -2) == image_size),
                 f"`{name}` must be {image_size}x{image_size} frames (the model's image_size), "
                 f"got shape {{}}; resize them to {image_size}x{image_size}.", _ShapeOf(frames))
    self.not_empty(frames, name, layout, layout.split(", ")[1] if rank == 5 else None)
    if not self.static_only:
      low = tf.reduce_min(frames)
      high = tf.reduce_max(frames)
      limit = 0.5 + FRAME_RANGE_TOLERANCE
      self.require(tf.logical_and(low >= -limit, high <= limit),
                   f"`{name}` must have values in [-0.5, 0.5], got values in [{{}}, {{}}]; "
                   f"{CONVERT_FRAMES}.", low, high)
    return frames

  def keypoints(self, keypoints, name, num_keypoints, layout="[B, T, K, 3]"):
    """Finite keypoints of shape `layout` (rank 4, or rank 3 for one step per sequence) with
    K = `num_keypoints`, not empty. Returns them as a float32 tensor."""
    keypoints = tf.cast(tf.convert_to_tensor(keypoints), tf.float32)
    rank = layout.count(",") + 1
    shape_ok = keypoints.shape.rank in (None, rank)
    if shape_ok and keypoints.shape.rank is not None:
      shape_ok = _all(dim(keypoints, -2) == num_keypoints, dim(keypoints, -1) == 3)
    self.require(shape_ok, f"`{name}` must have shape {layout} with K = {num_keypoints} (the "
                 f"model's num_keypoints), got shape {{}}.", _ShapeOf(keypoints))
    self.not_empty(keypoints, name, layout, layout.split(", ")[1] if rank == 4 else None)
    if not self.static_only:
      self.require(tf.reduce_all(tf.math.is_finite(keypoints)),
                   f"`{name}` contains NaN or infinite values; pass finite keypoints.")
    return keypoints

  def same_batch(self, tensor, name, batch_size, reference_name):
    """`tensor`'s batch size equals `batch_size`, that of `reference_name`."""
    self.require(dim(tensor, 0) == batch_size,
                 f"`{name}` has batch size {{}} but `{reference_name}` has {{}}; both must hold "
                 f"the same sequences.", dim(tensor, 0), batch_size)

  def count(self, value, name, minimum, meaning):
    """An integer (Python or scalar tensor) >= `minimum`; returned as a Python int or an
    int32 tensor."""
    if tf.is_tensor(value):
      if not value.dtype.is_integer or value.shape.rank not in (None, 0):
        raise ValueError(f"{self.entry_point}: `{name}` must be an integer >= {minimum} "
                         f"({meaning}), got dtype {value.dtype.name} and shape "
                         f"{_text(_ShapeOf(value))}.")
      value = tf.cast(value, tf.int32)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
      value = int(value)
    else:
      raise ValueError(f"{self.entry_point}: `{name}` must be an integer >= {minimum} "
                       f"({meaning}), got {value!r}.")
    self.require(value >= minimum, f"`{name}` must be an integer >= {minimum} ({meaning}), got "
                 f"{{}}.", value)
    return value

  def actions(self, actions, action_size, batch_size, batch_name, num_steps, steps_text):
    """Actions `[B, steps, A]` of an action-conditional model (`action_size` A > 0) covering
    `num_steps` steps; returned as float32 (None, or unchanged, for other models, which ignore
    them)."""
    if not action_size:
      return actions
    layout = f"[B, {steps_text}, {action_size}]"
    if actions is None:
      raise ValueError(f"{self.entry_point}: this model is action-conditional (action_size="
                       f"{action_size}) and needs `actions` of shape {layout}.")
    actions = tf.cast(tf.convert_to_tensor(actions), tf.float32)
    shape_ok = actions.shape.rank in (None, 3) and (
        actions.shape.rank is None or dim(actions, -1) == action_size)
    self.require(shape_ok, f"`actions` must have shape {layout} (A = the model's action_size), "
                 f"got shape {{}}.", _ShapeOf(actions))
    self.same_batch(actions, "actions", batch_size, batch_name)
    self.require(dim(actions, 1) >= num_steps,
                 f"`actions` must cover the {steps_text} = {{}} steps, got shape {{}}.",
                 num_steps, _ShapeOf(actions))
    return actions

  def seed(self, seed):
    """None, or a stateless seed of two integers; returned as int32 `[2]`."""
    if seed is None:
      return None
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape.rank not in (None, 1) or (
        seed.shape.rank == 1 and seed.shape[0] not in (None, 2)):
      raise ValueError(f"{self.entry_point}: `seed` must be two integers (int32 [2]), got "
                       f"dtype {seed.dtype.name} and shape {_text(_ShapeOf(seed))}.")
    return tf.cast(seed, tf.int32)
