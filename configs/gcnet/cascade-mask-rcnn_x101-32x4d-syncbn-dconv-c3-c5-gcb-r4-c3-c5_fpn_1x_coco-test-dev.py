# Cao et al., Global Context Networks, Table 7(b): the Table 7(a) model of
# cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5-gcb-r4-c3-c5_fpn_1x_coco.py, evaluated on COCO test-dev. tools/test.py
# writes the box and mask results json to submit to the COCO server (format_only: test-dev
# has no public labels); validation during training stays on val2017.
_base_ = './cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5-gcb-r4-c3-c5_fpn_1x_coco.py'

test_dataloader = dict(dataset=dict(ann_file='annotations/image_info_test-dev2017.json',
                                    data_prefix=dict(img='test2017/')))
test_evaluator = dict(format_only=True,
                      ann_file='data/coco/annotations/image_info_test-dev2017.json',
                      outfile_prefix='./work_dirs/cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5-gcb-r4-c3-c5_fpn_1x_coco-test-dev/results')
