"""Helpers shared by mmctx's command-line tools."""
from .checkpoint import (UNSAFE_LOAD_ENV, UnsafeCheckpointError,
                         add_unsafe_load_arg, apply_unsafe_load_arg,
                         latest_checkpoint, load_torch_file)
from .scope import SCOPES, task_scope
from .setup_env import register_all_modules
from .tool_config import (add_runner_args, build_runner, close_distributed,
                          load_tool_config)

__all__ = ['SCOPES', 'add_runner_args', 'build_runner', 'close_distributed',
           'load_tool_config', 'task_scope', 'UNSAFE_LOAD_ENV',
           'UnsafeCheckpointError', 'add_unsafe_load_arg',
           'apply_unsafe_load_arg', 'latest_checkpoint', 'load_torch_file',
           'register_all_modules']
