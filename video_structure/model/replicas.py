"""Multi-replica maths of the training step (tf.distribute with Keras 3's TF trainer).

Each replica sees batch_size / R windows of the global batch and its loss is the mean over
them; Keras' optimizer clips each replica's gradients and then all-reduces them with SUM. So the
train step divides the loss by R and, with gradient clipping, sums and clips the gradients here
first, as one device would clip the global gradient. Verified against one device in
tests/training/test_distribute.py.
"""

import tensorflow as tf


def num_workers(strategy):
  """Number of input pipelines (worker processes) that feed the replicas."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and resolver is not None:
    spec = resolver.cluster_spec().as_dict()
    return max(1, len(spec.get("worker", [])) + len(spec.get("chief", [])))
  return 1


def replica_seed(seed_generator):
  """int32 `[2]`: this step's stateless seed, different on every replica.

  The SeedGenerator advances once per step, identically on all replicas (its mirrored copies
  stay equal and a checkpoint resumes the stream); folding in the replica id gives each replica
  its own best-of-many samples and scheduled-sampling draws.
  """
  context = tf.distribute.get_replica_context()
  replica_id = context.replica_id_in_sync_group if context is not None else 0
  step_seed = tf.cast(seed_generator.next(), tf.int32)
  return tf.random.experimental.stateless_fold_in(step_seed, tf.cast(replica_id, tf.int32))


def needs_global_clipping(optimizer, num_replicas):
  """True when the optimizer clips and gradients come from several replicas."""
  return num_replicas > 1 and bool(optimizer.clipnorm or optimizer.global_clipnorm
                                   or optimizer.clipvalue)


def global_clipped_gradients(gradients, optimizer, num_replicas):
  """Per-replica gradients of loss / R -> 1/R of the clipped global gradient on every replica.

  The optimizer's own clip is then a no-op and its SUM all-reduce rebuilds the clipped global
  gradient.
  """
  present = [g for g in gradients if g is not None]
  summed = iter(tf.distribute.get_replica_context().all_reduce(
      tf.distribute.ReduceOp.SUM, present))
  summed = [None if g is None else next(summed) for g in gradients]
  if optimizer.clipnorm:
    summed = [None if g is None else tf.clip_by_norm(g, optimizer.clipnorm) for g in summed]
  elif optimizer.global_clipnorm:
    clipped, _ = tf.clip_by_global_norm([g for g in summed if g is not None],
                                        optimizer.global_clipnorm)
    clipped = iter(clipped)
    summed = [None if g is None else next(clipped) for g in summed]
  elif optimizer.clipvalue:
    summed = [None if g is None else tf.clip_by_value(g, -optimizer.clipvalue,
                                                      optimizer.clipvalue) for g in summed]
  return [None if g is None else g / num_replicas for g in summed]


def mean_over_replicas(loss_terms):
  """The global-batch mean of every loss term on every replica, so the trackers agree and any
  reduction Keras applies to the logs (mean; first replica on TPU) reports the global batch."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return loss_terms
  names = sorted(loss_terms)
  means = context.all_reduce(tf.distribute.ReduceOp.MEAN, [loss_terms[n] for n in names])
  return dict(zip(names, means))


def logs_for_strategy(logs):
  """Keras 3.15 reduces multi-worker logs with strategy.reduce(MEAN, axis=0), which fails on
  scalars (tensorflow/tensorflow#72388); give each a length-1 axis, reduced away there."""
  if num_workers(tf.distribute.get_strategy()) > 1:
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}
  return logs
