"""Analysis helpers behind ``tools/analysis_tools``: complexity, benchmarks, attention."""
from .complexity import *  # noqa: F401,F403
