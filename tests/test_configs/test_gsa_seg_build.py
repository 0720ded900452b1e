"""Lee et al. Table 4 (configs/gsa, default_scope mmseg): semantic FPN R-50 on COCO-Stuff 164k,
with mmseg's FPN (a) and with mmctx's SAFPN (b, self-attention between C5 and P5).

Both configs build from the file and run one forward + backward on two 64x64 crops on the CPU
(pretrained weights off here only); the setting is asserted from the file; the README's params
are the built models'.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import zoo_helpers
from layer_helpers import assert_every_gradient, randomise_zeros
from seg_helpers import CONFIGS, build_segmentor, seg_configs, train_step

pytestmark = pytest.mark.usefixtures('mmseg_scope')

GSA = osp.join(CONFIGS, 'gsa')
PATHS = seg_configs('gsa')
SUFFIX = '_adam-sgd-4xb4-80k_coco-stuff164k-512x512.py'
BASELINE = 'sem-fpn_r50_fpn' + SUFFIX
WITH_SA = 'sem-fpn_r50_fpn-gsa' + SUFFIX


def readme_params():
    """{config: params in M} from the README's "Semantic segmentation" section."""
    return zoo_helpers.readme_params('gsa', 'Semantic segmentation')


def test_both_rows_have_a_config_and_a_readme_row():
    assert sorted(osp.basename(p) for p in PATHS) == sorted([BASELINE, WITH_SA])
    assert set(readme_params()) == {BASELINE, WITH_SA}


@pytest.mark.parametrize('path', PATHS, ids=osp.basename)
def test_config_one_step(path):
    from mmctx.models.necks import SAFPN
    from mmseg.models.necks import FPN
    model, cfg = build_segmentor(path)
    assert cfg.custom_imports.imports == ['mmctx']
    if osp.basename(path) == WITH_SA:
        assert isinstance(model.neck, SAFPN)
        assert model.neck.attention.in_channels == 2048  # C5
    else:
        assert type(model.neck) is FPN
    randomise_zeros(model)  # no identity start: every connected parameter gets a gradient
    loss = train_step(model, size=64, batch=2)
    assert torch.isfinite(loss)
    assert_every_gradient(model)  # the attention (in WITH_SA) is trained
    n = sum(p.numel() for p in model.parameters())
    assert n / 1e6 == pytest.approx(readme_params()[osp.basename(path)], abs=0.006)


def test_the_rows_differ_only_in_the_attention():
    base, _ = build_segmentor(osp.join(GSA, BASELINE))
    sa, _ = build_segmentor(osp.join(GSA, WITH_SA))
    n_base = sum(p.numel() for p in base.parameters())
    n_att = sum(p.numel() for p in sa.neck.attention.parameters())
    assert n_att > 0
    assert sum(p.numel() for p in sa.parameters()) == n_base + n_att
    # the same FPN weights (mmseg's FPN and mmdet's, SAFPN's base, share the layout)
    fpn = {k: v.shape for k, v in sa.neck.state_dict().items() if not k.startswith('attention')}
    assert fpn == {k: v.shape for k, v in base.neck.state_dict().items()}


@pytest.mark.parametrize('path', PATHS, ids=osp.basename)
def test_setting(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    # data: mmseg's COCO-Stuff 164k (171 classes), 512x512 crops, 4 GPUs x 4 images
    assert cfg.train_dataloader.dataset.type == 'COCOStuffDataset'
    assert cfg.model.decode_head.num_classes == 171
    assert tuple(cfg.model.data_preprocessor.size) == (512, 512)
    crop, = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop']
    assert tuple(crop.crop_size) == (512, 512)
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.train_cfg.max_iters == 80000 == cfg.param_scheduler[0].end
    # Table 4's mIoU, fwIoU, mACC, pACC from one evaluator
    assert cfg.val_evaluator.type == cfg.test_evaluator.type == 'FWIoUMetric'
    # model: plain R-50 (torchvision weights, frozen BN), FPN, Panoptic-FPN-style semantic head
    assert cfg.model.backbone.type == 'ResNet' and cfg.model.backbone.depth == 50
    assert cfg.model.pretrained == 'torchvision://resnet50'
    assert cfg.model.backbone.norm_cfg == dict(type='BN', requires_grad=False)
    assert cfg.model.backbone.norm_eval
    assert cfg.model.decode_head.type == 'FPNHead'
    assert tuple(cfg.model.decode_head.feature_strides) == (4, 8, 16, 32)
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    # §4.5: Adam, then SGD
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    hook, = [h for h in cfg.custom_hooks if h.type == 'AdamToSGDHook']
    assert hook.switch_iter == 60000 and hook.sgd_cfg.type == 'SGD'
    if osp.basename(path) == WITH_SA:
        assert cfg.model.neck.type == 'mmdet.SAFPN'
        assert cfg.model.neck.attention_cfg.num_heads == 4  # 1 layer x 4 heads, Tables 1-2
        assert cfg.model.neck.attention_cfg.num_layers == 1
        # §3.4 / §4.5: the attention starts from the backbone checkpoint's c5 block 2
        init = cfg.model.neck.attention_cfg.init_cfg
        assert init.type == 'BottleneckAttentionInit' and init.prefix == 'layer4.1.'
        assert init.checkpoint == cfg.model.pretrained
    else:
        assert cfg.model.neck.type == 'FPN'


def test_pipelines_and_evaluator_build():
    """mmseg's COCO-Stuff pipelines and the evaluator / hook the config names build."""
    from mmcv.transforms import Compose
    from mmengine.registry import HOOKS
    from mmseg.registry import METRICS
    cfg = Config.fromfile(osp.join(GSA, WITH_SA))
    for pipeline in (cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline):
        assert len(Compose(pipeline).transforms) == len(pipeline)
    metric = METRICS.build(cfg.val_evaluator)
    assert type(metric).__name__ == 'FWIoUMetric'
    hook = HOOKS.build(cfg.custom_hooks[0])
    assert hook.switch_iter == 60000 and hook.sgd_cfg['lr'] == 0.01


def test_attention_starts_from_the_backbone_checkpoint(tmp_path):
    """Row (b): the segmentor's init_weights loads c5 block 2's conv1 / conv3 of the checkpoint
    the backbone loads into the SAFPN attention (here a checkpoint of the built backbone saved
    under the torchvision key names, which mmseg's ResNet shares)."""
    torch.manual_seed(0)
    model, cfg = build_segmentor(osp.join(GSA, WITH_SA))
    state = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    ckpt = str(tmp_path / 'resnet50.pth')
    torch.save(state, ckpt)
    model, _ = build_segmentor(osp.join(GSA, WITH_SA), **{
        'model.neck.attention_cfg.init_cfg.checkpoint': ckpt})
    layer = model.neck.attention.layers[0]
    assert not torch.equal(layer.query.weight, state['layer4.1.conv1.weight'])
    model.init_weights()
    assert torch.equal(layer.query.weight, state['layer4.1.conv1.weight'])
    assert torch.equal(layer.key.weight, state['layer4.1.conv1.weight'])
    assert torch.equal(layer.out.weight, state['layer4.1.conv3.weight'])
