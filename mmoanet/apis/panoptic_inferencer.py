"""mmdet's ``DetInferencer`` for panoptic models, with COCO panoptic files.

Shape shorthand:

    H, W: original image size
    C: thing plus stuff classes (``len(dataset_meta['classes'])``)
"""
import copy
import json
import logging
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch.nn as nn
from mmdet.apis import DetInferencer
from mmdet.structures import DetDataSample
from mmdet.utils import ConfigType
from mmengine.logging import print_log
from mmengine.registry import INFERENCERS

from ..utils.checkpoint import check_checkpoint_matches
from ..utils.outputs import atomic_write
from .inference import (ANNOTATION_LOADERS, UnknownCategoryIdsError,
                        _check_classes, _config_dataset_meta, coco_categories,
                        panoptic_to_coco)

#: Report name and data sample key of the fusion orders written besides the
#: primary ``pred_panoptic_seg`` (OANet with ``compare_orders=True``).
ORDER_KEYS = (('srm', 'pred_panoptic_seg_srm'), ('score',
                                                 'pred_panoptic_seg_score'))
ON_ERROR_CHOICES = ('skip', 'stop')


class InputError(RuntimeError):
    """An input that could not be read or predicted, naming it."""


@INFERENCERS.register_module()
class PanopticInferencer(DetInferencer):
    """``DetInferencer`` that writes COCO panoptic PNGs and JSON.

    Used exactly like mmdet's ``DetInferencer`` (``inferencer(inputs,
    out_dir=..., no_save_pred=False)``) on any config with a panoptic
    fusion head (OANet's, or mmdet's ``PanopticFPN``). Differences:

    - The checkpoint must fit the model (``check_checkpoint_matches``;
      the config key ``allow_partial_load=True`` relaxes it), and
      without ``meta['dataset_meta']`` in it the class names and palette
      come from the config's test dataset, not from COCO's 80 classes.
    - The test pipeline loses its annotation loaders, so images without
      annotations go through OANet configs.
    - ``OUT_DIR/preds/NAME_panoptic_seg.png`` is a COCO panoptic PNG (VOID
      0; mmdet's own PNG gives label 0's first segment id 0 too), and
      ``OUT_DIR/preds/NAME.json`` adds to mmdet's keys ``segments_info``
      (COCO ``id``, ``category_id``, ``area``, ``bbox``, ``iscrowd``) and,
      when the data sample holds the two fusion orders, the same for
      ``srm`` and ``score`` under ``orders``.
    - After the run ``OUT_DIR/panoptic.json`` collects the ``images``,
      ``annotations`` and ``categories`` of everything written, a COCO
      panoptic file whose PNG folder is ``OUT_DIR/preds``; with both orders
      ``panoptic_srm.json`` and ``panoptic_score.json`` too. It is written
      even when the run stops on an error.
    - ``on_error='skip'`` reports an input that cannot be read or predicted
      and goes on; ``'stop'`` raises :class:`InputError` naming it. Either
      way :attr:`failures` lists ``(input, message)``.
    - COCO category ids come from the checkpoint's ``dataset_meta``, from
      ``ann_file`` or from the config's annotation file (see
      :func:`~mmoanet.apis.coco_categories`). When none gives them, a call
      that would write ``preds/`` and the COCO JSON raises
      :class:`~mmoanet.apis.UnknownCategoryIdsError` before predicting
      anything, instead of writing ids that panopticapi would misread; a
      call that writes no prediction files returns ``category_id`` None.

    Args:
        model, weights, device, scope, palette, show_progress: As for
            ``DetInferencer``.
        ann_file (str, optional): A COCO (panoptic) JSON whose categories
            hold the model's class names (the training set's), for
            checkpoints without ``cat_ids``. Defaults to None.
    """

    def __init__(self,
                 model=None,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = 'mmdet',
                 palette: str = 'none',
                 show_progress: bool = True,
                 ann_file: Optional[str] = None) -> None:
        self.failures: List[Tuple[str, str]] = []
        self.on_error = 'stop'
        self._weights = weights
        self._coco: Dict[str, list] = {}
        self._names: Dict[str, str] = {}
        self._image_ids: Dict[str, int] = {}
        super().__init__(
            model=model,
            weights=weights,
            device=device,
            scope=scope,
            palette=palette,
            show_progress=show_progress)
        self.label2cat, self.categories, self.category_source = \
            coco_categories(self.model, ann_file=ann_file, strict=False)
        self.category_ids_known = None not in self.label2cat.values()

    # ------------------------------------------------------------------
    # model, pipeline
    # ------------------------------------------------------------------
    def _load_weights_to_model(self, model: nn.Module,
                               checkpoint: Optional[dict],
                               cfg: Optional[ConfigType]) -> None:
        """Weights after a shape check; class names of the config when the
        checkpoint has none."""
        if checkpoint is not None:
            # mmengine loads non-strictly: refuse a checkpoint of another
            # model (unless the config sets allow_partial_load=True).
            check_checkpoint_matches(
                model,
                checkpoint,
                allow_partial=cfg.get('allow_partial_load', False),
                source=self._weights)
        dataset_meta, ann_file = _config_dataset_meta(cfg)
        saved = (checkpoint or {}).get('meta', {}).get('dataset_meta')
        with warnings.catch_warnings():
            # The COCO class names mmdet falls back to are replaced below.
            warnings.filterwarnings('ignore', message='.*COCO classes')
            super()._load_weights_to_model(model, checkpoint, cfg)
        if not saved:
            if checkpoint is not None:
                print_log(
                    f'{self._weights} has no meta["dataset_meta"]; class '
                    'names come from the test dataset of the config',
                    logger='current',
                    level=logging.WARNING)
            palette = model.dataset_meta.get('palette')
            model.dataset_meta = dataset_meta
            if self.palette != 'none':
                model.dataset_meta['palette'] = palette
        if ann_file is not None:
            model.dataset_meta.setdefault('ann_file', ann_file)
        _check_classes(model, model.dataset_meta, self._weights)

    def _init_pipeline(self, cfg: ConfigType):
        """The test pipeline without annotation loaders (see
        ``ANNOTATION_LOADERS``), images from files or arrays."""
        cfg = copy.deepcopy(cfg)
        pipeline = cfg.test_dataloader.dataset.pipeline
        cfg.test_dataloader.dataset.pipeline = [
            transform for transform in pipeline
            if transform['type'].split('.')[-1] not in ANNOTATION_LOADERS
        ]
        return super()._init_pipeline(cfg)

    # ------------------------------------------------------------------
    # inputs, errors
    # ------------------------------------------------------------------
    def _inputs_to_list(self, inputs) -> list:
        """mmdet's input list; also fixes each file's output name and COCO
        image id (a numeric stem such as ``000000000139`` is the id, so
        ids agree with a COCO annotation file; else 1, 2, ...)."""
        listed_folder = isinstance(inputs, str) and osp.isdir(inputs)
        inputs = super()._inputs_to_list(inputs)
        if listed_folder:
            inputs = sorted(inputs)  # mmengine lists in directory order
        paths = [item for item in inputs if isinstance(item, str)]
        stems = [osp.splitext(osp.basename(path))[0] for path in paths]
        if len(set(stems)) != len(stems):
            # a.jpg and a.png would write the same a_panoptic_seg.png.
            stems = [osp.basename(path).replace('.', '_') for path in paths]
        ids = list(range(1, len(paths) + 1))
        if stems and all(stem.isdigit() for stem in stems) and len(
            {int(stem)
             for stem in stems}) == len(stems):
            ids = [int(stem) for stem in stems]
        self._names = dict(zip(paths, stems))
        self._image_ids = dict(zip(paths, ids))
        return inputs

    def _fail(self, item, error: Exception) -> None:
        """Record (and with ``on_error='stop'`` raise) a failed input."""
        name = item if isinstance(item, str) else f'array input {item!r:.40}'
        message = f'{name}: {type(error).__name__}: {error}'
        self.failures.append((name, message))
        if self.on_error == 'stop':
            raise InputError(message) from error
        print_log(
            f'skipped {message}', logger='current', level=logging.WARNING)

    def _get_chunk_data(self, inputs, chunk_size: int):
        """Batches of ``(input, pipeline output)``; an input the pipeline
        cannot read is reported (see ``on_error``), not batched."""
        chunk = []
        for item in inputs:
            try:
                if isinstance(item, str) and not osp.isfile(item) and \
                        '://' not in item:
                    raise FileNotFoundError('no such file')
                if isinstance(item, dict):
                    data = self.pipeline(copy.deepcopy(item))
                    item = item.get('img', item.get('img_path'))
                else:
                    data = self.pipeline(item)
                if data is None:
                    raise ValueError('the pipeline dropped it')
            except Exception as error:  # noqa: B902 (reported, not lost)
                self._fail(item, error)
                continue
            chunk.append((item, data))
            if len(chunk) == chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    # ------------------------------------------------------------------
    # call
    # ------------------------------------------------------------------
    def __call__(self,
                 inputs,
                 batch_size: int = 1,
                 *,
                 on_error: str = 'stop',
                 out_dir: str = '',
                 no_save_pred: bool = True,
                 **kwargs) -> dict:
        """Predict, draw and write, as ``DetInferencer.__call__``.

        Args:
            inputs: An image file, a folder of images, an array or a list.
            batch_size (int): Images per forward. Defaults to 1.
            on_error (str): ``'stop'`` (default, as mmdet) raises
                :class:`InputError` at the first unreadable input;
                ``'skip'`` reports it and goes on.
            out_dir (str): Where ``vis/`` and ``preds/`` (and the COCO
                JSON) go; '' writes nothing. Defaults to ''.
            no_save_pred (bool): Do not write ``preds/`` nor the COCO JSON.
                Defaults to True, as in mmdet.
            **kwargs: Everything else ``DetInferencer.__call__`` takes
                (``show``, ``pred_score_thr``, ``no_save_vis``,
                ``return_datasamples``, ``print_result``, ...).

        Returns:
            dict: ``predictions`` and ``visualization`` as mmdet returns
            them, and ``failures``, a list of ``(input, message)``.
        """
        if on_error not in ON_ERROR_CHOICES:
            raise ValueError(f'on_error must be one of {ON_ERROR_CHOICES}, '
                             f'got {on_error!r}')
        save_json = bool(out_dir) and not no_save_pred
        if save_json and not self.category_ids_known:
            raise UnknownCategoryIdsError(
                f'{self._weights or "the model"}: {self.category_source}; '
                'or pass no_save_pred=True (--no-save-pred) to write no '
                'COCO file')
        self.on_error = on_error
        self.failures = []
        self._coco = dict(images=[], **{name: [] for name in self._orders()})
        try:
            results = super().__call__(
                inputs,
                batch_size=batch_size,
                out_dir=out_dir,
                no_save_pred=no_save_pred,
                **kwargs)
        finally:
            if save_json:
                self.json_files = self._write_coco_json(out_dir)
        results['failures'] = list(self.failures)
        return results

    @staticmethod
    def _orders() -> List[str]:
        """COCO JSON names: '' is the primary order."""
        return [''] + [name for name, _ in ORDER_KEYS]

    def forward(self, inputs, **kwargs):
        """Run the model; a failure names the batch's inputs."""
        try:
            return super().forward(inputs, **kwargs)
        except Exception as error:  # noqa: B902 (re-raised, named)
            paths = [
                sample.metainfo.get('img_path', '?')
                for sample in inputs.get('data_samples', [])
            ]
            message = (f'prediction failed on {paths}: '
                       f'{type(error).__name__}: {error}')
            self.failures.append((', '.join(paths), message))
            raise InputError(message) from error

    # ------------------------------------------------------------------
    # outputs
    # ------------------------------------------------------------------
    def pred2dict(self,
                  data_sample: DetDataSample,
                  pred_out_dir: str = '') -> Dict:
        """mmdet's dict (instances as RLE) plus COCO panoptic segments.

        Args:
            data_sample (:obj:`DetDataSample`): A prediction, with
                ``pred_panoptic_seg`` (``sem_seg`` int (1, H, W)).
            pred_out_dir (str): Where ``preds/`` goes; '' writes nothing.

        Returns:
            dict: mmdet's ``labels``, ``scores``, ``bboxes``, ``masks`` and
            ``panoptic_seg_path`` (or ``panoptic_seg``, the uint8
            (H, W, 3) RGB PNG when nothing is saved), plus
            ``segments_info`` and, with both orders on the data sample,
            ``orders`` (``srm``/``score`` to their own path and segments).
        """
        panoptic_keys = [
            key for key in data_sample.keys()
            if key.startswith('pred_panoptic_seg')
        ]
        instances_only = data_sample.clone()
        for key in panoptic_keys:
            delattr(instances_only, key)
        result = super().pred2dict(instances_only, '')
        if 'pred_instances' in data_sample and \
                'rank_scores' in data_sample.pred_instances:
            result['rank_scores'] = data_sample.pred_instances.rank_scores \
                .cpu().tolist()
        if 'pred_panoptic_seg' not in data_sample:
            return result

        img_path = data_sample.metainfo.get('img_path')
        if img_path in self._names:
            stem = self._names[img_path]
            image_id = self._image_ids[img_path]
            file_name = osp.basename(img_path)
        else:
            self.num_predicted_imgs += 1
            stem = image_id = self.num_predicted_imgs
            file_name = f'{stem}.jpg'
            stem = str(stem)
        num_classes = len(self.model.dataset_meta['classes'])
        height, width = data_sample.pred_panoptic_seg.sem_seg.shape[-2:]
        preds_dir = osp.join(pred_out_dir, 'preds')
        if pred_out_dir:
            os.makedirs(preds_dir, exist_ok=True)

        orders = {}
        keys = [('', 'pred_panoptic_seg')] + [
            (name, key) for name, key in ORDER_KEYS if key in data_sample
        ]
        for name, key in keys:
            pan_ids = data_sample.get(key).sem_seg.cpu().numpy()
            png, segments = panoptic_to_coco(pan_ids, self.label2cat,
                                             num_classes)
            entry = dict(segments_info=segments)
            png_name = f'{stem}_panoptic_seg' + (f'_{name}' if name else '')
            png_name += '.png'
            if pred_out_dir:
                _write_png(osp.join(preds_dir, png_name), png)
                entry['panoptic_seg_path'] = osp.join(preds_dir, png_name)
                self._coco[name].append(
                    dict(
                        image_id=image_id,
                        file_name=png_name,
                        segments_info=segments))
            else:
                entry['panoptic_seg'] = png
            if name:
                orders[name] = entry
            else:
                result.update(entry)
        if orders:
            result['orders'] = orders
        if pred_out_dir:
            self._coco['images'].append(
                dict(
                    id=image_id,
                    file_name=file_name,
                    height=int(height),
                    width=int(width)))
            with atomic_write(osp.join(preds_dir, f'{stem}.json')) as f:
                json.dump(result, f)
        return result

    def _write_coco_json(self, out_dir: str) -> List[str]:
        """Write ``panoptic{,_srm,_score}.json`` for what was predicted.

        Returns:
            list[str]: The files written.
        """
        os.makedirs(out_dir, exist_ok=True)
        written = []
        for name in self._orders():
            annotations = self._coco.get(name, [])
            if name and not annotations:
                continue
            info = dict(
                description='mmoanet panoptic predictions',
                panoptic_key=('pred_panoptic_seg' +
                              (f'_{name}' if name else '')),
                segmentations_folder='preds',
                category_ids=self.category_source,
                failed_inputs=[message for _, message in self.failures])
            path = osp.join(
                out_dir, 'panoptic' + (f'_{name}' if name else '') + '.json')
            # Atomic: a full disk leaves the earlier file or none, never a
            # truncated JSON.
            with atomic_write(path) as f:
                json.dump(
                    dict(
                        info=info,
                        images=self._coco['images'],
                        annotations=annotations,
                        categories=self.categories), f)
            written.append(path)
        return written


def _write_png(path: str, rgb: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) RGB image as a PNG, atomically."""
    ok, encoded = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise OSError(f'cannot encode {path} as PNG')
    with atomic_write(path, 'wb') as f:
        f.write(encoded.tobytes())


def inference_summary(results: dict, json_files: Sequence[str] = ()) -> str:
    """One line on what a :class:`PanopticInferencer` call did."""
    done = len(results['predictions'])
    failed = len(results['failures'])
    text = f'{done} image(s) predicted, {failed} failed'
    if json_files:
        text += f'; COCO panoptic JSON: {", ".join(json_files)}'
    return text
