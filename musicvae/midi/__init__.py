"""MIDI in: the forgiving file reader (``smf``), beats and sections (``parse``), the upload loader (``loader``)."""
