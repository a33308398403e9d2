"""What a panoptic detector hands its fusion head, taken as it passes.

mmdet's panoptic segmentors (PanopticFPN) and OANet run the RoI head, then
the semantic head, then ``panoptic_fusion_head.predict(mask_results_list,
seg_preds_list, ...)``, and mmdet's keep only the fused panoptic map. The
instance predictions given to the fusion head are what the prediction
dump writes, what a study feeds other fusion heads, and what metrics that
tell a missed thing from a buried one need: this module is the one place
that takes them.

Shape shorthand: N instances, H x W the original image size, C the
semantic channels of the detector.
"""
import copy
import sys
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from mmengine.utils import ProgressBar

__all__ = [
    'FusionInputRecorder', 'fusion_inputs', 'attach_detections',
    'keep_detections'
]

#: ``(mask_results_list, seg_preds_list, batch_img_metas)`` of one call.
FusionCall = Tuple[List[InstanceData], List[torch.Tensor], Optional[list]]


class FusionInputRecorder:
    """Records each call of a fusion head's ``predict``, then runs it.

    While installed, ``head.predict`` is replaced by this object: each call
    appends its instance predictions (``masks`` bool (N, H, W), ``labels``,
    ``scores``, ``bboxes``, at the original image size since the detectors
    call the RoI head with ``rescale=True``), its semantic scores (float,
    (C, H, W) each) and the image metas to :attr:`calls`, and the original
    ``predict`` runs on the same arguments. A context manager: the original
    ``predict`` comes back on exit.

    Args:
        head (nn.Module): The detector's ``panoptic_fusion_head``.
        copy_inputs (bool): Record copies, safe from what the fusion head
            does to its arguments. False records the objects themselves
            (no copying time, e.g. while inference is timed). Defaults to
            True.

    Attributes:
        calls (list[tuple]): One ``(mask_results_list, seg_preds_list,
            batch_img_metas)`` per call, oldest first.
    """

    def __init__(self, head: torch.nn.Module, copy_inputs: bool = True):
        self.head = head
        self.copy_inputs = copy_inputs
        self.original = head.predict
        self.calls: List[FusionCall] = []
        head.predict = self

    def __call__(self, mask_results_list, seg_preds_list, *args, **kwargs):
        metas = args[0] if args else kwargs.get('batch_img_metas')
        if self.copy_inputs:
            self.calls.append((copy.deepcopy(mask_results_list),
                               [seg.clone() for seg in seg_preds_list], metas))
        else:
            self.calls.append((mask_results_list, seg_preds_list, metas))
        return self.original(mask_results_list, seg_preds_list, *args,
                             **kwargs)

    def remove(self) -> None:
        """Give the head its own ``predict`` back."""
        self.head.predict = self.original

    def __enter__(self) -> 'FusionInputRecorder':
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


def fusion_inputs(
    model: torch.nn.Module,
    loader: Iterable,
    max_images: Optional[int] = None,
    progress: bool = True
) -> Iterator[Tuple[dict, List[DetDataSample], FusionCall]]:
    """Run ``model.test_step`` batch by batch, yielding its fusion inputs.

    The fusion head runs as usual; its ``predict`` is restored when the
    iteration ends or the generator is closed (``contextlib.closing`` where
    a loop may stop early). Gradients are not switched off here.

    Args:
        model (nn.Module): A panoptic detector whose ``test_step`` calls
            ``panoptic_fusion_head.predict`` once per batch.
        loader (Iterable): Batches for ``test_step``; ``loader.dataset``
            gives the length of the progress bar.
        max_images (int, optional): Stop after this many images.
        progress (bool): Show a progress bar. Defaults to True.

    Yields:
        tuple: the data batch, the samples ``test_step`` returned, and the
        fusion head's inputs ``(mask_results_list, seg_preds_list,
        batch_img_metas)``, copied before the fusion head saw them.
    """
    total = len(loader.dataset)
    if max_images is not None:
        total = min(total, max_images)
    bar = ProgressBar(total) if progress else None
    num_images = 0
    with FusionInputRecorder(model.panoptic_fusion_head) as recorder:
        for data_batch in loader:
            if max_images is not None and num_images >= max_images:
                break
            samples = model.test_step(data_batch)
            num_images += len(samples)
            if bar is not None:
                for _ in samples:
                    bar.update()
            yield data_batch, samples, recorder.calls.pop()
    if bar is not None:
        sys.stdout.write('\n')


def attach_detections(samples: Sequence[DetDataSample],
                      instances_list: Sequence[InstanceData]) -> None:
    """Set ``pred_instances`` to the detections where a sample has none.

    mmdet's panoptic segmentors drop the detections after fusion; OANet
    keeps its own, which are left alone.
    """
    for sample, instances in zip(samples, instances_list):
        if 'pred_instances' not in sample:
            sample.pred_instances = instances


def keep_detections(model: torch.nn.Module) -> None:
    """Make ``model.predict`` keep the detections it fused, for good.

    After this, every data sample the model predicts carries
    ``pred_instances``: the instance predictions its fusion head received
    (:func:`attach_detections`). Metrics that ask whether a thing was
    detected before fusion (``PanopticErrorMetric``) then work for mmdet's
    PanopticFPN too. The inputs are recorded without copies, so timing
    ``test_step`` is not changed by it. A model without a fusion head is
    left alone.

    Args:
        model (nn.Module): A panoptic detector.
    """
    head = getattr(model, 'panoptic_fusion_head', None)
    if head is None:
        return
    recorder = FusionInputRecorder(head, copy_inputs=False)
    predict = model.predict

    def predict_with_detections(*args, **kwargs):
        recorder.calls.clear()
        samples = predict(*args, **kwargs)
        if recorder.calls:
            attach_detections(samples, recorder.calls[-1][0])
        return samples

    model.predict = predict_with_detections
