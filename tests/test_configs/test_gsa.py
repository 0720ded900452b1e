"""configs/gsa against their rows in configs/gsa/metafile.yml (Lee, Kim and Jung,
*Improving Object Detection Quality by Incorporating Global Contexts via
Self-Attention*).

Rows of one table differ by the backbone depth, the optimizer (Adam + SGD or
SGD with momentum, Table 6) and the self-attention's layers x heads (Table 3):
each config's settings are read from the file and compared with its metafile
entry, so a config on the wrong optimizer, depth or head count fails here.
The optimizer schedule itself is run: the config's optimizer, param
schedulers and AdamToSGDHook are built and stepped through the 12 epochs.
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmctx.utils.metafile import REPO, metafile_models
from zoo_helpers import check_configs_are_the_entries, check_paper_rows, check_readme_rendered

GSA = osp.join(REPO, 'configs', 'gsa')
MODELS = metafile_models('gsa')
#: the SGD setting of each detector / segmentor in mmdet / mmseg
SGD_LR = {'FasterRCNN': 0.02, 'PanopticFPN': 0.02, 'RetinaNet': 0.01, 'EncoderDecoder': 0.01}


def test_every_config_has_one_entry_and_every_entry_a_config():
    check_configs_are_the_entries('gsa')


def test_every_paper_row_is_reproduced_once():
    # Tables 1, 2: four rows; 3: ten layer x head settings; 4, 5: two; 6: twelve
    check_paper_rows('gsa', {'Table 1': 4, 'Table 2': 4, 'Table 3': 10, 'Table 4': 2,
                             'Table 5': 2, 'Table 6': 12})


def test_readme_tables_are_rendered_from_the_metafile():
    check_readme_rendered('gsa')


def test_model_zoo_tables_tool_checks(tmp_path):
    tool = osp.join(REPO, 'tools', 'misc', 'model_zoo_tables.py')
    out = subprocess.run([sys.executable, tool, '--check', 'gsa'], capture_output=True,
                         text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


def _hook(cfg):
    hooks = [h for h in cfg.get('custom_hooks', []) if h.type == 'AdamToSGDHook']
    assert len(hooks) <= 1
    return hooks[0] if hooks else None


@pytest.mark.parametrize('name', sorted(MODELS))
def test_config_matches_its_row(name):
    entry = MODELS[name]['Metadata']
    cfg = Config.fromfile(osp.join(GSA, name))
    model = cfg.model
    assert f'R-{model.backbone.depth}' == entry['Backbone']
    neck = model.get('neck', {})
    attention = entry['Self-attention (layers x heads)']
    if attention == 'none':
        assert neck.get('type') in ('FPN', None), neck.get('type')
    else:
        assert neck.type in ('SAFPN', 'mmdet.SAFPN', 'C4SelfAttentionNeck')
        att = neck.attention_cfg
        assert f'{att.num_layers} x {att.num_heads}' == attention
        # initialised from the checkpoint the backbone loads, at the block of its width
        ckpt = model.backbone.init_cfg.checkpoint if model.backbone.get('init_cfg') \
            else model.pretrained
        assert att.init_cfg.checkpoint == ckpt
        # one non-first bottleneck of the stage of the module's width per layer
        stage = 'layer3' if neck.type == 'C4SelfAttentionNeck' else 'layer4'
        prefix = [f'{stage}.{i}.' for i in range(1, att.num_layers + 1)]
        assert att.init_cfg.prefix == (prefix[0] if att.num_layers == 1 else prefix)
    hook, opt = _hook(cfg), cfg.optim_wrapper.optimizer
    sgd_lr = SGD_LR[model.type]
    if entry['Optimizer'] == 'Adam + SGD':
        assert opt.type == 'Adam' and opt.lr == 1e-4
        assert hook is not None and hook.sgd_cfg['type'] == 'SGD'
        assert hook.sgd_cfg['lr'] == sgd_lr and hook.sgd_cfg['momentum'] == 0.9
    else:
        assert entry['Optimizer'] == 'SGD'
        assert hook is None
        assert opt.type == 'SGD' and opt.lr == sgd_lr and opt.momentum == 0.9
    if model.type != 'EncoderDecoder':  # mmdet's 1x: 12 epochs of 16 images
        assert cfg.train_cfg.max_epochs == 12
        assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs


def _lr_per_epoch(cfg, iters_per_epoch=10):
    """Build the config's optimizer, schedulers and hook on a toy model and run
    the training loop's calls; the lr and optimizer type of each epoch's last iteration."""
    from types import SimpleNamespace

    import mmctx  # noqa: F401
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import HOOKS, PARAM_SCHEDULERS
    from mmengine.logging import MMLogger

    model = torch.nn.Linear(2, 1)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper.optimizer))
                  for s in cfg.param_scheduler]
    hook_cfg = _hook(cfg)
    hook = HOOKS.build(hook_cfg) if hook_cfg else None
    runner = SimpleNamespace(optim_wrapper=wrapper, param_schedulers=schedulers, iter=0,
                             epoch=0, logger=MMLogger.get_current_instance())
    seen = []
    for epoch in range(cfg.train_cfg.max_epochs):
        runner.epoch = epoch
        if hook:
            hook.before_train_epoch(runner)
        for _ in range(iters_per_epoch):
            if hook:
                hook.before_train_iter(runner, runner.iter)
            loss = model(torch.ones(1, 2)).sum()
            runner.optim_wrapper.update_params(loss)
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
            runner.iter += 1
        opt = runner.optim_wrapper.optimizer
        seen.append((type(opt).__name__, opt.param_groups[0]['lr']))
        for s in schedulers:
            if s.by_epoch:
                s.step()
    return seen


@pytest.mark.parametrize('name', ['faster-rcnn_r50-caffe-c4-gsa_adam-sgd-1x_coco-600.py',
                                  'retinanet_r50_fpn_adam-sgd-1x_coco-600.py',
                                  'retinanet_r101_fpn-gsa_sgd-1x_coco-600.py'])
def test_schedule_of_the_configs(name):
    """Adam + SGD: Adam 1e-4 for epochs 1-8, SGD at the detector's lr for 9-11,
    x0.1 for epoch 12; SGD with momentum: mmdet's 1x steps at epochs 8 and 11."""
    cfg = Config.fromfile(osp.join(GSA, name))
    # a 10-iteration epoch: the 500-iteration warm-up runs over the first 50 epochs' worth;
    # shorten it to 5 iterations to see the plateaus
    cfg.param_scheduler[0].end = 5
    seen = _lr_per_epoch(cfg)
    sgd = SGD_LR[cfg.model.type]
    if MODELS[name]['Metadata']['Optimizer'] == 'Adam + SGD':
        expected = [('Adam', 1e-4)] * 8 + [('SGD', sgd)] * 3 + [('SGD', sgd * 0.1)]
    else:
        expected = [('SGD', sgd)] * 8 + [('SGD', sgd * 0.1)] * 3 + [('SGD', sgd * 0.01)]
    assert [t for t, _ in seen] == [t for t, _ in expected]
    assert [lr for _, lr in seen] == pytest.approx([lr for _, lr in expected], rel=1e-6)


def test_semantic_schedule_switches_at_60k_and_decays_sgd():
    cfg = Config.fromfile(osp.join(GSA, 'sem-fpn_r50_fpn-gsa_adam-sgd-4xb4-80k_coco-stuff164k-512x512.py'))
    hook = _hook(cfg)
    assert hook.switch_iter == 60000 and cfg.train_cfg.max_iters == 80000
    poly, = cfg.param_scheduler
    assert poly.type == 'PolyLR' and poly.eta_min == 1e-4 and poly.end == 80000
