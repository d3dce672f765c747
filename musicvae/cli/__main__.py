"""``python -m musicvae.cli``: the ``musicvae`` command."""

import sys

from musicvae.cli import main

sys.exit(main())
