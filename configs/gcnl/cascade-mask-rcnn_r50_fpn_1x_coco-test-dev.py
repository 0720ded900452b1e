# Woo et al., "Global Context and Geometric Priors for Effective Non-Local Self-Attention",
# Table 2 (COCO test-dev): the model of cascade-mask-rcnn_r50_fpn_1x_coco.py evaluated on test-dev;
# tools/test.py writes the results json to submit (format_only: test-dev has no public labels).
_base_ = './cascade-mask-rcnn_r50_fpn_1x_coco.py'

test_dataloader = dict(dataset=dict(ann_file='annotations/image_info_test-dev2017.json',
                                    data_prefix=dict(img='test2017/')))
test_evaluator = dict(format_only=True,
                      ann_file='data/coco/annotations/image_info_test-dev2017.json',
                      outfile_prefix='./work_dirs/cascade-mask-rcnn_r50_fpn_1x_coco-test-dev/results')
