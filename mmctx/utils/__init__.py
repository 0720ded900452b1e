"""Helpers shared by mmctx's command-line tools."""
from .tool_config import (SCOPES, add_runner_args, build_runner,  # noqa: F401
                          load_tool_config, task_scope)
