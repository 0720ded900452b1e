"""Session-wide fixtures shared by every test directory."""
import os
import os.path as osp
import sys

import pytest
from mmengine.registry import init_default_scope

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'dataset_converters'))

from make_shapes import make_shapes  # noqa: E402

# Keep the tiny test models from fighting over the 2 shared cores.
os.environ.setdefault('OMP_NUM_THREADS', '1')

# Size of the synthetic data set generated once per test session.
SHAPES_TEST_ARGS = dict(num_train=8, num_val=4, img_size=128, seed=0)


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """Directory of a small synthetic shapes data set (8 train / 4 val scenes
    of 128x128 px), laid out like ``data/shapes/``: use it as ``data_root``.

    Returned as a string ending with '/', so that ``data_root + 'annotations/...'``
    works as in the configs.
    """
    root = tmp_path_factory.mktemp('shapes')
    make_shapes(str(root), **SHAPES_TEST_ARGS)
    return str(root) + '/'


@pytest.fixture
def mmdet_scope():
    """Build with the mmdet registries whatever scope an earlier test in this process set.

    A module of detection tests asks for it with
    ``pytestmark = pytest.mark.usefixtures('mmdet_scope')``.
    """
    init_default_scope('mmdet')


@pytest.fixture
def mmseg_scope():
    """Build with the mmseg registries whatever scope an earlier test in this process set.

    A module of segmentation tests asks for it with
    ``pytestmark = pytest.mark.usefixtures('mmseg_scope')``.
    """
    init_default_scope('mmseg')
