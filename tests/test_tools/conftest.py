import importlib.util
import os.path as osp

import pytest

TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')


def load_tool(relpath):
    """Import a script under tools/ (not a package) as a module."""
    path = osp.join(TOOLS, relpath)
    spec = importlib.util.spec_from_file_location(
        'mmctx_tool_' + relpath.replace('/', '_')[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tool():
    return load_tool
