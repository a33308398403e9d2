"""The Spatial Ranking Module trained alone, by mmengine's Runner.

Under ``train_input='gt'`` the SRM (OANet Sec. 3.2) shares no parameter
with the network it ranks for: it learns from ground-truth instance masks
and the panoptic labels where they overlap (Eq. 2). So it trains from
annotation files alone (:class:`~mmoanet.datasets.SRMAnnotationDataset`),
then joins a detector trained without it, e.g. one of mmdet's released
PanopticFPN checkpoints (:func:`mmoanet.apis.add_srm_to_checkpoint`).

Shape shorthand: B images in the batch, C_th thing classes, h x w the SRM
grid of the batch canvas (the largest image, at the SRM's stride).
"""
from typing import Dict, Optional, Union

from mmdet.registry import MODELS
from mmdet.structures import OptSampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModel
from torch import Tensor


@MODELS.register_module()
class StandaloneSRM(BaseModel):
    """A :class:`~mmoanet.models.SpatialRankingModule` and nothing else.

    Its ``state_dict`` keys are ``srm.*``; a PanopticFPN + SRM model holds
    the same tensors under ``panoptic_fusion_head.srm.*``.

    The batch is what :class:`~mmoanet.datasets.SRMAnnotationDataset`
    gives after ``pseudo_collate``: ``inputs`` unused (no image goes
    through a network) and ``data_samples`` with ``gt_instances`` and
    ``gt_sem_seg``. The data preprocessor only moves them to the device;
    the samples carry no ``batch_input_shape``, so the SRM's canvas is the
    largest image of the batch, smaller ones padded at the bottom and
    right.

    Args:
        srm (dict): Config of the SRM, e.g.
            ``dict(type='SpatialRankingModule', num_things_classes=80)``.
        data_preprocessor (dict, optional): Defaults to mmengine's
            ``BaseDataPreprocessor`` (moves the batch to the device).
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 srm: ConfigType,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.srm = MODELS.build(srm)

    def forward(self,
                inputs: Optional[object] = None,
                data_samples: OptSampleList = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], Tensor]:
        """Run the SRM on the ground-truth instances of a batch.

        Args:
            inputs: Unused (None per image from the dataset).
            data_samples (list[DetDataSample]): each with ``gt_instances``
                (``masks`` bool (N, H, W), ``labels`` long (N,)) and
                ``gt_sem_seg.sem_seg`` long (1, H, W).
            mode (str): ``'loss'``: ``dict(loss_srm=...)`` of Eq. 2.
                ``'tensor'``: the ranking logits, float (B, C_th, h, w), of
                the pasted ground-truth instances. ``'predict'`` is refused:
                the SRM alone makes no panoptic prediction.

        Returns:
            dict[str, Tensor] | Tensor: See ``mode``.
        """
        if data_samples is None:
            raise ValueError('StandaloneSRM needs data_samples with '
                             'gt_instances and gt_sem_seg')
        if mode == 'loss':
            return self.loss(data_samples)
        if mode == 'tensor':
            size = self.srm._canvas_size(data_samples)
            instances = [sample.gt_instances for sample in data_samples]
            instance_tensor = self.srm.paste(
                [inst.masks for inst in instances],
                [inst.labels for inst in instances], size)
            return self.srm(instance_tensor)
        if mode == 'predict':
            raise NotImplementedError(
                'StandaloneSRM makes no predictions of its own: the SRM '
                'ranks the instances of a detector. Evaluate it inside a '
                'PanopticFPN + SRM: add it to a PanopticFPN checkpoint '
                'with tools/model_converters/add_srm_to_panoptic_fpn.py, '
                'then run tools/test.py with a configs/panoptic_fpn_srm/ '
                'config (no val_cfg in the configs/srm/ configs for that '
                'reason).')
        raise ValueError(f'StandaloneSRM: mode {mode!r} is not one of '
                         "'loss', 'tensor', 'predict'")

    def loss(self, data_samples: OptSampleList) -> Dict[str, Tensor]:
        """``loss_srm`` of Eq. 2 on the batch's ground truth.

        The ground-truth instances are also handed over as the instance
        predictions, so an SRM configured with ``train_input='pred'`` or
        ``'both'`` learns from the same masks (those of a detector's
        results file, for ``configs/srm/srm-pred_*``).

        Returns:
            dict[str, Tensor]: ``loss_srm``, a scalar.
        """
        instances = [sample.gt_instances for sample in data_samples]
        return self.srm.loss(instances, data_samples)
