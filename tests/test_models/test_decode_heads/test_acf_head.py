"""ACFHead (mmctx/models/decode_heads/acf_head.py): a ContextBlockHead with the ACF module
(Zhang et al., "ACFNet: Attentional Class Feature Network for Semantic Segmentation"), whose
coarse segmentation gets its own, weighted loss. The module is tested in
test_layers/test_acf.py, the layout in test_context_block_head.py."""
import pytest
import torch
from mmseg.registry import MODELS

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def _samples(n, size=5, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(size, size)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, size, size), generator=g))
        samples.append(s)
    return samples


def test_acf_head_losses_are_the_fine_and_the_weighted_coarse_ce():
    import mmctx  # noqa: F401
    torch.manual_seed(0)
    head = MODELS.build(dict(type='ACFHead', in_channels=16, channels=8, num_classes=3,
                             norm_cfg=dict(type='BN'), coarse_loss_weight=0.25,
                             dropout_ratio=0.0)).eval()
    assert head.context_block.num_classes == head.out_channels == 3
    assert isinstance(head.context_block.fuse.bn, torch.nn.BatchNorm2d)  # the head's norm
    x = torch.randn(2, 16, 5, 5)
    samples = _samples(2)
    losses = head.loss([x], samples, None)
    assert {'loss_ce', 'coarse.loss_ce'} <= set(losses)
    with torch.no_grad():
        target = torch.stack([s.gt_sem_seg.data[0] for s in samples])
        coarse = head.context_block.coarse_seg(head.convs[0](x))
        expected = 0.25 * torch.nn.functional.cross_entropy(coarse, target, ignore_index=255)
        torch.testing.assert_close(losses['coarse.loss_ce'], expected)
        fine = torch.nn.functional.cross_entropy(head([x]), target, ignore_index=255)
        torch.testing.assert_close(losses['loss_ce'], fine)
    head.train()
    losses = head.loss([x], samples, None)
    (losses['loss_ce'] + losses['coarse.loss_ce']).backward()
    assert head.context_block.coarse_seg.weight.grad.abs().sum() > 0
