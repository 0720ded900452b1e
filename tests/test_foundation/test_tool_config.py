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
