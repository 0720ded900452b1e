"""Each detection neck / backbone placement trains and evaluates through the real tools.

``tools/train.py`` trains a CPU-sized detector (ResNet-50 at a quarter width,
``base_channels=16``; 64-channel necks; few RoIs; 128 px shapes scenes) for a
few iterations and ``tools/test.py`` evaluates the checkpoint with the metric
of its task (COCO bbox, bbox + segm, PQ). Every case checks that the metric
lines are printed and in range, that ``--out`` holds one prediction of the
task's kind per scene, and that the context module trained: the run starts
from a saved init (``load_from``) or, for the C4 neck, from a ResNet
checkpoint through ``BottleneckAttentionInit``, and every weight tensor of the
context block (and of the rest of the neck) must have moved by more than
weight decay alone can move it.

Cases: EBFPN (Woo et al. (GCNL)) in Mask R-CNN, ENLFPN (Levi & Ullman (ENL)) in Faster R-CNN,
SAFPN (Lee et al.) in Panoptic FPN, C4SelfAttentionNeck (Lee et al.) in Faster
R-CNN C4, and a ContextResNet non-local block after the add of c4's
second-to-last block (Cao et al. (GCNet), Levi & Ullman (ENL) and Yuan et al. (OCNet)) in Faster R-CNN.
"""
import os.path as osp

import pytest
import torch

from tools_helpers import REPO, TEST, TRAIN, metric, run_tool, write_config

pytestmark = pytest.mark.usefixtures('mmdet_scope')

DATASETS = osp.join(REPO, 'configs', '_base_', 'datasets')
ITERS = 6
LR = 1e-3

# One template for every case; ``model`` adds the case's neck and heads.
TEMPLATE = '''
_base_ = [{model_base!r}, {data_base!r}, 'mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
data_root = {root!r}
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(base_channels=16, frozen_stages=-1, norm_cfg=norm_cfg,
                  norm_eval=False, init_cfg={backbone_init}{backbone}),
{model})
train_dataloader = dict(batch_size=2, sampler=dict(type='InfiniteSampler'),
                        dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
test_evaluator = dict(ann_file=data_root + {ann_file!r}{evaluator})
val_dataloader = val_cfg = val_evaluator = None  # no validation while training
train_cfg = dict(type='IterBasedTrainLoop', max_iters={iters})
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr={lr}, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10, norm_type=2))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval={iters}))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
'''

FPN = ("dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=64, "
       'num_outs=5)')
# Faster / Mask R-CNN FPN heads at 64 channels with few proposals and RoIs;
# after a few iterations no score passes 0.05: keep every box for the metric
RCNN_FPN = '''
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=128, num_classes=4){mask}),
    train_cfg=dict(rpn_proposal=dict(nms_pre=256, max_per_img=64),
                   rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=256, max_per_img=32),
                  {rcnn_test})'''
RCNN_TEST = 'rcnn=dict(score_thr=0.0, max_per_img=20)'
MASK = ''',
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64,
                       num_classes=4)'''
FASTER_HEADS = RCNN_FPN.format(mask='', rcnn_test=RCNN_TEST)
MASK_HEADS = RCNN_FPN.format(mask=MASK, rcnn_test=RCNN_TEST)
FASTER = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'
MASK_RCNN = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
BBOX = ('coco/bbox_mAP', 'coco/bbox_mAP_50')
SEGM = ('coco/segm_mAP', 'coco/segm_mAP_50')
PQ = ('coco_panoptic/PQ', 'coco_panoptic/SQ', 'coco_panoptic/RQ')

CASES = {
    # Woo et al. (GCNL): FPN, then the balanced pyramid refined by a GCNL block
    'EBFPN-mask-rcnn': dict(
        model_base=MASK_RCNN, data='shapes_instance.py', metrics=BBOX + SEGM,
        model=f'''
    neck=[{FPN},
          dict(type='EBFPN', in_channels=64, num_levels=5, refine_level=2,
               refine_cfg=dict(type='GCNLBlock', reduction=1, num_heads=8,
                               sub_sample=True))],''' + MASK_HEADS),
    # Levi & Ullman (ENL): efficient non-local blocks on the top-down path
    'ENLFPN-faster-rcnn': dict(
        model_base=FASTER, data='shapes_detection.py', metrics=BBOX,
        model='''
    neck=dict(type='ENLFPN', in_channels=[64, 128, 256, 512], out_channels=64,
              num_outs=5),''' + FASTER_HEADS),
    # Lee et al. Fig. 4 / Table 5: self-attention between C5 and P5, panoptic
    'SAFPN-panoptic-fpn': dict(
        model_base=MASK_RCNN, data='shapes_panoptic.py', metrics=PQ,
        ann_file='annotations/panoptic_val.json',
        evaluator=", seg_prefix=data_root + 'annotations/panoptic_val/'",
        model='''
    type='PanopticFPN',
    data_preprocessor=dict(pad_mask=True, mask_pad_value=0, pad_seg=True,
                           seg_pad_value=255),
    neck=dict(type='SAFPN', in_channels=[64, 128, 256, 512], out_channels=64,
              num_outs=5,
              attention_cfg=dict(type='BottleneckSelfAttention', reduction=4,
                                 num_heads=4)),
    semantic_head=dict(
        type='PanopticFPNHead', num_things_classes=4, num_stuff_classes=2,
        in_channels=64, inner_channels=32, start_level=0, end_level=4,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        loss_seg=dict(type='CrossEntropyLoss', ignore_index=255,
                      loss_weight=0.5)),
    panoptic_fusion_head=dict(type='HeuristicFusionHead',
                              num_things_classes=4, num_stuff_classes=2),''' +
        RCNN_FPN.format(
            mask=MASK,
            # mmdet's Panoptic FPN test settings; stuff_area_limit scaled
            # from 4096 px at COCO size to the 128 px scenes
            rcnn_test='''rcnn=dict(
                      score_thr=0.6, max_per_img=20, mask_thr_binary=0.5,
                      nms=dict(type='nms', iou_threshold=0.5,
                               class_agnostic=True)),
                  panoptic=dict(mask_overlap=0.5, stuff_area_limit=256)''')),
    # Lee et al. Fig. 3: self-attention on C4 before the RPN; the attention
    # starts from the 1x1 convs of c4's block 2 in the backbone's checkpoint.
    # The C5 RoI head is a ResNet-18 c5 (256 -> 512 channels), which takes
    # the quarter-width ResNet-50's C4 (mmdet's ResLayer has no width option)
    'C4SelfAttentionNeck-faster-rcnn-c4': dict(
        model_base='mmdet::_base_/models/faster-rcnn_r50-caffe-c4.py',
        data='shapes_detection.py', metrics=BBOX,
        backbone_init="dict(type='Pretrained', checkpoint={ckpt!r})",
        model='''
    neck=dict(type='C4SelfAttentionNeck', in_channels=256,
              attention_cfg=dict(
                  type='BottleneckSelfAttention', reduction=4, num_heads=4,
                  init_cfg=dict(type='BottleneckAttentionInit',
                                checkpoint={ckpt!r}, prefix='layer3.1.'))),
    rpn_head=dict(in_channels=256, feat_channels=64),
    roi_head=dict(
        shared_head=dict(depth=18, norm_cfg=norm_cfg, norm_eval=False,
                         init_cfg=None),
        bbox_roi_extractor=dict(out_channels=256),
        bbox_head=dict(in_channels=512, num_classes=4)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=256, max_per_img=32),
                   rcnn=dict(sampler=dict(num=16))),
    test_cfg=dict(rpn=dict(nms_pre=256, max_per_img=16),
                  rcnn=dict(score_thr=0.0, max_per_img=20))'''),
    # Cao et al. (GCNet), Levi & Ullman (ENL) and Yuan et al. (OCNet): one non-local block right before the last block
    # of c4, after the residual add
    'ContextResNet-after-add-faster-rcnn': dict(
        model_base=FASTER, data='shapes_detection.py', metrics=BBOX,
        backbone='''
                  type='ContextResNet',
                  plugins=[dict(cfg=dict(type='NonLocal2dBlock', reduction=2),
                                stages=(False, False, True, False),
                                position='after_add', blocks=(-2, ))]''',
        model=f'''
    neck={FPN},''' + FASTER_HEADS),
}


def _config_text(case, root, ckpt=None):
    c = CASES[case]
    backbone = c.get('backbone', '')
    return TEMPLATE.format(
        model_base=c['model_base'], data_base=osp.join(DATASETS, c['data']),
        root=root, backbone_init=c.get('backbone_init', 'None').format(ckpt=ckpt),
        backbone=',' + backbone if backbone else '',
        model=c['model'].format(ckpt=ckpt),
        ann_file=c.get('ann_file', 'annotations/instances_val.json'),
        evaluator=c.get('evaluator', ''), iters=ITERS, lr=LR)


def _build(cfg_path):
    """The config's model, initialised as tools/train.py initialises it."""
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(cfg_path)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


# where each case's context module lives in the detector
BLOCKS = {
    'EBFPN-mask-rcnn': 'neck.1.refine.',
    'ENLFPN-faster-rcnn': 'neck.td_blocks.',
    'SAFPN-panoptic-fpn': 'neck.attention.',
    'C4SelfAttentionNeck-faster-rcnn-c4': 'neck.attention.',
}


def _trained_params(case, model):
    """{name: minimal move} of the weights that must have trained: the
    context block's by > LR / 10 (AdamW moves a parameter with gradients by
    ~LR a step), the rest of the neck's by > 1e-5 (weight decay alone moves
    p by ITERS * LR * 1e-4 * |p| < 1e-6 |p|). Biases are left out: a key
    bias has no gradient (softmax over keys cancels it)."""
    if case.startswith('ContextResNet'):
        block = model.backbone.layer3[-2]
        (name, ) = block.after_add_plugin_names
        assert type(getattr(block, name)).__name__ == 'NonLocal2dBlock'
        index = len(model.backbone.layer3) - 2
        prefix = f'backbone.layer3.{index}.{name}.'
    else:
        prefix = BLOCKS[case]
    params = {}
    for n, p in model.named_parameters():
        if p.dim() < 2:
            continue
        if n.startswith(prefix):
            params[n] = LR / 10
        elif n.startswith('neck.'):
            params[n] = 1e-5
    assert any(n.startswith(prefix) for n in params), prefix
    return params


@pytest.fixture(scope='module')
def resnet_ckpt(tmp_path_factory):
    """A random quarter-width caffe ResNet-50 (c1-c4) checkpoint, as if
    pre-trained: the C4 case's backbone and attention init load it."""
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    resnet = MODELS.build(dict(type='ResNet', depth=50, base_channels=16,
                               num_stages=3, strides=(1, 2, 2),
                               dilations=(1, 1, 1), out_indices=(2, ),
                               style='caffe'))
    resnet.init_weights()
    path = str(tmp_path_factory.mktemp('resnet') / 'resnet50w16_caffe.pth')
    torch.save(resnet.state_dict(), path)
    return path, resnet.state_dict()


@pytest.mark.parametrize('case', list(CASES))
def test_trains_and_tests_through_the_tools(case, tmp_path, shapes_root,
                                            resnet_ckpt):
    ckpt_path, resnet_state = resnet_ckpt
    cfg = write_config(tmp_path, _config_text(case, shapes_root, ckpt_path))
    work = str(tmp_path / 'work')
    options = []
    c4 = case.startswith('C4')
    model = _build(cfg)
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    minimal_moves = _trained_params(case, model)
    if not c4:  # start from this init (the C4 case: from the ResNet checkpoint)
        torch.save(dict(state_dict=model.state_dict()), tmp_path / 'init.pth')
        options = ['--cfg-options', f'load_from={tmp_path / "init.pth"}']

    _, out = run_tool(TRAIN, cfg, '--work-dir', work, *options)
    assert f'Iter(train) [{ITERS}/{ITERS}]' in out
    ckpt = osp.join(work, f'iter_{ITERS}.pth')
    trained = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']

    for name, minimal in minimal_moves.items():
        moved = (trained[name] - init[name]).abs().max().item()
        assert moved > minimal, f'{name} did not train ({moved:.2e})'
    if c4:
        # tools/train.py ran BottleneckAttentionInit: the trained attention is
        # still close to the ResNet block it started from (ITERS AdamW steps
        # of ~LR), far from the N(0, 0.01) default
        conv1 = resnet_state['layer3.1.conv1.weight']
        conv3 = resnet_state['layer3.1.conv3.weight']
        for dense, ref in (('query', conv1), ('key', conv1), ('value', conv1),
                           ('out', conv3)):
            w = trained[f'neck.attention.layers.0.{dense}.weight']
            assert (w - ref).abs().max() < 3 * ITERS * LR, dense
            assert ref.std() > 0.05
        assert 'BottleneckAttentionInit' in out

    pred = str(tmp_path / 'pred.pkl')
    _, out = run_tool(TEST, cfg, ckpt, '--work-dir', str(tmp_path / 'test'),
                      '--out', pred)
    panoptic = CASES[case]['metrics'] == PQ
    values = {name: metric(out, name) for name in CASES[case]['metrics']}
    print(f'\n{case}: {values}')
    assert all(0.0 <= v <= (100.0 if panoptic else 1.0)
               for v in values.values()), values
    _check_predictions(pred, with_masks=CASES[case]['metrics'] == BBOX + SEGM,
                       panoptic=panoptic)


def _check_predictions(path, with_masks, panoptic):
    """The evaluated predictions: one per validation scene, of the task's kind."""
    import pickle
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    with open(path, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 4
    for r in results:
        assert tuple(r['ori_shape']) == (128, 128)
        if panoptic:
            ids = r['pred_panoptic_seg']['sem_seg']
            assert ids.shape == (1, 128, 128)
            assert int((ids % INSTANCE_OFFSET).max()) <= 6  # 6 = void
            continue
        inst = r['pred_instances']
        n = len(inst['scores'])
        assert 0 < n <= 20 and inst['bboxes'].shape == (n, 4)
        assert int(inst['labels'].max()) < 4
        if with_masks:
            assert len(inst['masks']) == n
