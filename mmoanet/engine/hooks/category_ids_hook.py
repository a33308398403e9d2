"""Keep the COCO category ids of the labels in every checkpoint."""
from typing import List, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop

__all__ = ['CategoryIdsHook', 'dataset_category_ids']


def dataset_category_ids(dataset) -> Optional[List[int]]:
    """The ``cat_ids`` of a COCO-style dataset, through dataset wrappers.

    Args:
        dataset: A dataset with ``cat_ids`` (mmdet's ``CocoDataset``,
            ``CocoPanopticDataset`` and ours), or a wrapper of such with
            ``dataset`` (``RepeatDataset``, ``ClassBalancedDataset``) or
            ``datasets`` (``ConcatDataset``).

    Returns:
        list[int] | None: Label ``i``'s category id at index ``i``; None
        when the dataset has none, or the wrapped datasets disagree.
    """
    if getattr(dataset, 'cat_ids', None) is not None:
        return [int(cat_id) for cat_id in dataset.cat_ids]
    if hasattr(dataset, 'datasets'):
        found = [dataset_category_ids(inner) for inner in dataset.datasets]
        if found and all(ids is not None and ids == found[0] for ids in found):
            return found[0]
        return None
    if hasattr(dataset, 'dataset'):
        return dataset_category_ids(dataset.dataset)
    return None


@HOOKS.register_module()
class CategoryIdsHook(Hook):
    """Put the training set's category ids into ``dataset_meta``.

    mmdet numbers labels in the order of the annotation file's categories
    but keeps only the class names in ``dataset_meta``, so a checkpoint
    does not say which COCO ``category_id`` a label is; inference then had
    to find the training annotation file again, or guess ``label + 1``.
    Before the run (and before a resume compares the metainfo), this hook
    adds ``cat_ids`` to the training dataset's metainfo, which mmengine
    saves as ``meta['dataset_meta']`` in every checkpoint, and which
    :func:`~mmoanet.apis.coco_categories` reads. Our
    :class:`~mmoanet.datasets.CocoPanopticInstancesDataset` records them
    itself; this hook covers mmdet's datasets in the stock configs.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        """Add ``cat_ids`` to the training dataset's metainfo.

        Args:
            runner (Runner): The runner; nothing is done unless it trains.
        """
        # runner.test() leaves the train loop unbuilt; do not build it.
        if not isinstance(runner._train_loop, BaseLoop):
            return
        dataset = runner.train_dataloader.dataset
        cat_ids = dataset_category_ids(dataset)
        metainfo = getattr(dataset, '_metainfo', None)
        if cat_ids is None or not isinstance(metainfo, dict):
            runner.logger.warning(
                'CategoryIdsHook: the training dataset has no category '
                'ids; checkpoints will not say which COCO category each '
                'label is')
            return
        metainfo.setdefault('cat_ids', cat_ids)
