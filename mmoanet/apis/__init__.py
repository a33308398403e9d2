from .experiment import (build_test_runner, evaluate_checkpoint,
                         find_train_script, order_table, plot_loss_curve,
                         read_training_scalars, run_command, run_options,
                         train_command, train_in_subprocess)
from .fusion_inputs import (FusionInputRecorder, attach_detections,
                            fusion_inputs, keep_detections)
from .inference import (ANNOTATION_LOADERS, UnknownCategoryIdsError,
                        coco_categories, inference_panoptic, init_model,
                        model_index_entry, panoptic_to_coco)
from .instance_predictions import (SPLITS, NoPredictionsError,
                                   collect_instance_predictions,
                                   dump_instance_predictions, encode_masks,
                                   split_dataloader, thing_category_ids)
from .panoptic_inferencer import (InputError, PanopticInferencer,
                                  inference_summary)
from .srm_checkpoint import (SRMMergeError, add_srm_to_checkpoint,
                             merge_srm_state)

__all__ = [
    'ANNOTATION_LOADERS', 'UnknownCategoryIdsError', 'coco_categories',
    'inference_panoptic', 'init_model', 'model_index_entry',
    'panoptic_to_coco', 'InputError', 'PanopticInferencer',
    'inference_summary', 'evaluate_checkpoint', 'find_train_script',
    'order_table', 'plot_loss_curve', 'read_training_scalars', 'run_options',
    'train_in_subprocess', 'build_test_runner', 'run_command', 'train_command',
    'SRMMergeError', 'add_srm_to_checkpoint', 'merge_srm_state',
    'FusionInputRecorder', 'attach_detections', 'fusion_inputs',
    'keep_detections', 'SPLITS', 'NoPredictionsError',
    'collect_instance_predictions', 'dump_instance_predictions',
    'encode_masks', 'split_dataloader', 'thing_category_ids'
]
