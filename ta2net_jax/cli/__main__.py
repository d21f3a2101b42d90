"""`python -m ta2net_jax.cli` is the `ta2net` command."""

import sys

from ta2net_jax.cli.main import main

sys.exit(main())
