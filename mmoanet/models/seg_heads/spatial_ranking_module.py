"""Spatial ranking module of OANet (Sec. 3.2, Eq. 2-3, Table 5).

Shape shorthand used in this file::

    B: images in the batch         N: instances in one image
    C_th: thing classes            s: ``stride`` of the SRM grid
    H, W: canvas the masks live on (padded input when training,
          ``img_shape`` at inference)
    h, w: ceil(H / s), ceil(W / s), the SRM grid
    H_m, W_m: size of a mask tensor as it arrives (may differ from H, W)
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.mask import BaseInstanceMasks
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from ...utils.config_keys import check_known_keys, parameter_names
from ...utils.constants import IGNORE_INDEX

KERNELS = ('1x1', '3x3', '1x7+7x1')
TRAIN_INPUTS = ('pred', 'gt', 'both')
RANK_REGIONS = ('mask', 'conflict')

MaskType = Union[Tensor, BaseInstanceMasks]


def as_bool_masks(masks: MaskType, device: torch.device) -> Tensor:
    """Return instance masks as a bool tensor on ``device``.

    Args:
        masks (Tensor | BaseInstanceMasks): bool/uint8 tensor of shape
            (N, H_m, W_m), or mmdet ``BitmapMasks`` / ``PolygonMasks``.
        device (torch.device): Where the result lives.

    Returns:
        Tensor: bool, shape (N, H_m, W_m).
    """
    if isinstance(masks, BaseInstanceMasks):
        return masks.to_tensor(dtype=torch.bool, device=device)
    return masks.to(device=device, dtype=torch.bool)


@MODELS.register_module()
class SpatialRankingModule(BaseModule):
    """Spatial ranking module (SRM), OANet Sec. 3.2.

    The instance masks of an image are pasted into a binary tensor with one
    channel per thing class (Fig. 4); a convolution turns it into a ranking
    score map, trained with a cross-entropy on the pixels where instances of
    different classes overlap (Eq. 2). The ranking score of an instance is
    the mean, over its mask, of the softmax score of its class (Eq. 3).

    Sampling the masks on the SRM grid: cell ``(i, j)`` takes the value of
    canvas pixel ``(i * s, j * s)`` (strided nearest sampling, what
    ``F.interpolate(mode='nearest')`` does for an integer factor). It costs
    one gather of ``N * h * w`` elements, and the ground-truth semantic map
    is sampled at exactly the same pixels, so a conflict on the grid is a
    real conflict of the full-resolution masks with its real label. An
    instance narrower than ``s`` pixels may miss every sampled pixel; for
    its ranking score only, the cells it touches are used instead (found by
    binning its pixels, done for such instances alone).

    Args:
        num_things_classes (int): C_th, channels of the instance tensor.
            Defaults to 80 (COCO).
        stride (int): Stride of the SRM grid with respect to the padded input.
            ``1`` is the paper's "tensor of input size". Defaults to 4: the
            ``'1x7+7x1'`` block costs ``4 * C_th**2 * k`` multiply-adds per
            grid cell (about 12 GMAC at 800x1344 with stride 4, 16x more with
            stride 1), while a stride of 4 still samples every object wider
            than 4 pixels, the scale of the finest FPN level (P2) the masks
            come from. Measured on CPU at 800x1333 (``docs/benchmarks.md``):
            stride 4 takes 0.4-0.7% of OANet inference (20-100 instances),
            stride 2 1.8-4.7%, stride 1 8-21%; whether PQ drops against
            stride 1 is for the training study in that document.
        kernel (str): Convolution setting of Table 5: ``'1x1'``, ``'3x3'``
            or ``'1x7+7x1'`` (default, the best row of Table 5): a large
            kernel block in the Global Convolutional Network style, the sum
            of a (k x 1 then 1 x k) path and a (1 x k then k x 1) path.
        kernel_size (int): k of the ``'1x7+7x1'`` block, odd. Defaults to 7.
            Unused by the other settings.
        train_input (str): Which instance masks are pasted during training:
            ``'pred'`` (detached predictions of the instance branch, works on
            any panoptic dataset), ``'gt'`` (ground-truth instance masks;
            they overlap only when the dataset loads COCO instance
            annotations) or ``'both'``, whose loss is the MEAN of the
            ``'pred'`` and ``'gt'`` losses (each averaged over its own
            conflicting pixels), so ``loss_weight`` means the same in every
            mode. Defaults to ``'gt'``: Sec. 4.2 passes the instance
            branch's outputs through the SRM at inference "since we do not
            have the ground truth now", i.e. training pastes ground truth.
            It is also the cheap choice: ``'pred'`` costs an extra
            detection pass per training batch (docs/benchmarks.md).
        rank_region (str): Region of Eq. 3: ``'mask'`` (the whole mask, as
            the paper) or ``'conflict'`` (only the part of the mask where
            another class is active, falling back to the whole mask when
            there is none). Defaults to ``'mask'``.
        loss_weight (float): Weight of ``loss_srm``. Defaults to 1.0.
        init_cfg (dict or list[dict], optional): Initialization config.
        **kwargs: None is taken: a misspelt key (``kernal``) raises
            :class:`~mmoanet.utils.config_keys.UnknownConfigKeyError`
            naming the closest known one.
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 stride: int = 4,
                 kernel: str = '1x7+7x1',
                 kernel_size: int = 7,
                 train_input: str = 'gt',
                 rank_region: str = 'mask',
                 loss_weight: float = 1.0,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        check_known_keys(kwargs,
                         parameter_names(SpatialRankingModule.__init__),
                         'the SRM config (SpatialRankingModule)')
        super().__init__(init_cfg=init_cfg)
        assert kernel in KERNELS, f'kernel must be one of {KERNELS}'
        assert train_input in TRAIN_INPUTS, \
            f'train_input must be one of {TRAIN_INPUTS}'
        assert rank_region in RANK_REGIONS, \
            f'rank_region must be one of {RANK_REGIONS}'
        assert stride >= 1 and kernel_size % 2 == 1
        self.num_things_classes = num_things_classes
        self.stride = stride
        self.kernel = kernel
        self.kernel_size = kernel_size
        self.train_input = train_input
        self.rank_region = rank_region
        self.loss_weight = loss_weight
        self._init_layers()

    def _init_layers(self) -> None:
        """Build the convolution chosen by ``kernel`` (Table 5)."""
        channels = self.num_things_classes
        if self.kernel == '1x1':
            self.score_conv = nn.Conv2d(channels, channels, 1)
            return
        if self.kernel == '3x3':
            self.score_conv = nn.Conv2d(channels, channels, 3, padding=1)
            return
        k, pad = self.kernel_size, self.kernel_size // 2
        # No bias before the second conv of a path: the padded border of the
        # canvas then stays exactly zero, so a mask pasted on the padded input
        # (training) and on ``img_shape`` (inference) give the same scores.
        # One bias for the sum of the two paths is enough.
        self.left_kx1 = nn.Conv2d(
            channels, channels, (k, 1), padding=(pad, 0), bias=False)
        self.left_1xk = nn.Conv2d(channels, channels, (1, k), padding=(0, pad))
        self.right_1xk = nn.Conv2d(
            channels, channels, (1, k), padding=(0, pad), bias=False)
        self.right_kx1 = nn.Conv2d(
            channels, channels, (k, 1), padding=(pad, 0), bias=False)

    def forward(self,
                instance_tensor: Tensor,
                present: Optional[Tensor] = None) -> Tensor:
        """Ranking score map (logits) of a pasted instance tensor.

        Args:
            instance_tensor (Tensor): float, shape (B, C_th, h, w), 1 where
                an instance of the channel's class covers the cell.
            present (Tensor, optional): long, shape (K,): the only channels
                that may be non-zero; then :meth:`forward_present` computes
                the same logits with less work. Defaults to None (dense).

        Returns:
            Tensor: float, shape (B, C_th, h, w), ranking logits.
        """
        if present is not None:
            return self.forward_present(instance_tensor, present)
        if self.kernel != '1x7+7x1':
            return self.score_conv(instance_tensor)
        left = self.left_1xk(self.left_kx1(instance_tensor))
        right = self.right_kx1(self.right_1xk(instance_tensor))
        return left + right

    def forward_present(self, instance_tensor: Tensor,
                        present: Tensor) -> Tensor:
        """:meth:`forward` for an input where only ``present`` channels fire.

        At inference an image holds a few of the C_th classes; every other
        input channel is zero, so the convolutions that read the input only
        need the K present channels (exact). For ``'1x7+7x1'`` with few
        classes, each (k x 1, 1 x k) path is folded into one k x k kernel
        from the K present classes to all C_th, which is exact too because
        the first conv of a path has no bias and both pad with zeros: per
        grid cell ``k * k * K * C_th`` multiply-adds instead of
        ``4 * k * C_th**2`` (see :meth:`macs_per_cell`).

        Args:
            instance_tensor (Tensor): float, shape (B, C_th, h, w), zero
                outside the ``present`` channels.
            present (Tensor): long, shape (K,), the classes that may fire.

        Returns:
            Tensor: float, shape (B, C_th, h, w), the logits of
            :meth:`forward` up to float rounding.
        """
        inputs = instance_tensor.index_select(1, present)
        if self.kernel != '1x7+7x1':
            conv = self.score_conv
            return F.conv2d(
                inputs,
                conv.weight.index_select(1, present),
                conv.bias,
                padding=conv.padding)
        pad = self.kernel_size // 2
        if self._fold_paths(len(present)):
            # (C_th, C_th, k, 1) then (C_th, C_th, 1, k) -> (C_th, K, k, k).
            return F.conv2d(
                inputs,
                self._folded_weight(present),
                self.left_1xk.bias,
                padding=pad)
        left = F.conv2d(
            inputs,
            self.left_kx1.weight.index_select(1, present),
            padding=(pad, 0))
        right = F.conv2d(
            inputs,
            self.right_1xk.weight.index_select(1, present),
            padding=(0, pad))
        return self.left_1xk(left) + self.right_kx1(right)

    def _fold_paths(self, num_present: int) -> bool:
        """Whether one folded k x k kernel is cheaper than the two paths."""
        k, channels = self.kernel_size, self.num_things_classes
        return k * k * num_present < 2 * k * (num_present + channels)

    def macs_per_cell(self, num_present: Optional[int] = None) -> int:
        """Multiply-adds per grid cell of the ranking convolution.

        Args:
            num_present (int, optional): K classes present, as in
                :meth:`forward_present`. Defaults to None: all C_th, the
                dense :meth:`forward`.

        Returns:
            int: Multiply-adds per cell of the (h, w) grid.
        """
        channels = self.num_things_classes
        if num_present is None:
            num_present = channels
            dense = True
        else:
            dense = False
        if self.kernel == '1x1':
            return num_present * channels
        if self.kernel == '3x3':
            return 9 * num_present * channels
        k = self.kernel_size
        if dense:
            return 4 * k * channels * channels
        if self._fold_paths(num_present):
            return k * k * num_present * channels
        return 2 * k * channels * (num_present + channels)

    def grid_size(self, size: Sequence[int]) -> Tuple[int, int]:
        """(h, w) of the SRM grid for a canvas of ``size`` = (H, W)."""
        return (math.ceil(size[0] / self.stride),
                math.ceil(size[1] / self.stride))

    def _grid_index(self, canvas_len: int, src_len: int, ratio: float,
                    device: torch.device) -> Tensor:
        """Source index sampled by each grid line that falls on the source.

        Grid line ``i`` sits at canvas pixel ``i * s``, i.e. source pixel
        ``floor(i * s * ratio)``. Lines past the source (padding) are left
        out; as indices grow with ``i``, the kept ones are a prefix.

        Returns:
            Tensor: long, shape (L,), L <= ceil(canvas_len / s).
        """
        positions = torch.arange(
            0, canvas_len, self.stride, device=device, dtype=torch.float64)
        index = torch.floor(positions * ratio).long()
        return index[index < src_len]

    def sample_masks(self,
                     masks: Tensor,
                     size: Sequence[int],
                     ratio: Optional[Sequence[float]] = None) -> Tensor:
        """Sample masks on the SRM grid of a (H, W) canvas.

        Args:
            masks (Tensor): bool, shape (N, H_m, W_m). Cropped or zero-padded
                at the bottom/right to the canvas.
            size (Sequence[int]): (H, W) of the canvas.
            ratio (Sequence[float], optional): Mask pixels per canvas pixel
                along (y, x). Defaults to None: (1, 1), the masks are at the
                canvas scale.

        Returns:
            Tensor: bool, shape (N, h, w).
        """
        ratio = ratio or (1., 1.)
        h, w = self.grid_size(size)
        rows = self._grid_index(size[0], masks.shape[-2], ratio[0],
                                masks.device)
        cols = self._grid_index(size[1], masks.shape[-1], ratio[1],
                                masks.device)
        grid = masks.new_zeros((masks.shape[0], h, w))
        grid[:, :len(rows), :len(cols)] = masks.index_select(
            1, rows).index_select(2, cols)
        return grid

    def _paste_grids(self, grids: List[Tensor],
                     labels_list: List[Tensor]) -> Tensor:
        """Paste sampled masks into their class channels.

        Args:
            grids (list[Tensor]): per image, bool, shape (N, h, w).
            labels_list (list[Tensor]): per image, long, shape (N,).

        Returns:
            Tensor: float, shape (B, C_th, h, w), values in {0, 1}.
        """
        h, w = grids[0].shape[-2:]
        device = self._device()
        instance_tensor = torch.zeros(
            (len(grids), self.num_things_classes, h, w), device=device)
        for image_tensor, grid, labels in zip(instance_tensor, grids,
                                              labels_list):
            image_tensor.index_add_(0,
                                    labels.to(device).long(),
                                    grid.to(device=device, dtype=torch.float))
        return instance_tensor.clamp_(max=1)

    def paste(self, masks_list: List[MaskType], labels_list: List[Tensor],
              size: Sequence[int]) -> Tensor:
        """Instance tensor of Fig. 4 at ``stride`` of a (H, W) canvas.

        Args:
            masks_list (list[Tensor | BaseInstanceMasks]): per image, bool
                (N, H_m, W_m) at the canvas scale (cropped or zero-padded
                into it), or ``BitmapMasks`` / ``PolygonMasks``. N may be 0.
            labels_list (list[Tensor]): per image, long, shape (N,), thing
                labels 0 .. C_th-1.
            size (Sequence[int]): (H, W) of the canvas (padded input).

        Returns:
            Tensor: float, shape (B, C_th, h, w), 1 where an instance of the
            channel's class covers the grid cell, else 0.
        """
        device = self._device()
        grids = [
            self.sample_masks(as_bool_masks(masks, device), size)
            for masks in masks_list
        ]
        return self._paste_grids(grids, labels_list)

    def sample_sem_seg(self, batch_data_samples: SampleList,
                       size: Sequence[int]) -> Tensor:
        """Ground-truth semantic labels sampled at the pixels of ``paste``.

        Args:
            batch_data_samples (list[DetDataSample]): each with
                ``gt_sem_seg.sem_seg`` of shape (1, H_s, W_s), things
                0 .. C_th-1, stuff C_th .., ignore 255.
            size (Sequence[int]): (H, W) of the canvas.

        Returns:
            Tensor: long, shape (B, h, w); 255 outside the labelled area.
        """
        device = self._device()
        labels = []
        for data_sample in batch_data_samples:
            sem_seg = data_sample.gt_sem_seg.sem_seg.to(device).long()
            # Shift by one so that the zero padding of ``sample_masks``
            # marks cells off the map, then map those to the ignore index.
            grid = self.sample_masks(sem_seg + 1, size)[0] - 1
            labels.append(grid.masked_fill_(grid < 0, IGNORE_INDEX))
        return torch.stack(labels)

    def conflict_labels(self, instance_tensor: Tensor,
                        sem_grid: Tensor) -> Tensor:
        """Target of Eq. 2: the true class at conflicting cells only.

        A cell is a conflict when two or more different thing classes are
        active there (two instances of one class are not). Its target is the
        ground-truth class of the cell when that class is one of the active
        ones; every other cell is ignored.

        Args:
            instance_tensor (Tensor): float, shape (B, C_th, h, w).
            sem_grid (Tensor): long, shape (B, h, w), from
                ``sample_sem_seg``.

        Returns:
            Tensor: long, shape (B, h, w), class in 0 .. C_th-1 or 255.
        """
        active = instance_tensor > 0
        # Active classes per cell counted in uint8 (exact below 256
        # classes): summing bools into int64 is ~50x slower on CPU.
        count_dtype = (
            torch.uint8 if self.num_things_classes < 256 else torch.int32)
        conflict_mask = active.view(torch.uint8).sum(
            dim=1, dtype=count_dtype) >= 2
        is_thing = sem_grid < self.num_things_classes
        thing_class = sem_grid.clamp(max=self.num_things_classes - 1)
        class_active = active.gather(1, thing_class[:, None])[:, 0]
        keep = conflict_mask & is_thing & class_active
        return torch.where(keep, sem_grid,
                           torch.full_like(sem_grid, IGNORE_INDEX))

    def loss(self, instances_list: Optional[List[InstanceData]],
             batch_data_samples: SampleList) -> dict:
        """Loss of the SRM, Eq. 2.

        Args:
            instances_list (list[InstanceData], optional): Per image, the
                instance branch predictions on the training batch from
                ``roi_head.predict(..., rescale=False)``, with ``masks``
                bool (N, H_m, W_m) at ``img_shape`` and ``labels`` long (N,).
                Used (detached) when ``train_input`` is ``'pred'`` or
                ``'both'``; may be None for ``'gt'``.
            batch_data_samples (list[DetDataSample]): with ``gt_sem_seg``,
                and ``gt_instances`` (``masks``, ``labels``) for ``'gt'``.

        Returns:
            dict[str, Tensor]: ``loss_srm``, a scalar.
        """
        size = self._canvas_size(batch_data_samples)
        sources = []
        if self.train_input in ('pred', 'both'):
            assert instances_list is not None, \
                "train_input='pred' needs the instance predictions"
            sources.append(instances_list)
        if self.train_input in ('gt', 'both'):
            sources.append(
                [sample.gt_instances for sample in batch_data_samples])
        # ``paste`` turns masks into bool, which detaches predictions.
        instance_tensor = torch.cat([
            self.paste([inst.masks for inst in instances],
                       [inst.labels for inst in instances], size)
            for instances in sources
        ])
        sem_grid = self.sample_sem_seg(batch_data_samples, size)
        target = self.conflict_labels(instance_tensor,
                                      sem_grid.repeat(len(sources), 1, 1))
        # Logits at the conflicting cells only (the other cells are ignored
        # by Eq. 2), for every source at once; each source is averaged over
        # its own conflicting cells, then the sources are averaged.
        cells = (target != IGNORE_INDEX).nonzero()
        logits = self.conflict_logits(instance_tensor, cells)
        labels = target[cells[:, 0], cells[:, 1], cells[:, 2]]
        source = torch.div(
            cells[:, 0], len(batch_data_samples), rounding_mode='floor')
        losses = []
        for index in range(len(sources)):
            chosen = source == index
            loss_sum = F.cross_entropy(
                logits[chosen], labels[chosen], reduction='sum')
            losses.append(loss_sum / chosen.sum().clamp(min=1))
        return dict(loss_srm=self.loss_weight * sum(losses) / len(losses))

    def conflict_logits(self, instance_tensor: Tensor,
                        cells: Tensor) -> Tensor:
        """Logits of :meth:`forward` at some cells of the grid only.

        Eq. 2 is a cross-entropy over the conflicting cells alone, a few
        per cent of the grid, so the training loss needs the logits there
        and nowhere else. Each cell's logits are computed from its
        receptive field: the convolution restricted to the classes present
        in the batch (every other input channel is zero) and, for
        ``'1x7+7x1'``, its two paths folded into one k x k kernel (exact, as
        in :meth:`forward_present`; the gradients reach all four weights
        through the fold). At 480 x 640, stride 4, 80 classes this is about
        50x cheaper than the dense forward and backward. The dense forward
        is used instead when it costs fewer multiply-adds or the receptive
        fields would take more memory than four instance tensors
        (conflicts on much of the grid).

        Args:
            instance_tensor (Tensor): float, shape (B, C_th, h, w).
            cells (Tensor): long, shape (M, 3): image, row and column of
                each cell.

        Returns:
            Tensor: float, shape (M, C_th), ``self(instance_tensor)`` at
            the cells, up to float rounding.
        """
        batch, channels, height, width = instance_tensor.shape
        index_b, index_y, index_x = cells.unbind(1)
        present = instance_tensor.flatten(2).amax(dim=2).amax(dim=0)
        present = torch.nonzero(present > 0)[:, 0]
        if self.kernel == '1x7+7x1':
            weight = self._folded_weight(present)
            bias = self.left_1xk.bias
        else:
            weight = self.score_conv.weight.index_select(1, present)
            bias = self.score_conv.bias
        kernel_h, kernel_w = weight.shape[-2:]
        patch_len = kernel_h * kernel_w * len(present)
        dense_macs = batch * height * width * self.macs_per_cell()
        # The gathered fields are kept for the backward pass: past a few
        # dense tensors of memory, the dense forward is the better deal.
        if (len(cells) * patch_len * channels > dense_macs
                or len(cells) * patch_len > 4 * instance_tensor.numel()):
            return self(instance_tensor)[index_b, :, index_y, index_x]
        pad_h, pad_w = kernel_h // 2, kernel_w // 2
        padded = F.pad(
            instance_tensor.index_select(1, present),
            (pad_w, pad_w, pad_h, pad_h)).permute(0, 2, 3, 1)
        rows = index_y[:, None, None] + torch.arange(
            kernel_h, device=cells.device)[None, :, None]
        cols = index_x[:, None, None] + torch.arange(
            kernel_w, device=cells.device)[None, None, :]
        # (M, k_h, k_w, K) receptive fields, in the weight's element order.
        patches = padded[index_b[:, None, None], rows, cols]
        weight = weight.permute(2, 3, 1, 0).reshape(patch_len, channels)
        return patches.reshape(len(cells), patch_len) @ weight + bias

    def _folded_weight(self, present: Tensor) -> Tensor:
        """The two ``'1x7+7x1'`` paths as one (C_th, K, k, k) kernel from
        the ``present`` input classes (exact: the first conv of each path
        has no bias and both pad with zeros)."""
        left = torch.einsum('cmx,mky->ckyx', self.left_1xk.weight[:, :, 0],
                            self.left_kx1.weight[:, present, :, 0])
        right = torch.einsum('cmy,mkx->ckyx', self.right_kx1.weight[..., 0],
                             self.right_1xk.weight[:, present, 0])
        return left + right

    def rank_scores(self, instances: InstanceData,
                    img_shape: Sequence[int]) -> Tensor:
        """Ranking score of each instance, Eq. 3.

        The masks are resampled from their own size to ``img_shape`` (the
        resized network input) before pasting, so the kernel sees objects at
        the scale it was trained on, whatever the original image size.

        Args:
            instances (InstanceData): ``masks`` bool (N, H_m, W_m), e.g. at
                the original image size, and ``labels`` long (N,).
            img_shape (Sequence[int]): (H, W) of the resized input.

        Returns:
            Tensor: float, shape (N,), in [0, 1].
        """
        device = self._device()
        labels = instances.labels.to(device).long()
        if len(labels) == 0:
            return torch.zeros((0, ), device=device)
        masks = as_bool_masks(instances.masks, device)
        size = tuple(img_shape[:2])
        ratio = (masks.shape[-2] / size[0], masks.shape[-1] / size[1])
        grids = self.sample_masks(masks, size, ratio)
        instance_tensor = self._paste_grids([grids], [labels])
        present = labels.unique()
        probs = self(instance_tensor, present).softmax(dim=1)[0]
        regions = self._rank_regions(grids, masks, instance_tensor[0], size,
                                     ratio).float()
        class_probs = probs[labels]
        region_areas = regions.sum(dim=(1, 2)).clamp(min=1)
        return (class_probs * regions).sum(dim=(1, 2)) / region_areas

    def _rank_regions(self, grids: Tensor, masks: Tensor,
                      instance_tensor: Tensor, size: Sequence[int],
                      ratio: Tuple[float, float]) -> Tensor:
        """Cells that Eq. 3 averages over, per instance.

        Args:
            grids (Tensor): bool, shape (N, h, w), sampled masks.
            masks (Tensor): bool, shape (N, H_m, W_m), full masks.
            instance_tensor (Tensor): float, shape (C_th, h, w).
            size (Sequence[int]): (H, W) of the canvas.
            ratio (tuple[float, float]): Mask pixels per canvas pixel.

        Returns:
            Tensor: bool, shape (N, h, w).
        """
        regions = grids
        missed = ~grids.flatten(1).any(dim=1)
        if missed.any():
            regions = grids.clone()
            regions[missed] = self._touched_cells(masks[missed], size, ratio)
        if self.rank_region == 'conflict':
            conflict_mask = (instance_tensor > 0).sum(dim=0) >= 2
            conflict_part = regions & conflict_mask
            has_conflict = conflict_part.flatten(1).any(dim=1)
            regions = torch.where(has_conflict[:, None, None], conflict_part,
                                  regions)
        return regions

    def _touched_cells(self, masks: Tensor, size: Sequence[int],
                       ratio: Tuple[float, float]) -> Tensor:
        """Grid cells holding any pixel of each mask (bins the pixels).

        Args:
            masks (Tensor): bool, shape (K, H_m, W_m).

        Returns:
            Tensor: bool, shape (K, h, w).
        """
        h, w = self.grid_size(size)
        device = masks.device

        def cell_index(src_len: int, axis_ratio: float, grid_len: int):
            centres = torch.arange(src_len, device=device) + 0.5
            cells = torch.floor(centres / axis_ratio / self.stride).long()
            return cells.clamp(max=grid_len - 1)

        rows = cell_index(masks.shape[-2], ratio[0], h)
        cols = cell_index(masks.shape[-1], ratio[1], w)
        counts = masks.new_zeros((masks.shape[0], h, masks.shape[-1]),
                                 dtype=torch.float)
        counts.index_add_(1, rows, masks.float())
        cells = counts.new_zeros((masks.shape[0], h, w))
        cells.index_add_(2, cols, counts)
        return cells > 0

    @staticmethod
    def _canvas_size(batch_data_samples: SampleList) -> Tuple[int, int]:
        """(H, W) of the padded batch input."""
        metainfo = batch_data_samples[0].metainfo
        if 'batch_input_shape' in metainfo:
            return tuple(metainfo['batch_input_shape'][:2])
        shapes = [
            data_sample.gt_sem_seg.sem_seg.shape[-2:]
            for data_sample in batch_data_samples
        ]
        heights, widths = zip(*shapes)
        return max(heights), max(widths)

    def _device(self) -> torch.device:
        """Device of the SRM weights."""
        return next(self.parameters()).device
