"""The SRM studies' shared steps, on the package's SRM workflow.

An SRM is trained alone the way a user trains it: ``tools/train.py
configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py`` (mmengine's Runner,
:class:`~mmoanet.models.StandaloneSRM`, whose checkpoint holds ``srm.*``),
with ``--cfg-options`` for the data, seed, schedule and SRM settings. It is
then read back through the safe loader, or merged into a detector with
``tools/model_converters/add_srm_to_panoptic_fpn.py``. Ground truth comes
from :class:`~mmoanet.datasets.SRMAnnotationDataset`, the dataset the
training reads.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from study_utils import REPO_ROOT

SRM_CONFIG = 'configs/srm/srm_1x7-7x1_1200i_synthetic-occlusion.py'
TRAIN_SCRIPT = osp.join(REPO_ROOT, 'tools', 'train.py')
MERGE_SCRIPT = osp.join(REPO_ROOT, 'tools', 'model_converters',
                        'add_srm_to_panoptic_fpn.py')


def srm_train_options(data_root: str,
                      seed: int,
                      iters: Optional[int] = None,
                      lr: Optional[float] = None,
                      batch_size: Optional[int] = None,
                      workers: Optional[int] = None,
                      ins_ann_file: Optional[str] = None,
                      srm: Optional[Dict[str, object]] = None) -> List[str]:
    """``--cfg-options`` of :data:`SRM_CONFIG` for one training.

    Args:
        data_root (str): the synthetic set (``annotations/`` inside).
        seed (int): ``randomness.seed``.
        iters (int, optional): steps; the cosine decay and the checkpoint
            follow. Defaults to the config's (1,200).
        lr (float, optional): AdamW learning rate, decayed to lr / 100.
        batch_size (int, optional): images per step (the config's: 4).
        workers (int, optional): loading workers (the config's: 2).
        ins_ann_file (str, optional): an absolute path to an instances
            JSON or COCO results in place of the set's instances.
        srm (dict, optional): ``model.srm`` settings (kernel, stride...).

    Returns:
        list[str]: ``key=value`` strings.
    """
    options = [
        f'train_dataloader.dataset.data_root={data_root.rstrip("/")}/',
        f'randomness.seed={seed}'
    ]
    if iters is not None:
        options += [
            f'train_cfg.max_iters={iters}', f'param_scheduler.0.end={iters}',
            f'param_scheduler.0.T_max={iters}',
            f'default_hooks.checkpoint.interval={iters}'
        ]
    if lr is not None:
        options += [
            f'optim_wrapper.optimizer.lr={lr}',
            f'param_scheduler.0.eta_min={lr / 100}'
        ]
    if batch_size is not None:
        options.append(f'train_dataloader.batch_size={batch_size}')
    if workers is not None:
        options += [
            f'train_dataloader.num_workers={workers}',
            f'train_dataloader.persistent_workers={workers > 0}'
        ]
    if ins_ann_file is not None:
        options.append(f'train_dataloader.dataset.ins_ann_file={ins_ann_file}')
    for key, value in (srm or {}).items():
        options.append(f'model.srm.{key}={value}')
    return options


def train_srm(work_dir: str,
              options: Sequence[str],
              log_file: Optional[str] = None) -> Tuple[str, List[str]]:
    """Train (or resume, or find finished) an SRM with ``tools/train.py``.

    Returns:
        tuple: the final checkpoint (``iter_<N>.pth``) and the command.
    """
    from mmoanet.apis import train_command, train_in_subprocess
    config = osp.join(REPO_ROOT, SRM_CONFIG)
    checkpoint = train_in_subprocess(
        config,
        work_dir,
        options,
        train_script=TRAIN_SCRIPT,
        cwd=REPO_ROOT,
        log_file=log_file)
    return checkpoint, train_command(
        config, work_dir, options, train_script=TRAIN_SCRIPT)


def srm_config(overrides: Optional[Dict[str, object]] = None) -> dict:
    """``model.srm`` of :data:`SRM_CONFIG` with ``overrides`` applied."""
    from mmengine.config import Config
    cfg = dict(Config.fromfile(osp.join(REPO_ROOT, SRM_CONFIG)).model.srm)
    cfg.update(overrides or {})
    return cfg


def load_trained_srm(checkpoint: str, srm_cfg: dict):
    """The SRM of a StandaloneSRM checkpoint, read with the safe loader.

    Args:
        checkpoint (str): ``iter_<N>.pth`` of :func:`train_srm`.
        srm_cfg (dict): the SRM config it was trained with.

    Returns:
        nn.Module: the SRM in eval mode, on the CPU.
    """
    from mmdet.registry import MODELS

    from mmoanet.utils import load_checkpoint_safely
    state = load_checkpoint_safely(checkpoint, map_location='cpu')
    tensors = {
        key[len('srm.'):]: value
        for key, value in state['state_dict'].items() if key.startswith('srm.')
    }
    if not tensors:
        raise ValueError(f'{checkpoint} holds no srm.* tensors: not a '
                         'StandaloneSRM checkpoint')
    srm = MODELS.build(dict(srm_cfg))
    srm.load_state_dict(tensors)
    return srm.eval()


class PairSplit:
    """One split of the synthetic set: ground truth and occluding pairs.

    Items are those of :class:`~mmoanet.datasets.SRMAnnotationDataset`
    (the masks and labels the SRM trains on); ``overlaps_<split>.json``
    names each overlapping pair by its instance annotation ids.

    Args:
        root (str): the set's folder.
        split (str): ``'train'`` or ``'val'``.
        metainfo (dict): ``classes`` and ``thing_classes``.
    """

    def __init__(self, root: str, split: str, metainfo: dict) -> None:
        from mmoanet.datasets import SRMAnnotationDataset
        self.dataset = SRMAnnotationDataset(
            ann_file=f'annotations/panoptic_{split}.json',
            ins_ann_file=f'annotations/instances_{split}.json',
            data_root=root,
            data_prefix=dict(seg=f'annotations/panoptic_{split}/'),
            metainfo=metainfo)
        annotations = osp.join(root, 'annotations')
        with open(osp.join(annotations, f'instances_{split}.json')) as f:
            instances = json.load(f)
        with open(osp.join(annotations, f'overlaps_{split}.json')) as f:
            self.pairs = {
                entry['image_id']: entry['pairs']
                for entry in json.load(f)['images']
            }
        # The dataset keeps an image's instances in the file's order,
        # crowd annotations left out: the same order gives the indices.
        self.index_of: Dict[int, Dict[int, int]] = {}
        for ann in instances['annotations']:
            if not ann.get('iscrowd', 0):
                image = self.index_of.setdefault(ann['image_id'], {})
                image[ann['id']] = len(image)

    def __len__(self) -> int:
        return len(self.dataset)

    def items(self):
        """``(gt_instances, pairs, index_of)`` per image."""
        for index in range(len(self.dataset)):
            sample = self.dataset[index]['data_samples']
            image_id = sample.metainfo['img_id']
            yield (sample.gt_instances, self.pairs.get(image_id, []),
                   self.index_of.get(image_id, {}))


def pair_accuracy(srm, split: PairSplit) -> Tuple[float, float]:
    """Share of overlapping pairs (all, of different classes) whose top
    instance the SRM ranks higher (Eq. 3), in percent."""
    import torch
    right = total = right_diff = total_diff = 0
    with torch.no_grad():
        for instances, pairs, index_of in split.items():
            if not pairs:
                continue
            scores = srm.rank_scores(instances, instances.masks.shape[-2:])
            for pair in pairs:
                good = int(scores[index_of[pair['top_id']]] > scores[index_of[
                    pair['bottom_id']]])
                cross = pair['top_category_id'] != pair['bottom_category_id']
                right, total = right + good, total + 1
                right_diff += good * cross
                total_diff += cross
    return 100.0 * right / max(total, 1), \
        100.0 * right_diff / max(total_diff, 1)
