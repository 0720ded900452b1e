"""Helpers shared by mmctx's command-line tools."""
from .tool_config import (SCOPES, add_runner_args, build_runner,
                          close_distributed, load_tool_config, task_scope)

__all__ = ['SCOPES', 'add_runner_args', 'build_runner', 'close_distributed',
           'load_tool_config', 'task_scope']
