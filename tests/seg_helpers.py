"""Shared helpers of the segmentation tests: build a config's model, run one step."""
import glob
import os.path as osp
import re

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


def seg_configs(paper):
    """The segmentation configs of ``configs/<paper>/`` (default_scope mmseg)."""
    paths = sorted(glob.glob(osp.join(CONFIGS, paper, '*.py')))
    return [p for p in paths if Config.fromfile(p).get('default_scope') == 'mmseg']


def build_segmentor(path, crop=64, **cfg_options):
    """The config's model on the CPU: no pretrained weights (test only), BN not synced."""
    import mmctx  # noqa: F401
    from mmseg.registry import MODELS
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope('mmseg')
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = (crop, crop)  # the test's small crop
    torch.manual_seed(0)
    return revert_sync_batchnorm(MODELS.build(cfg.model)), cfg


def train_step(model, size=64, batch=2):
    """One forward + backward on ``batch`` random crops with random labels."""
    from mmseg.structures import SegDataSample
    num_classes = model.decode_head.num_classes
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, size, size), generator=gen))
        samples.append(sample)
    model.train()
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss, _ = model.parse_losses(losses)
    loss.backward()
    return loss


class SingleKeyRelations:
    """Context manager recording the :class:`SelfAttention2d` modules of a model that one
    step runs on maps of a single position (ISA's global groups when the feature map is no
    larger than the groups, e.g. an 8x8 map at 64 px / OS 8 with 8x8 groups): their
    softmax is over one key, equal to 1 for any q and k, so their query and key
    projections get exactly no gradient. :meth:`exemptions` gives the patterns of those
    parameters for ``layer_helpers.assert_every_gradient``."""

    def __init__(self, model):
        from mmctx.models.layers import SelfAttention2d
        self.names = {m: n for n, m in model.named_modules() if isinstance(m, SelfAttention2d)}
        self.single, self.several = set(), set()
        self.handles = []

    def _hook(self, module, args):
        h, w = args[0].shape[-2:]
        (self.single if h * w == 1 else self.several).add(self.names[module])

    def __enter__(self):
        self.handles = [m.register_forward_pre_hook(self._hook) for m in self.names]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()

    def exemptions(self):
        only_single = sorted(self.single - self.several)  # every call saw one position
        return tuple(rf'{re.escape(n)}\.(query|key)\..+' for n in only_single)
