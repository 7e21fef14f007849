"""Struct-VRNN (Minderer et al., NeurIPS 2019) in Keras 3 / TensorFlow 2.

Importing the package sets one TensorFlow default, before TensorFlow is imported:
`TF_ENABLE_ONEDNN_OPTS=1`. TensorFlow turns its oneDNN kernels on by itself only on CPUs with
AVX512_VNNI, AVX512_BF16 or AMX; on the others (an AVX2-only AMD EPYC here) its Eigen
convolutions made a training step of the default model 1.7x slower and of the paper preset 1.6x
slower (README.md, "Speed"). A value the user set wins; importing TensorFlow before this
package leaves TensorFlow's own choice.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
