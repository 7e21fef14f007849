"""The interface of the per-frame metrics computed from a network's feature maps (VGG cosine,
LPIPS), as `frame_metrics.scores_against_references` uses them.

Evaluation scores many predicted frames (every sample) against the same true frames, so the
true frames' side of the comparison is prepared once (`prepare_references`) and each batch of
predictions is scored against a slice of it (`score`). A metric only has to give `features` and
`compare`; `VGGFeatures` and `lpips.LPIPS` also move per-reference work (norms, channel
normalisation) into `prepare_references` and run their network and the comparison as one graph
in `score`, which gives the same numbers faster.
"""


class FeatureMetric:
  """Base of the feature metrics. Subclasses define:

    features(frames) -> list of `[N, h, w, C]` feature maps of frames `[N, H, W, 3]` in [0, 1];
    compare(features_1, features_2) -> `[N]` scores of two batches' feature maps.
  """

  # Frames per network call in `frame_metrics.scores_against_references`.
  batch_size = 16

  def prepare_references(self, frames):
    """`[R, H, W, 3]` reference frames -> list of `[R, ...]` tensors that `score` takes (sliced
    along the first axis). Default: the feature maps."""
    return self.features(frames)

  def score(self, frames, prepared_references):
    """`[N, H, W, 3]` frames against `prepare_references` of their N reference frames, sliced
    to match -> `[N]` scores."""
    return self.compare(self.features(frames), prepared_references)
