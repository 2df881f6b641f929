"""``python -m pricing.cloud``: the release commands (see pricing/cloud/cli.py)."""

import sys

from pricing.cloud.cli import main

sys.exit(main())
