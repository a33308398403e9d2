"""A compact prediction dump for ``tools/test.py --out``.

mmdet's ``DumpDetResults`` keeps every panoptic map as it is: OANet's
three int32 panoptic maps and the int64 stuff map come to 20 bytes per
pixel, about 6 MB per COCO val image, all held in memory until the end.
Here every map is a lossless PNG and instance masks are RLE, as mmdet
stores instance masks.

Shape shorthand:

    H, W: original image size
    N: predicted instances
"""
import pickle
from typing import Any, Dict, List, Sequence

import cv2
import numpy as np
from mmdet.registry import METRICS
from mmdet.structures.mask import encode_mask_results
from mmengine.evaluator import DumpResults
from mmengine.evaluator.metric import _to_cpu
from mmengine.logging import print_log

from ...utils.outputs import atomic_write
from ..functional import decode_panoptic_png, id_to_rgb

#: Data sample keys of panoptic maps, dumped as RGB PNGs of their ids.
PANOPTIC_KEYS = ('pred_panoptic_seg', 'pred_panoptic_seg_srm',
                 'pred_panoptic_seg_score')
#: Data sample keys of label maps (< 65536), dumped as 16-bit PNGs.
LABEL_KEYS = ('pred_sem_seg', )
#: Meta keys kept with each prediction.
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')
#: The only globals a dump may name: numpy's array and scalar rebuilders.
DUMP_GLOBALS = frozenset([(f'numpy.{core}.multiarray', name)
                          for core in ('core', '_core')
                          for name in ('_reconstruct', 'scalar')] +
                         [(f'numpy.{core}.numeric', '_frombuffer')
                          for core in ('core', '_core')] +
                         [('numpy', 'ndarray'), ('numpy', 'dtype')])


def _map_array(pixel_data: dict) -> np.ndarray:
    """``sem_seg`` (1, H, W) tensor or array as int64 (H, W)."""
    sem_seg = pixel_data['sem_seg']
    if hasattr(sem_seg, 'numpy'):
        sem_seg = sem_seg.numpy()
    sem_seg = np.asarray(sem_seg)
    return sem_seg.reshape(sem_seg.shape[-2:]).astype(np.int64)


def encode_id_map(ids: np.ndarray) -> bytes:
    """Lossless PNG of an id map (H, W), ids in [0, 2**24), as RGB."""
    ok, buffer = cv2.imencode('.png', id_to_rgb(ids)[..., ::-1])
    assert ok, 'OpenCV could not encode a PNG'
    return buffer.tobytes()


def decode_id_map(png: bytes) -> np.ndarray:
    """The int64 (H, W) id map of :func:`encode_id_map`."""
    return decode_panoptic_png(png).astype(np.int64)


def encode_label_map(labels: np.ndarray) -> bytes:
    """Lossless 16-bit grey PNG of a label map (H, W), labels < 65536."""
    if labels.min() < 0 or labels.max() >= 65536:
        raise ValueError('labels must lie in [0, 65536) to fit a PNG')
    ok, buffer = cv2.imencode('.png', labels.astype(np.uint16))
    assert ok, 'OpenCV could not encode a PNG'
    return buffer.tobytes()


def decode_label_map(png: bytes) -> np.ndarray:
    """The int64 (H, W) label map of :func:`encode_label_map`."""
    grey = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    return grey.astype(np.int64)


@METRICS.register_module()
class DumpPanopticResults(DumpResults):
    """Dump panoptic predictions compactly to a pickle (``--out``).

    One dict per image: the meta keys of ``META_KEYS``; each panoptic map
    present (``pred_panoptic_seg`` and, with ``compare_orders``, the
    ``_srm`` / ``_score`` orders) as ``{'png': bytes}``, an RGB PNG of the
    ids ``label + instance_id * INSTANCE_OFFSET`` (``R + 256 G + 256**2
    B``, as COCO panoptic PNGs); ``pred_sem_seg`` as ``{'png': bytes}``, a
    16-bit grey PNG of the labels; and ``pred_instances`` with ``bboxes``,
    ``labels``, ``scores`` (and ``rank_scores``) as numpy arrays and
    ``masks`` as COCO RLE, as mmdet's ``DumpDetResults`` writes them.
    Ground truth is dropped. :func:`load_panoptic_dump` reads the file back
    with every map decoded. The file is written atomically (a temporary
    file renamed over ``out_file_path``), so a full disk or a kill leaves
    the earlier file or none; ``tools/test.py`` checks the path before the
    test pass.

    Args:
        out_file_path (str): Pickle file, ending in ``.pkl`` or
            ``.pickle``.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        collect_dir (str, optional): Folder for gathering across ranks with
            ``collect_device='cpu'``. Defaults to None.
    """

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Encode the predictions of one batch."""
        for data_sample in _to_cpu(data_samples):
            if hasattr(data_sample, 'to_dict'):
                data_sample = data_sample.to_dict()
            record = {
                key: data_sample[key]
                for key in META_KEYS if key in data_sample
            }
            for key in PANOPTIC_KEYS:
                if key in data_sample:
                    record[key] = dict(
                        png=encode_id_map(_map_array(data_sample[key])))
            for key in LABEL_KEYS:
                if key in data_sample:
                    record[key] = dict(
                        png=encode_label_map(_map_array(data_sample[key])))
            if 'pred_instances' in data_sample:
                record['pred_instances'] = _compact_instances(
                    data_sample['pred_instances'])
            self.results.append(record)

    def compute_metrics(self, results: list) -> dict:
        """Write ``results`` to ``out_file_path``, atomically.

        Returns:
            dict: Empty; the dump is the product.
        """
        with atomic_write(self.out_file_path, 'wb') as f:
            pickle.dump(results, f, protocol=pickle.HIGHEST_PROTOCOL)
        print_log(
            f'{len(results)} predictions dumped to {self.out_file_path}',
            logger='current')
        return {}


class _DumpUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and builtin containers only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in DUMP_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'{module}.{name} is not allowed in a prediction dump (only '
            'numpy arrays, dicts, lists, strings and numbers); the file was '
            'not written by DumpPanopticResults, or was crafted to run code')


def _compact_instances(instances: dict) -> Dict[str, Any]:
    """Instances with numpy fields and RLE masks."""
    compact = {}
    for key, value in dict(instances).items():
        if hasattr(value, 'numpy'):
            value = value.numpy()
        if key == 'masks':
            value = encode_mask_results(np.asarray(value).astype(bool))
        compact[key] = value
    return compact


def load_panoptic_dump(path: str) -> List[dict]:
    """Read a :class:`DumpPanopticResults` pickle, maps decoded.

    The pickle is read by a restricted unpickler: any global but numpy's
    array and scalar rebuilders (a crafted ``__reduce__`` that would run
    code, say) is refused with ``pickle.UnpicklingError`` naming the file.

    Args:
        path (str): The ``--out`` file.

    Returns:
        list[dict]: Per image, the meta keys; each panoptic / label map as
        ``{'sem_seg': int64 (H, W)}``; ``pred_instances`` as dumped (masks
        stay RLE; ``pycocotools.mask.decode`` decodes them).
    """
    with open(path, 'rb') as f:
        try:
            records = _DumpUnpickler(f).load()
        except pickle.UnpicklingError as error:
            raise pickle.UnpicklingError(f'{path}: {error}') from error
    for record in records:
        for key in PANOPTIC_KEYS:
            if key in record:
                record[key] = dict(sem_seg=decode_id_map(record[key]['png']))
        for key in LABEL_KEYS:
            if key in record:
                record[key] = dict(
                    sem_seg=decode_label_map(record[key]['png']))
    return records
