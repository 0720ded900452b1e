"""Analysis helpers behind ``tools/analysis_tools``: complexity, benchmarks, attention."""
from .attention_stats import *  # noqa: F401,F403
from .complexity import *  # noqa: F401,F403
from .inference import *  # noqa: F401,F403
from .memory import *  # noqa: F401,F403
