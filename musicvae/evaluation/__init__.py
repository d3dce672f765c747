"""How good a trained model is: the model-card report (``report``) and quality measures against
baselines (``quality``)."""
