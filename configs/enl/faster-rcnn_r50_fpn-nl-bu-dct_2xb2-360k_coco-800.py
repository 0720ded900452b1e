# Levi & Ullman (ENL) Table 2 row "+1NL, BU" with relative position ("spat", not efficient):
# the "+1NL, BU" block plus the cos (DCT) position term added after the softmax
# (Eq. 7, as in the ENL: y = softmax(theta^T phi) g + E^[E^T g]; Table 3's best
# fusion, "cos add"; §5.1: it "didn't improve the results" on the BU stream).
_base_ = ['./faster-rcnn_r50_fpn-nl-bu_2xb2-360k_coco-800.py']

model = dict(backbone=dict(plugins=[dict(
    cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='explicit', similarity='exp',
             pos_enc='dct', pos_fusion='add', init_std=0.01),
    stages=(False, False, True, False), position='after_add', blocks=(-2, ))]))
