# The SRM of configs/srm/srm_1x7-7x1_15k_coco-panoptic.py, trained from a
# detector's predictions on the training images instead of the instance
# annotations (OANet's train_input='pred', with the predictions made once),
# for a set with panoptic annotations only. The predicted masks overlap; the
# targets still come from the panoptic PNGs.
#
#   python tools/analysis_tools/dump_instance_predictions.py \
#       DETECTOR_CONFIG DETECTOR_CHECKPOINT \
#       --out data/coco/annotations/instances_train2017_pred.json
#   python tools/train.py configs/srm/srm-pred_1x7-7x1_15k_coco-panoptic.py
#
# min_score drops predictions scored lower (0: keep all).
_base_ = './srm_1x7-7x1_15k_coco-panoptic.py'

train_dataloader = dict(
    dataset=dict(
        ins_ann_file='annotations/instances_train2017_pred.json',
        min_score=0.0))
