"""Engine hooks, registered in mmengine's root ``HOOKS``."""
from .adam_sgd import *  # noqa: F401,F403
from .checkpoint_hooks import *  # noqa: F401,F403
