"""COCO panoptic dataset whose thing masks may come from COCO instances.

OANet's spatial ranking module (Sec. 3.2) only learns where instance masks
overlap, yet the masks of a panoptic PNG never overlap. The paper therefore
trains the instance branch on COCO's *instance* annotations, where a person's
mask runs under the tie, and calls the PNG-derived alternative
"w/pano-instance GT" (Table 3, 3rd row: worse). This dataset offers both.
"""
import json
import logging
import os.path as osp
from collections import defaultdict
from typing import Any, Dict, List, Optional

from mmdet.datasets import CocoPanopticDataset
from mmdet.registry import DATASETS
from mmengine.fileio import join_path, load
from mmengine.logging import print_log
from mmengine.utils import is_abs

from .annotation_checks import (bbox_problem, duplicates, iscrowd_problem,
                                json_error, rle_run_totals,
                                segmentation_problem)
from .exceptions import (DatasetItemError, PanopticAnnotationError,
                         PanopticFileNotFoundError)

INSTANCE_SOURCES = ('instances', 'panoptic')
#: Keys every annotation of ``ins_ann_file`` must have.
INSTANCE_KEYS = ('id', 'image_id', 'category_id', 'bbox')


@DATASETS.register_module()
class CocoPanopticInstancesDataset(CocoPanopticDataset):
    """COCO panoptic annotations plus, optionally, overlapping instance GT.

    Stuff labels, the semantic map and the segments used for evaluation
    always come from the panoptic PNG and JSON, exactly as in mmdet's
    :class:`CocoPanopticDataset`. Only the thing instances (boxes, labels,
    masks) depend on ``instance_source``:

    - ``'instances'`` (paper default): boxes and masks of ``ins_ann_file``, a
      COCO instances JSON of the same images, matched by ``image_id``.
      Masks (polygons or RLE) are amodal and may overlap. Crowd annotations
      become instances with ``ignore_flag=1``, as in mmdet's
      :class:`CocoDataset`; annotations of stuff categories are skipped, so
      panopticapi's detection-format export can serve as ``ins_ann_file``.
    - ``'panoptic'`` ("w/pano-instance GT", Table 3): masks cut from the PNG,
      i.e. mmdet's behaviour; crowd segments give no instance.

    Annotations are checked as they are read, in one pass over each JSON,
    so a bad file stops a run in its first seconds rather than when the
    image is sampled: a file that is not valid JSON, an unknown category, a
    class order that would shift labels, an instance of an image the
    panoptic file does not list, an RLE whose ``size`` is not its image's,
    an RLE whose ``counts`` encode another size than its ``size``, a
    malformed polygon or one that leaves the image, a duplicate id (of an
    image, a category, an instance annotation, or a segment within its
    image), an image listed twice or without its panoptic entry, a segment
    id that cannot be in a PNG (0 is VOID), a box that is not four finite
    numbers, is negative or lies outside its image, an ``iscrowd`` other
    than 0 or 1, a PNG ``file_name`` other than the one mmdet reads (the
    image's name with ``.png``), or an instances file without a single
    thing annotation while the panoptic segments hold things raises
    :class:`PanopticAnnotationError`; a missing image or PNG
    raises :class:`PanopticFileNotFoundError` (local files only, see
    ``check_files``). The PNG itself, and the image's size against its
    JSON entry, are checked by :class:`LoadPanopticInstanceAnnotations`
    when they are decoded; any other failure while preparing an image (an
    undecodable file, say) is re-raised as :class:`DatasetItemError`
    naming the image file and id.

    Custom class sets work through ``metainfo=dict(classes=...,
    thing_classes=..., stuff_classes=..., palette=...)``. ``classes`` must
    list the thing classes first, in the order of the JSON categories,
    because mmdet numbers labels in JSON order.

    Args:
        ann_file (str): COCO panoptic JSON. Defaults to ''.
        ins_ann_file (str, optional): COCO instances JSON of the same images,
            relative to ``data_root`` unless absolute. Required when
            ``instance_source='instances'``. Defaults to None.
        instance_source (str): ``'instances'`` or ``'panoptic'``, see above.
            Defaults to ``'instances'``.
        check_files (bool): Whether to check at start-up that every image and
            panoptic PNG exists, so a missing file fails before training
            rather than hours into it. Skipped for non-local backends.
            Defaults to True.
        allow_empty_instances (bool): Accept an ``ins_ann_file`` with no
            thing annotation although the panoptic segments hold things.
            Such a file (the wrong split, a stuff-only export) leaves the
            detector and the SRM nothing to learn about things, so by
            default it is an error; images whose things are missing from
            ``ins_ann_file`` while others have some are only counted in a
            warning. Defaults to False.
        **kwargs: Arguments of :class:`mmdet.datasets.CocoPanopticDataset`
            (``metainfo``, ``data_root``, ``data_prefix``, ``pipeline``...).
    """

    def __init__(self,
                 ann_file: str = '',
                 ins_ann_file: Optional[str] = None,
                 instance_source: str = 'instances',
                 check_files: bool = True,
                 allow_empty_instances: bool = False,
                 **kwargs) -> None:
        if instance_source not in INSTANCE_SOURCES:
            raise ValueError(f'instance_source must be one of '
                             f'{INSTANCE_SOURCES}, got {instance_source!r}')
        if instance_source == 'instances' and not ins_ann_file:
            raise ValueError("instance_source='instances' needs ins_ann_file "
                             "(a COCO instances JSON); use "
                             "instance_source='panoptic' for masks from the "
                             'panoptic PNGs')
        self.ins_ann_file = ins_ann_file
        self.instance_source = instance_source
        self.check_files = check_files
        self.allow_empty_instances = allow_empty_instances
        super().__init__(ann_file=ann_file, **kwargs)

    def _join_prefix(self) -> None:
        """Join ``data_root`` with the prefixes, ``ann_file`` and
        ``ins_ann_file``."""
        super()._join_prefix()
        if (self.ins_ann_file and not is_abs(self.ins_ann_file)
                and self.data_root):
            self.ins_ann_file = join_path(self.data_root, self.ins_ann_file)

    def load_data_list(self) -> List[dict]:
        """Load the panoptic JSON and, if asked, the instances JSON.

        Returns:
            list[dict]: One data info per image, in the format of mmdet's
            :class:`CocoPanopticDataset` plus the keys ``instance_source``
            and ``void_segment_ids`` (segments mmdet drops as degenerate, so
            the loader treats their pixels as VOID instead of unknown).
        """
        self._categories_checked = False
        try:
            data_list = super().load_data_list()
        except json.JSONDecodeError as error:
            raise json_error(self.ann_file, error) from error
        except (KeyError, TypeError, AttributeError) as error:
            # mmdet's reader indexes the JSON without a check of its own.
            raise PanopticAnnotationError(
                f'{self.ann_file} is not a COCO panoptic annotation file: '
                f'{type(error).__name__}: {error}') from error
        if not data_list:
            raise PanopticAnnotationError(
                f'{self.ann_file} lists no image: nothing to train or test '
                'on')
        # Kept in the metainfo, hence in every checkpoint's dataset_meta:
        # COCO ids of the labels, for the COCO files written at inference.
        self._metainfo['cat_ids'] = [int(cat_id) for cat_id in self.cat_ids]
        if self.check_files and self.backend_args is None:
            self._check_files_exist(data_list)
        if self.instance_source == 'instances':
            self._attach_instances(data_list)
        for data_info in data_list:
            data_info['instance_source'] = self.instance_source
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """Check one image's segments, then parse them as mmdet does.

        Args:
            raw_data_info (dict): ``raw_img_info`` and ``raw_ann_info`` (the
                image's panoptic segments) of ``ann_file``.

        Returns:
            dict: Data info of mmdet's :class:`CocoPanopticDataset`, plus
            ``void_segment_ids`` (list[int]).
        """
        if not self._categories_checked:
            self._check_panoptic_json(self.coco.dataset)
            self._check_categories()
            self._categories_checked = True
        img_id = raw_data_info['raw_img_info']['img_id']
        for segment in raw_data_info['raw_ann_info']:
            if segment['image_id'] != img_id:
                continue
            if segment['category_id'] not in self.cat2label:
                raise PanopticAnnotationError(
                    f'{self.ann_file}: segment {segment["id"]} of image '
                    f'{img_id} has category id {segment["category_id"]}, '
                    f'which is not one of the dataset classes')
        data_info = super().parse_data_info(raw_data_info)
        kept_ids = {segment['id'] for segment in data_info['segments_info']}
        data_info['void_segment_ids'] = [
            segment['id'] for segment in raw_data_info['raw_ann_info']
            if segment['image_id'] == img_id and segment['id'] not in kept_ids
        ]
        return data_info

    def _check_panoptic_json(self, content: dict) -> None:
        """Check ids, sizes, boxes and file names of the panoptic JSON.

        What mmdet's ``COCOPanoptic`` would otherwise merge, drop or
        misread without a word: images and categories listed twice (the
        last one wins), two annotation entries of one image (their segments
        merge), an entry of an unlisted image (dropped), a listed image
        without an entry (all its PNG ids unknown), a segment id listed
        twice in one image or 0 (VOID in the PNG), a PNG name other than
        the one mmdet opens, and malformed boxes or ``iscrowd``.

        Args:
            content (dict): The JSON as read (``images``, ``annotations``,
                ``categories``).

        Raises:
            PanopticAnnotationError: Naming the file and the ids at fault.
        """
        where = self.ann_file
        images = content.get('images', [])
        for kind, entries in (('image', images),
                              ('category', content.get('categories', []))):
            repeated = duplicates(entry['id'] for entry in entries)
            if repeated:
                raise PanopticAnnotationError(
                    f'{where}: {kind} ids {repeated[:10]} are listed more '
                    'than once')
        image_by_id = {image['id']: image for image in images}
        for image in images:
            size = (image.get('height'), image.get('width'))
            if not all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0
                    for v in size):
                raise PanopticAnnotationError(
                    f'{where}: image {image["id"]} has height x width '
                    f'{size[0]!r} x {size[1]!r}, not two positive integers')
        entries = content.get('annotations', [])
        repeated = duplicates(entry['image_id'] for entry in entries)
        if repeated:
            raise PanopticAnnotationError(
                f'{where}: images {repeated[:10]} have more than one entry '
                'in annotations')
        unlisted = [
            entry['image_id'] for entry in entries
            if entry['image_id'] not in image_by_id
        ]
        if unlisted:
            raise PanopticAnnotationError(
                f'{where}: annotations of images {unlisted[:10]}, which '
                'images does not list')
        annotated = {entry['image_id'] for entry in entries}
        bare = [img_id for img_id in image_by_id if img_id not in annotated]
        # An image-info file (test-dev) has no annotations key at all.
        if bare and 'annotations' in content:
            raise PanopticAnnotationError(
                f'{where}: images {bare[:10]} have no entry in annotations '
                '(an image without segments still needs one, with an empty '
                'segments_info)')
        for entry in entries:
            self._check_panoptic_entry(entry, image_by_id[entry['image_id']])

    def _check_panoptic_entry(self, entry: dict, image: dict) -> None:
        """Check one image's entry of the panoptic JSON, see above."""
        where = f'{self.ann_file}: image {image["id"]}'
        png_name = image['file_name'].replace('.jpg', '.png')
        listed_png = entry.get('file_name', png_name)
        if listed_png != png_name:
            raise PanopticAnnotationError(
                f'{where} ({image["file_name"]}) names its PNG '
                f'{listed_png!r}, but mmdet reads the PNG of the image name '
                f'with .jpg replaced by .png, {png_name!r}; rename one of '
                'them')
        segments = entry.get('segments_info')
        if not isinstance(segments, list):
            raise PanopticAnnotationError(
                f'{where}: segments_info is {type(segments).__name__}, not '
                'a list')
        ids = [segment.get('id') for segment in segments]
        bad_ids = [
            seg_id for seg_id in ids if not isinstance(seg_id, int)
            or isinstance(seg_id, bool) or not 0 < seg_id < 256**3
        ]
        if bad_ids:
            raise PanopticAnnotationError(
                f'{where}: segment ids {bad_ids[:10]} cannot be PNG ids '
                '(1 .. 256**3 - 1; 0 is VOID)')
        repeated = duplicates(ids)
        if repeated:
            raise PanopticAnnotationError(
                f'{where}: segment ids {repeated[:10]} are listed more than '
                'once')
        height, width = image['height'], image['width']
        for segment in segments:
            problem = (
                bbox_problem(segment.get('bbox'), height, width)
                or iscrowd_problem(segment))
            if problem is None and not isinstance(
                    segment.get('area'), (int, float)):
                problem = f'its area is {segment.get("area")!r}'
            if problem:
                raise PanopticAnnotationError(
                    f'{where}, segment {segment["id"]}: {problem}')

    def _check_categories(self) -> None:
        """Check that labels follow ``metainfo['classes']``, things first.

        mmdet gives category ``self.cat_ids[i]`` the label ``i`` in the order
        of the JSON, whatever the order of ``classes``; a mismatch would
        silently rename every class.
        """
        classes = list(self.metainfo['classes'])
        thing_classes = set(self.metainfo['thing_classes'])
        json_names = [
            self.coco.cats[cat_id]['name'] for cat_id in self.cat_ids
        ]
        missing = [name for name in classes if name not in json_names]
        if missing:
            raise PanopticAnnotationError(
                f'{self.ann_file}: classes {missing} of the metainfo are not '
                f'among its categories')
        if json_names != classes:
            raise PanopticAnnotationError(
                f'{self.ann_file}: categories are listed in the order '
                f'{json_names}, but metainfo classes are {classes}; labels '
                f'follow the JSON order, so the two must agree')
        for cat_id, name in zip(self.cat_ids, json_names):
            if bool(self.coco.cats[cat_id]['isthing']) != (name
                                                           in thing_classes):
                raise PanopticAnnotationError(
                    f'{self.ann_file}: category {cat_id} ({name!r}) has '
                    f'isthing={self.coco.cats[cat_id]["isthing"]}, which '
                    f'disagrees with metainfo thing_classes')
        num_things = len(self.metainfo['thing_classes'])
        if set(classes[:num_things]) != thing_classes:
            raise PanopticAnnotationError(
                f'metainfo classes must start with the {num_things} thing '
                f'classes, got {classes}')

    def _check_files_exist(self, data_list: List[dict]) -> None:
        """Raise if an image or panoptic PNG of ``data_list`` is missing."""
        for data_info in data_list:
            paths = [('image', data_info['img_path']),
                     ('panoptic PNG', data_info['seg_map_path'])]
            for kind, path in paths:
                if path is not None and not osp.isfile(path):
                    raise PanopticFileNotFoundError(
                        f'{kind} {path} of image {data_info["img_id"]} '
                        f'(listed in {self.ann_file}) does not exist')

    def _attach_instances(self, data_list: List[dict]) -> None:
        """Replace each image's ``instances`` with those of ins_ann_file.

        Args:
            data_list (list[dict]): Data infos, changed in place.
        """
        try:
            ins_json = load(
                self.ins_ann_file,
                file_format='json',
                backend_args=self.backend_args)
        except json.JSONDecodeError as error:
            raise json_error(self.ins_ann_file, error) from error
        infos_by_id = {info['img_id']: info for info in data_list}
        self._check_instance_images(ins_json.get('images', []), infos_by_id)
        label_by_cat = self._instance_labels(ins_json.get('categories', []))

        annotations = ins_json.get('annotations')
        if not isinstance(annotations, list):
            raise PanopticAnnotationError(
                f'{self.ins_ann_file} has no list of annotations; is it a '
                'COCO instances file?')
        self._check_instance_ids(annotations)
        anns_by_img: Dict[int, List[dict]] = defaultdict(list)
        for ann in annotations:
            if ann['image_id'] not in infos_by_id:
                raise PanopticAnnotationError(
                    f'{self.ins_ann_file}: annotation {ann["id"]} refers to '
                    f'image {ann["image_id"]}, which {self.ann_file} does '
                    f'not list')
            anns_by_img[ann['image_id']].append(ann)

        for img_id, data_info in infos_by_id.items():
            instances = []
            for ann in anns_by_img.get(img_id, []):
                instance = self._parse_instance(ann, data_info, label_by_cat)
                if instance is not None:
                    instances.append(instance)
            data_info['instances'] = instances
        self._check_things_present(data_list)

    def _check_instance_ids(self, annotations: List[dict]) -> None:
        """Keys present and ids unique, as mmdet's ``CocoDataset`` wants.

        Also sums the run lengths of every compressed RLE in one pass
        (:func:`rle_run_totals`), kept for :meth:`_parse_instance`.
        """
        for ann in annotations:
            missing = [key for key in INSTANCE_KEYS if key not in ann]
            if missing:
                raise PanopticAnnotationError(
                    f'{self.ins_ann_file}: annotation {ann.get("id")} of '
                    f'image {ann.get("image_id")} has no {missing}')
        repeated = duplicates(ann['id'] for ann in annotations)
        if repeated:
            raise PanopticAnnotationError(
                f'{self.ins_ann_file}: annotation ids {repeated[:10]} are '
                'not unique (mmdet\'s CocoDataset refuses such a file too)')
        compressed = [
            ann for ann in annotations
            if isinstance(ann.get('segmentation'), dict)
            and isinstance(ann['segmentation'].get('counts'), (str, bytes))
        ]
        totals = rle_run_totals(
            [ann['segmentation']['counts'] for ann in compressed])
        self._rle_totals = {
            ann['id']: int(total)
            for ann, total in zip(compressed, totals)
        }

    def _check_things_present(self, data_list: List[dict]) -> None:
        """Refuse an instances file without things where the PNGs have some.

        Raises:
            PanopticAnnotationError: ``ins_ann_file`` gives no image a thing
                instance while ``ann_file`` lists thing segments, unless
                ``allow_empty_instances``.
        """
        without = [
            info['img_id'] for info in data_list
            if not info['instances'] and any(s['is_thing']
                                             for s in info['segments_info'])
        ]
        if not without:
            return
        num_segments = sum(
            sum(s['is_thing'] for s in info['segments_info'])
            for info in data_list)
        if not any(info['instances'] for info in data_list):
            message = (
                f'{self.ins_ann_file} has no thing annotation of the '
                f'{len(data_list)} images, but {self.ann_file} lists '
                f'{num_segments} thing segments in {len(without)} of them: '
                'the detector and the SRM would learn nothing about things. '
                'Check that ins_ann_file is the instances JSON of these '
                "images, use instance_source='panoptic' to cut the "
                'instances from the PNGs, or set allow_empty_instances=True '
                'if this is intended')
            if not self.allow_empty_instances:
                raise PanopticAnnotationError(message)
        else:
            message = (f'{self.ins_ann_file}: {len(without)} of '
                       f'{len(data_list)} images have thing segments in '
                       f'{self.ann_file} but no thing instance (e.g. image '
                       f'ids {without[:5]}); they train as stuff-only images')
        print_log(message, logger='current', level=logging.WARNING)

    def _check_instance_images(self, images: List[dict],
                               infos_by_id: Dict[int, dict]) -> None:
        """Check the ``images`` of ins_ann_file against the panoptic ones."""
        for image in images:
            info = infos_by_id.get(image['id'])
            if info is None:
                raise PanopticAnnotationError(
                    f'{self.ins_ann_file}: image {image["id"]} '
                    f'({image.get("file_name")}) is not listed in '
                    f'{self.ann_file}')
            if (image['height'], image['width']) != (info['height'],
                                                     info['width']):
                raise PanopticAnnotationError(
                    f'{self.ins_ann_file}: image {image["id"]} is '
                    f'{image["height"]}x{image["width"]}, but '
                    f'{self.ann_file} says {info["height"]}x{info["width"]}')

    def _instance_labels(self, categories: List[dict]) -> Dict[int, int]:
        """Map thing category ids of ins_ann_file to labels.

        Stuff categories map to -1 (skipped). A category whose name differs
        from the panoptic category of the same id is an error: the two files
        would disagree about what the label means.
        """
        num_things = len(self.metainfo['thing_classes'])
        classes = self.metainfo['classes']
        label_by_cat = {}
        for cat_id, label in self.cat2label.items():
            label_by_cat[cat_id] = label if label < num_things else -1
        for category in categories:
            label = self.cat2label.get(category['id'])
            if label is not None and classes[label] != category['name']:
                raise PanopticAnnotationError(
                    f'{self.ins_ann_file}: category {category["id"]} is '
                    f'{category["name"]!r}, but {self.ann_file} calls it '
                    f'{classes[label]!r}')
        return label_by_cat

    def _parse_instance(self, ann: dict, data_info: dict,
                        label_by_cat: Dict[int, int]) -> Optional[dict]:
        """Turn one instances-JSON annotation into an mmdet instance.

        Degenerate boxes are skipped as mmdet's :class:`CocoDataset` skips
        them.

        Returns:
            dict | None: ``bbox`` (x1, y1, x2, y2), ``bbox_label``,
            ``ignore_flag`` (1 for crowd) and ``mask`` (polygons or RLE), or
            None for a skipped annotation.
        """
        cat_id = ann['category_id']
        if cat_id not in label_by_cat:
            raise PanopticAnnotationError(
                f'{self.ins_ann_file}: annotation {ann["id"]} of image '
                f'{ann["image_id"]} has category id {cat_id}, which is not '
                f'one of the dataset classes')
        label = label_by_cat[cat_id]
        if label < 0 or ann.get('ignore', False):
            return None
        where = (f'{self.ins_ann_file}: annotation {ann["id"]} of image '
                 f'{ann["image_id"]} ({osp.basename(data_info["img_path"])}, '
                 f'{data_info["height"]}x{data_info["width"]})')
        problem = (
            bbox_problem(ann['bbox'], data_info['height'], data_info['width'])
            or iscrowd_problem(ann))
        if problem is None and not isinstance(ann.get('area'), (int, float)):
            problem = f'its area is {ann.get("area")!r}, not a number'
        if problem:
            raise PanopticAnnotationError(f'{where}: {problem}')
        x1, y1, w, h = ann['bbox']
        inside_w = min(x1 + w, data_info['width']) - max(x1, 0)
        inside_h = min(y1 + h, data_info['height']) - max(y1, 0)
        if inside_w <= 0 or inside_h <= 0:
            return None
        if ann['area'] <= 0 or w < 1 or h < 1:
            return None
        if not ann.get('segmentation'):
            raise PanopticAnnotationError(
                f'{self.ins_ann_file}: annotation {ann["id"]} of image '
                f'{ann["image_id"]} has no segmentation')
        problem = segmentation_problem(
            ann['segmentation'],
            data_info['height'],
            data_info['width'],
            rle_total=self._rle_totals.get(ann['id']))
        if problem:
            raise PanopticAnnotationError(f'{where}: {problem}')
        return dict(
            bbox=[x1, y1, x1 + w, y1 + h],
            bbox_label=label,
            ignore_flag=int(bool(ann.get('iscrowd', 0))),
            mask=ann['segmentation'])

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on one image; name the image if it fails.

        Errors of the pipeline (an undecodable image, a mask that will not
        decode) come from mmcv, OpenCV or numpy without a file name; they
        are re-raised as :class:`DatasetItemError` naming the image file,
        its id and ``idx``. Our own annotation errors already name the file
        and pass unchanged.

        Args:
            idx (int): Index of the image in the dataset.

        Returns:
            Any: What the pipeline returns (the packed inputs and data
            sample with ``PackDetInputs``).
        """
        try:
            return super().prepare_data(idx)
        except (PanopticAnnotationError, PanopticFileNotFoundError):
            raise
        except Exception as error:
            data_info = self.get_data_info(idx)
            raise DatasetItemError(
                f'preparing image {data_info.get("img_path")} (image id '
                f'{data_info.get("img_id")}, index {idx} of the dataset of '
                f'{self.ann_file}) failed: {type(error).__name__}: '
                f'{error}') from error
