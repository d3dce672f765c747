"""Training: the loop (``loop``), its evaluation (``evaluation``), checkpoints and model folders
(``checkpoint``), data augmentation (``augment``) and DDP under torchrun (``distributed``)."""
