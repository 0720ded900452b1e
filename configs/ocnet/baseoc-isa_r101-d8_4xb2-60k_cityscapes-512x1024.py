# OCNet (Yuan et al.) Tables 1, 2, 5 (Cityscapes val): + Base-OC (ISA); P_h = P_w = 8
# (the OCP's default), global relation then local relation.
# variant='official': the ISA block of the authors' released code, which produced
# the tables (rho conv-BN-ReLU, values of C channels, symmetric padding), set in
# ./_base_/models/baseoc-isa_{r101-d8,hr48}.py (the R-50 ADE20K leaf writes its own)
# (see mmctx/models/decode_heads/base_oc_head.py).
_base_ = [
    './_base_/models/baseoc-isa_r101-d8.py', './_base_/datasets/cityscapes_512x1024.py',
    'mmseg::_base_/default_runtime.py', './_base_/schedules/cityscapes_60k.py'
]
crop_size = (512, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
