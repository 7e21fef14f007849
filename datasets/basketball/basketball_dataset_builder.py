"""The Basketball TFDS builder, for `tfds build datasets/basketball` (and `tfds.builder`).

The builder lives in `video_structure.data.builders.basketball`; this module only exposes it
where TFDS' command line looks for it (`<name>/<name>_dataset_builder.py`).
"""

from video_structure.data.builders import basketball

BasketballConfig = basketball.BasketballConfig
PREDEFINED_CONFIGS = basketball.PREDEFINED_CONFIGS


class Builder(basketball.Builder, skip_registration=True):
  """`basketball.Builder` defined in this module, where `tfds build` looks for it (the package
  class is the one registered with TFDS)."""
