"""Stop training at the first loss that is not finite."""
import math
from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

__all__ = ['FiniteLossHook', 'NonFiniteLossError']


class NonFiniteLossError(FloatingPointError):
    """A loss term or a weight to be saved is NaN or infinite."""


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at a NaN or infinite loss, naming the iteration and
    the terms; refuse to save weights that are not finite.

    mmdet's ``CheckInvalidLossHook`` looks at the total loss every 50
    iterations and fails with an empty ``AssertionError``; by then a run
    with a diverged learning rate has logged ``loss: nan`` for many
    iterations and may have saved checkpoints of NaN weights that
    ``--resume`` then picks up. This hook:

    - after every training iteration checks every term whose name holds
      ``'loss'`` (those mmengine sums into the total) and the total, and
      raises :class:`NonFiniteLossError` with the iteration (as the log
      counts it, from 1) and each term's value. Its priority runs it before
      the logger and the checkpoint hook of that iteration, so nothing of
      the bad step is saved. The check stacks the terms into one tensor:
      one device synchronisation, which mmengine's logging makes each
      iteration anyway;
    - before any checkpoint is written, checks that every floating tensor of
      its ``state_dict`` is finite (a step can diverge with a finite loss),
      and raises naming the first bad tensor, so ``last_checkpoint`` keeps
      pointing at the last good file.

    Every config we ship lists it in ``custom_hooks``.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Raise if a loss term of this iteration is not finite.

        Args:
            runner (Runner): The training runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict, optional): The batch. Unused.
            outputs (dict, optional): ``log_vars`` of ``train_step``:
                name to a scalar tensor or number.

        Raises:
            NonFiniteLossError: Naming the iteration and each term.
        """
        if not outputs:
            return
        terms = {
            name: value
            for name, value in outputs.items()
            if 'loss' in name and isinstance(value, (torch.Tensor, int, float))
        }
        if not terms:
            return
        values = [
            torch.as_tensor(value, dtype=torch.float32).detach().reshape(-1)
            for value in terms.values()
        ]
        device = next((v.device for v in values if v.device.type != 'cpu'),
                      torch.device('cpu'))
        stacked = torch.cat([value.to(device) for value in values])
        if bool(torch.isfinite(stacked).all()):
            return
        floats = [float(value.float().mean()) for value in values]
        bad = [
            f'{name}={value}' for name, value in zip(terms, floats)
            if not math.isfinite(value)
        ]
        good = [
            f'{name}={value:.4g}' for name, value in zip(terms, floats)
            if math.isfinite(value)
        ]
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        raise NonFiniteLossError(
            f'training stopped at {where}: loss not finite: '
            f'{", ".join(bad)}' +
            (f' (finite: {", ".join(good)})' if good else '') +
            '. This step is not saved; the last checkpoint holds the '
            'weights before it. Lower the learning rate, add gradient '
            'clipping (optim_wrapper.clip_grad) or check the data of this '
            'iteration.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to write a checkpoint whose weights are not finite.

        Args:
            runner (Runner): The training runner.
            checkpoint (dict): The checkpoint about to be saved, with
                ``state_dict``.

        Raises:
            NonFiniteLossError: Naming the first tensor with a NaN or an
                infinity.
        """
        for name, tensor in checkpoint.get('state_dict', {}).items():
            if (isinstance(tensor, torch.Tensor)
                    and tensor.is_floating_point()
                    and not bool(torch.isfinite(tensor).all())):
                meta = checkpoint.get('meta', {})
                raise NonFiniteLossError(
                    f'training stopped at iteration {meta.get("iter")} '
                    f'(epoch {meta.get("epoch")}): weight {name} is not '
                    'finite, so its checkpoint is not saved; the last one '
                    'saved holds the weights before the divergence. Lower '
                    'the learning rate or add gradient clipping '
                    '(optim_wrapper.clip_grad).')
