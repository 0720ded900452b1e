"""mmctx.utils.tool_config: the config steps tools/train.py and tools/test.py share."""
import argparse
import os.path as osp

import pytest

from mmctx.utils import add_runner_args, load_tool_config


def _args(config, *argv):
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_runner_args(parser)
    return parser.parse_args([config, *argv])


def _write(tmp_path, text, name='my_cfg.py'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_scope_options_and_default_work_dir(tmp_path):
    cfg_file = _write(tmp_path, "default_scope = 'mmseg'\nmodel = dict(depth=50)\n")
    cfg, scope = load_tool_config(_args(cfg_file, '--cfg-options', 'model.depth=18'))
    assert scope == 'mmseg'
    assert cfg.model.depth == 18
    assert cfg.launcher == 'none'
    assert cfg.work_dir == osp.join('./work_dirs', 'my_cfg')


def test_work_dir_precedence(tmp_path):
    cfg_file = _write(tmp_path, "default_scope = 'mmdet'\nwork_dir = 'from_cfg'\n")
    assert load_tool_config(_args(cfg_file))[0].work_dir == 'from_cfg'
    cfg, _ = load_tool_config(_args(cfg_file, '--work-dir', 'from_cli'))
    assert cfg.work_dir == 'from_cli'


@pytest.mark.parametrize('scope_line', ['', "default_scope = 'mmcls'\n"])
def test_other_scopes_are_refused_with_the_reason(tmp_path, scope_line):
    cfg_file = _write(tmp_path, scope_line + 'model = dict()\n')
    with pytest.raises(ValueError, match="default_scope.*'mmdet', 'mmseg'"):
        load_tool_config(_args(cfg_file))


def test_close_distributed_destroys_the_process_group(tmp_path):
    import torch.distributed as dist

    from mmctx.utils import close_distributed
    close_distributed()  # no group: nothing to do
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/rendezvous',
                            rank=0, world_size=1)
    assert dist.is_initialized()
    close_distributed()
    assert not dist.is_initialized()


BIG_CFG = """default_scope = 'mmdet'
model = dict(type='M', backbone=dict(depth=50, init_cfg=None))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))
train_pipeline = [dict(type='A'), dict(type='B', scale=(8, 8))]
"""


@pytest.mark.parametrize('option,words', [
    ('optim_wraper.optimizer.lr=0.5',
     ["the config has no key 'optim_wraper'",
      "(did you mean 'optim_wrapper'?)"]),
    ('optim_wraper=1', ["did you mean 'optim_wrapper'"]),
    ('model.bakbone.depth=18',
     ["model has no key 'bakbone'", "did you mean 'backbone'"]),
    ('model.backbone.depht.x=1', ["model.backbone has no key 'depht'"]),
    ('train_pipeline.2.scale=(4,4)',
     ["train_pipeline is a list of 2 items, '2' is not an index"]),
    ('randomnes.seed=1', ["did you mean 'randomness'"]),
])
def test_misspelt_override_paths_are_refused(tmp_path, option, words):
    cfg_file = _write(tmp_path, BIG_CFG)
    with pytest.raises(ValueError) as info:
        load_tool_config(_args(cfg_file, '--cfg-options', option))
    msg = str(info.value)
    for word in words + ['--allow-new-cfg-keys']:
        assert word in msg, msg


def test_every_bad_override_is_listed_at_once(tmp_path):
    cfg_file = _write(tmp_path, BIG_CFG)
    with pytest.raises(ValueError) as info:
        load_tool_config(_args(cfg_file, '--cfg-options', 'a.b=1', 'c=2',
                               'model.depth=3'))
    msg = str(info.value)
    assert "a.b: the config has no key 'a'" in msg
    assert "c: the config has no key 'c'" in msg
    assert 'model.depth' not in msg  # a new last key is a new argument


def test_valid_overrides_and_the_opt_out(tmp_path):
    cfg_file = _write(tmp_path, BIG_CFG)
    cfg, _ = load_tool_config(_args(
        cfg_file, '--cfg-options', 'optim_wrapper.optimizer.lr=0.5',
        'model.backbone.new_arg=1', 'train_pipeline.1.scale=(4,4)',
        'randomness.seed=3', 'data_check.skip=True', 'load_from=x.pth'))
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.model.backbone.new_arg == 1
    assert cfg.train_pipeline[1].scale == (4, 4)
    assert cfg.randomness.seed == 3 and cfg.data_check.skip is True
    assert cfg.load_from == 'x.pth'
    cfg, _ = load_tool_config(_args(
        cfg_file, '--allow-new-cfg-keys', '--cfg-options',
        'optim_wraper.optimizer.lr=0.5', 'model.neck.x=1'))
    assert cfg.optim_wraper.optimizer.lr == 0.5 and cfg.model.neck.x == 1
    # the optimizer itself was not touched
    assert cfg.optim_wrapper.optimizer.lr == 0.1
