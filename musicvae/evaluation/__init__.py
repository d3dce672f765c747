"""How good and how fast a trained model is: the model-card report (``report``), quality measures
against baselines (``quality``) and the speed figures of ``musicvae bench`` (``speed``)."""
