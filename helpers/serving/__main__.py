"""``python -m helpers.serving --model_name=... --model_base_path=...``: see :mod:`.server`."""

import sys

from helpers.serving.server import main

sys.exit(main())
