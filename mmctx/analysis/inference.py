"""Load a trained mmdet / mmseg model and run it, whichever library owns the config."""
from typing import Optional

import numpy as np
import torch.nn as nn
from mmengine.config import Config

from ..utils.scope import task_scope
from ..utils.setup_env import register_all_modules

__all__ = ['load_model', 'infer_image']


def load_model(config, checkpoint: Optional[str], device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """A model in eval mode with ``checkpoint`` loaded (mmdet or mmseg API)."""
    register_all_modules()
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if task_scope(cfg) == 'mmdet':
        from mmdet.apis import init_detector
        return init_detector(cfg, checkpoint, device=device, cfg_options=cfg_options)
    from mmseg.apis import init_model
    return init_model(cfg, checkpoint, device=device, cfg_options=cfg_options)


def infer_image(model: nn.Module, image: np.ndarray):
    """Run a model from :func:`load_model` on one BGR image through its test pipeline."""
    if task_scope(model.cfg) == 'mmseg':
        from mmseg.apis import inference_model
        return inference_model(model, image)
    from mmdet.apis import inference_detector
    return inference_detector(model, image)
