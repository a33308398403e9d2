"""Compare every checkpoint a Runner loads with its model."""
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop

from ...utils.checkpoint import check_checkpoint_matches


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Refuse a checkpoint of another model when testing; log warm starts.

    mmengine's Runner loads ``load_from`` with ``strict=False`` and prints
    what did not fit to the console only. This hook runs when the checkpoint
    has been read and before its weights go into the model
    (``after_load_checkpoint``), so the file is read once, and applies
    :func:`~mmoanet.utils.check_checkpoint_matches`:

    - testing or validating (``runner.test()``, ``runner.val()``) and
      resuming: any model tensor missing from the checkpoint or of another
      shape raises :class:`~mmoanet.utils.CheckpointMismatchError`, naming
      the first keys and both shapes;
    - a warm start (``load_from`` without ``resume``, possibly from another
      architecture) and a partial load asked for: every skipped or missing
      key is written to the Runner's logger, i.e. into the log file of the
      work dir.

    Every config we ship lists it in ``custom_hooks``; ``tools/train.py`` and
    ``tools/test.py`` add it to any config that lacks it.

    Args:
        allow_partial (bool, optional): Log instead of raising in every
            mode. None takes the config key ``allow_partial_load``
            (``tools/test.py --allow-partial-load`` sets it), else False.
            Defaults to None.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_partial: Optional[bool] = None) -> None:
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Check ``checkpoint`` against ``runner.model``.

        Args:
            runner (Runner): The runner that read the checkpoint.
            checkpoint (dict): The checkpoint as read (``state_dict``,
                ``meta``, ...).

        Raises:
            CheckpointMismatchError: A model tensor is missing or of another
                shape, and the load may not be partial (see above).
        """
        allow_partial = self.allow_partial
        if allow_partial is None:
            allow_partial = bool(runner.cfg.get('allow_partial_load', False))
        # Runner.train() builds its train loop before it loads; test() and
        # val() leave the loop's config unbuilt.
        training = isinstance(runner._train_loop, BaseLoop)
        warm_start = training and not runner._resume
        check_checkpoint_matches(
            runner.model,
            checkpoint,
            allow_partial=allow_partial or warm_start,
            logger=runner.logger,
            source=runner._load_from)
