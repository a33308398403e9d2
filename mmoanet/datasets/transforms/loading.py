"""Loading of overlapping instance masks next to the panoptic semantic map."""
from typing import Optional

import mmcv
import numpy as np
from mmdet.datasets.transforms import LoadPanopticAnnotations
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks
from mmengine.fileio import get

from ...evaluation.functional.panoptic_io import bgr_to_id
from ...utils.constants import IGNORE_INDEX
from ..exceptions import PanopticAnnotationError, PanopticFileNotFoundError


@TRANSFORMS.register_module()
class LoadPanopticInstanceAnnotations(LoadPanopticAnnotations):
    """Load thing instances and the panoptic semantic map of one image.

    Drop-in replacement for mmdet's :class:`LoadPanopticAnnotations` for
    :class:`CocoPanopticInstancesDataset`. The outputs keep mmdet's format,
    so ``PackDetInputs``, ``Resize`` and ``RandomFlip`` work unchanged:

    - ``gt_bboxes`` (HorizontalBoxes, float32, (N, 4)), ``gt_bboxes_labels``
      (int64, (N,)), ``gt_ignore_flags`` (bool, (N,), crowd is True).
    - ``gt_masks`` (BitmapMasks, (N, H, W)): for data infos with
      ``instance_source='instances'`` the decoded polygons/RLE of the
      instances JSON, which overlap where objects do; otherwise the thing
      segments of the PNG, as mmdet loads them.
    - ``gt_seg_map`` (uint8, (H, W)): from the PNG whatever the instance
      source; things ``0..C_th-1``, stuff ``C_th..C-1``, VOID 255. Crowd
      regions carry their thing label, as in mmdet.

    While decoding the PNG it checks, at little extra cost, that the PNG
    exists and has the image's size, that every non-zero id in it is a
    segment of the JSON and that every segment of the JSON is in it;
    otherwise it raises :class:`PanopticAnnotationError` or
    :class:`PanopticFileNotFoundError` naming the PNG and the image id.

    Args:
        with_bbox (bool): Load ``gt_bboxes``. Defaults to True.
        with_label (bool): Load ``gt_bboxes_labels``. Defaults to True.
        with_mask (bool): Load ``gt_masks``. Defaults to True.
        with_seg (bool): Load ``gt_seg_map``. Defaults to True.
        box_type (str): Box type of ``gt_bboxes``. Defaults to 'hbox'.
        imdecode_backend (str): Backend of :func:`mmcv.imfrombytes`.
            Defaults to 'cv2'.
        backend_args (dict, optional): File backend arguments. Defaults to
            None.
    """

    def __init__(self,
                 with_bbox: bool = True,
                 with_label: bool = True,
                 with_mask: bool = True,
                 with_seg: bool = True,
                 box_type: str = 'hbox',
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(
            with_bbox=with_bbox,
            with_label=with_label,
            with_mask=with_mask,
            with_seg=with_seg,
            box_type=box_type,
            imdecode_backend=imdecode_backend,
            backend_args=backend_args)

    def transform(self, results: dict) -> dict:
        """Load boxes, labels, masks and the semantic map.

        Args:
            results (dict): Data info of the dataset, after image loading
                (``ori_shape`` is needed for masks).

        Returns:
            dict: ``results`` with the ``gt_*`` keys listed above.
        """
        self._check_image_size(results)
        if self.with_bbox:
            self._load_bboxes(results)
        if self.with_label:
            self._load_labels(results)
        masks_from_instances = (
            results.get('instance_source', 'panoptic') == 'instances')
        if self.with_mask and masks_from_instances:
            # mmdet's own polygon/RLE decoding; it also marks instances with
            # invalid polygons as ignored.
            self._load_masks(results)
        if self.with_seg or (self.with_mask and not masks_from_instances):
            self._load_panoptic_png(results, masks_from_instances)
        return results

    @staticmethod
    def _check_image_size(results: dict) -> None:
        """The decoded image must have the size of its JSON entry.

        Masks are decoded at the JSON's size and the semantic map at the
        PNG's, so a mismatch would otherwise surface deep in mmdet or numpy
        (``cannot reshape array ...``) without a file name, whatever the
        instance source.
        """
        if 'ori_shape' not in results or 'height' not in results:
            return
        image_shape = tuple(results['ori_shape'][:2])
        json_shape = (results['height'], results['width'])
        if image_shape != json_shape:
            raise PanopticAnnotationError(
                f'image {results.get("img_path")} of image '
                f'{results.get("img_id")} is {image_shape[0]}x'
                f'{image_shape[1]}, but its JSON entry says {json_shape[0]}x'
                f'{json_shape[1]}')

    def _load_panoptic_png(self, results: dict,
                           masks_from_instances: bool) -> None:
        """Decode and check the PNG; write ``gt_seg_map`` (and PNG masks).

        Args:
            results (dict): Data info with ``seg_map_path``,
                ``segments_info`` and ``void_segment_ids``.
            masks_from_instances (bool): Whether ``gt_masks`` already came
                from the instances JSON.
        """
        png_path = results.get('seg_map_path')
        if png_path is None:  # inference without ground truth
            return
        img_id = results.get('img_id')
        try:
            png_bytes = get(png_path, backend_args=self.backend_args)
        except FileNotFoundError as error:
            raise PanopticFileNotFoundError(
                f'panoptic PNG {png_path} of image {img_id} does not '
                f'exist') from error
        try:
            png = mmcv.imfrombytes(
                png_bytes, flag='color', channel_order='bgr')
        except Exception as error:  # OpenCV raises on an empty buffer
            png, decode_error = None, f': {error}'
        else:
            decode_error = ''
        if png is None:
            raise PanopticAnnotationError(
                f'panoptic PNG {png_path} of image {img_id} cannot be '
                f'decoded{decode_error}; the file is damaged or not an image')
        segment_map = bgr_to_id(png)

        expected_shape = (results['height'], results['width'])
        shapes = [('its JSON entry', expected_shape)]
        if 'ori_shape' in results:
            shapes.append(('the image file', tuple(results['ori_shape'])))
        for source, shape in shapes:
            if segment_map.shape != shape:
                raise PanopticAnnotationError(
                    f'panoptic PNG {png_path} of image {img_id} is '
                    f'{segment_map.shape[0]}x{segment_map.shape[1]}, but '
                    f'{source} says {shape[0]}x{shape[1]}')

        # One sort of the ids gives both the check and the label lookup.
        png_ids, index_map = np.unique(segment_map, return_inverse=True)
        index_map = index_map.reshape(segment_map.shape)
        segments_info = results['segments_info']
        json_ids = {segment['id'] for segment in segments_info}
        void_ids = set(results.get('void_segment_ids', [])) | {0}
        unknown = sorted(set(png_ids.tolist()) - json_ids - void_ids)
        if unknown:
            raise PanopticAnnotationError(
                f'panoptic PNG {png_path} of image {img_id} contains segment '
                f'ids {unknown} that its JSON entry does not list')
        absent = sorted(json_ids - set(png_ids.tolist()))
        if absent:
            raise PanopticAnnotationError(
                f'segments {absent} of image {img_id} are listed in the JSON '
                f'but absent from its panoptic PNG {png_path}')

        segment_index = np.searchsorted(png_ids,
                                        [s['id'] for s in segments_info])
        if self.with_seg:
            label_of_index = np.full(
                len(png_ids), IGNORE_INDEX, dtype=np.uint8)
            for index, segment in zip(segment_index, segments_info):
                label_of_index[index] = segment['category']
            results['gt_seg_map'] = label_of_index[index_map]
        if self.with_mask and not masks_from_instances:
            thing_masks = [
                (index_map == index).astype(np.uint8)
                for index, segment in zip(segment_index, segments_info)
                if segment['is_thing']
            ]
            height, width = segment_map.shape
            results['gt_masks'] = BitmapMasks(thing_masks, height, width)
