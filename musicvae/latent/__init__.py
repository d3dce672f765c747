"""The latent space: groove attributes (``attributes``), stored directions (``directions``), attribute
vectors and the measurement of what each direction does (``steering``), even morphs (``morph``)."""
