# Lee et al., Table 1 (c) R-101 (33.9) = Table 6 Faster R-CNN R-101, Adam + SGD.
_base_ = ['./_base_/faster-rcnn_r101-caffe-c4_600-1024.py']
