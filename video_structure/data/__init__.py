"""Where the videos come from: dataset generators and importers, their TFDS builders, and the
tf.data pipeline that cuts sequences into training windows (`sources.prepare` is the entry
point)."""
