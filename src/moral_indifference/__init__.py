"""Reproduce, audit and extend the study of moral indifference in language models.

One module per stage of the method: :mod:`ground_truth` (moral vectors from
Social-Chemistry-101), :mod:`models` (loading and materialising models),
:mod:`activations` (pooled residual streams), :mod:`indifference` (the four measures),
:mod:`sae` (sparse autoencoders), :mod:`features` (moral latent isolation),
:mod:`realignment`, :mod:`steering`, :mod:`generation`, :mod:`judging` and
:mod:`reporting`. :mod:`provenance` records what produced each result.
"""

__version__ = "0.1.0"
