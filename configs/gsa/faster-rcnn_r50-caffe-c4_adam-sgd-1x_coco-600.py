# Lee et al. Table 1 (a) R-50; Table 6 Adam + SGD.
_base_ = ['./_base_/faster-rcnn_r50-caffe-c4_600-1024.py']
