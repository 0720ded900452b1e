"""The demo config's name states its schedule as the OpenMMLab pattern
``{algorithm}_{backbone}_{neck}_{N}xb{B}-{schedule}_{dataset}-{size}`` asks:
GPUs x batch, iterations, and the image size ``make data`` generates."""
import glob
import os.path as osp
import re

from mmengine.config import Config

from mmctx.utils.metafile import REPO


def test_demo_config_name_states_batch_schedule_and_size():
    paths = glob.glob(osp.join(REPO, 'configs', 'demo', '*.py'))
    assert len(paths) == 1
    name = osp.basename(paths[0])
    m = re.fullmatch(r'retinanet_r50w16-gcb_fpn64_(\d+)xb(\d+)-(\d+)it_shapes-(\d+)\.py', name)
    assert m, name
    gpus, batch, iters, size = map(int, m.groups())
    cfg = Config.fromfile(paths[0])
    assert gpus == 1  # make demo trains in one process
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.train_cfg.max_iters == iters
    with open(osp.join(REPO, 'Makefile')) as f:
        makefile = f.read()
    assert f'--img-size {size}' in makefile
    assert f'DEMO_CONFIG ?= configs/demo/{name}' in makefile
