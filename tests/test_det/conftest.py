import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def _mmdet_scope():
    """Build with the mmdet registries whatever scope an earlier test in this process set."""
    init_default_scope('mmdet')
