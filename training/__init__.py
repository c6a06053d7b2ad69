"""Training: the instruction-conditioned embedding head (trained on CPU from the labelled corpora) and
the recipe for training the reasoning model (needs a GPU and the `train` extra)."""
