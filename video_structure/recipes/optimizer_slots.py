"""The one place that edits an optimizer's slot variables (used by keypoint re-seeding).

Keras has no public API for an optimizer's per-variable slots; Keras 3's `Adam` keeps its first
moments in `_momentums`, indexed by `_get_variable_index(variable)`. This helper supports Keras
3.x with Adam (and subclasses such as AdamW); anything else raises a clear error rather than
silently doing nothing.
"""

import keras

SUPPORTED_KERAS_MAJOR = 3


def zero_first_moments(optimizer, variables, indices):
  """Zeroes Adam's first moments of `variables` at `indices` of their last axis.

  Args:
    optimizer: the model's optimizer; nothing happens if it is None or not built yet (there
      are no moments to reset).
    variables: the variables whose moments are edited.
    indices: list of positions along each variable's last axis (e.g. keypoints).

  Raises:
    NotImplementedError: for an optimizer or Keras version this helper does not support.
  """
  if optimizer is None or not getattr(optimizer, "built", False):
    return
  major = int(keras.__version__.split(".")[0])
  if major != SUPPORTED_KERAS_MAJOR or not isinstance(optimizer, keras.optimizers.Adam):
    raise NotImplementedError(
        f"optimizer_slots: supports Adam on Keras {SUPPORTED_KERAS_MAJOR}.x, got "
        f"{type(optimizer).__name__} on Keras {keras.__version__}.")
  # pylint: disable=protected-access
  for variable in variables:
    moment = optimizer._momentums[optimizer._get_variable_index(variable)]
    values = moment.numpy()
    values[..., indices] = 0.0
    moment.assign(values)
