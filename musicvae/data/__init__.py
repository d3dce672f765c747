"""Training data: finding a corpus's MIDI files (``sources``), preparing windows (``prepare``, ``shards``)
and reading them back (``storage``)."""
