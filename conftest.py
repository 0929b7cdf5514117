"""Keep JAX on the CPU for the tests and the notebooks nbval runs (no GPU warnings)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
