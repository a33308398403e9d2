"""Cheap checks of COCO annotations, run on every annotation at start-up.

They read the JSON only (no mask is decoded; the run lengths of a
compressed RLE are summed, not painted), so a dataset of COCO's size is
checked in seconds and a bad file stops a run before its first iteration,
with the file and the ids at fault in the message.
"""
import json
import math
from collections import Counter
from contextlib import contextmanager
from typing import Any, Hashable, Iterable, Iterator, List, Optional, Sequence

import numpy as np

from .exceptions import PanopticAnnotationError

__all__ = [
    'json_error', 'naming_json_errors', 'segmentation_problem',
    'rle_run_total', 'rle_run_totals', 'bbox_problem', 'iscrowd_problem',
    'duplicates'
]

#: A run length of a compressed RLE takes at most this many characters (5
#: bits each): 60 bits, far above any image's pixel count.
MAX_RUN_CHARS = 12
#: :func:`rle_run_totals` decodes this many characters per NumPy pass.
CHUNK_CHARS = 1 << 20


def json_error(path: str,
               error: json.JSONDecodeError) -> PanopticAnnotationError:
    """An error that names the JSON file and keeps the line and column."""
    return PanopticAnnotationError(
        f'{path} is not valid JSON: {error.msg}: line {error.lineno} column '
        f'{error.colno} (char {error.pos}); the file may be truncated or '
        'not a COCO annotation file')


@contextmanager
def naming_json_errors(path: str) -> Iterator[None]:
    """Re-raise a JSON parse error inside the block with ``path`` named.

    For readers that parse a file themselves and would otherwise report
    only ``line 1 column 7521`` (pycocotools' ``COCO``, mmdet's
    ``COCOPanoptic``, ``json.load``, ``mmengine.load``).
    """
    try:
        yield
    except json.JSONDecodeError as error:
        raise json_error(path, error) from error


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_bytes(counts: Any) -> bytes:
    if isinstance(counts, str):
        return counts.encode('ascii', 'replace')  # '?' is out of range
    return bytes(counts)


def rle_run_total(counts: Any) -> int:
    """Sum of the run lengths of a compressed RLE ``counts`` string.

    The format of pycocotools' ``rleToString`` (each run a little-endian
    group of 6-bit characters offset by 48, 5 data bits and a continuation
    bit, the last group's bit 4 a sign; from the fourth run on, runs are
    stored as the difference to the run two before). A decoder would paint
    the runs into an ``height x width`` buffer, and pycocotools' does not
    check that they fit: a total above ``height * width`` writes past the
    mask, one below leaves pixels unset, hence this check. Pure Python,
    ~0.5 us per character; :func:`rle_run_totals` does many strings at
    once.

    Args:
        counts (str | bytes): The ``counts`` of a compressed RLE.

    Returns:
        int: The total, or -1 when the string is not a valid RLE (a
        character out of range, a cut-off group, a negative run, or empty).
    """
    runs: List[int] = []
    value = shift = 0
    for byte in _as_bytes(counts):
        char = byte - 48
        if not 0 <= char <= 63 or shift >= 5 * MAX_RUN_CHARS:
            return -1
        value |= (char & 0x1f) << shift
        shift += 5
        if char & 0x20:  # the group goes on
            continue
        if char & 0x10:  # negative
            value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            return -1
        runs.append(value)
        value = shift = 0
    if shift or not runs:
        return -1
    return sum(runs)


def rle_run_totals(counts_list: Sequence[Any]) -> np.ndarray:
    """:func:`rle_run_total` of many strings, vectorised over characters.

    The same decoding in a fixed number of NumPy passes over the
    concatenated strings, for a dataset's every RLE at start-up.

    Args:
        counts_list (Sequence[str | bytes]): ``counts`` strings.

    Returns:
        np.ndarray: int64, shape (len(counts_list),), each string's total,
        -1 where it is not a valid RLE.
    """
    encoded = [_as_bytes(counts) for counts in counts_list]
    totals, chunk, chunk_chars = [], [], 0
    for counts in encoded:
        chunk.append(counts)
        chunk_chars += len(counts)
        if chunk_chars >= CHUNK_CHARS:  # bounded memory, cache-sized passes
            totals.append(_run_totals(chunk))
            chunk, chunk_chars = [], 0
    totals.append(_run_totals(chunk))
    return np.concatenate(totals)


def _run_totals(encoded: List[bytes]) -> np.ndarray:
    """:func:`rle_run_totals` of one chunk of encoded strings."""
    num = len(encoded)
    totals = np.full(num, -1, dtype=np.int64)
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=num)
    if not lengths.sum():
        return totals
    chars = np.frombuffer(b''.join(encoded), np.uint8).astype(np.int64) - 48
    string_of_char = np.repeat(np.arange(num), lengths)
    bad = np.zeros(num, dtype=bool)
    out_of_range = (chars < 0) | (chars > 63)
    bad[string_of_char[out_of_range]] = True
    chars[out_of_range] = 0
    group_end = (chars & 0x20) == 0
    nonempty = lengths > 0
    last_char = (np.cumsum(lengths) - 1)[nonempty]
    bad[np.flatnonzero(nonempty)[~group_end[last_char]]] = True  # cut off
    group_end[last_char] = True  # no group runs into the next string
    ends = np.flatnonzero(group_end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    group_len = ends - starts + 1
    group_string = string_of_char[starts]
    bad[group_string[group_len > MAX_RUN_CHARS]] = True
    position = np.arange(len(chars)) - np.repeat(starts, group_len)
    np.minimum(position, MAX_RUN_CHARS - 1, out=position)
    values = np.add.reduceat((chars & 0x1f) << (5 * position), starts)
    negative = (chars[ends] & 0x10) != 0
    values[negative] -= np.left_shift(
        1, 5 * np.minimum(group_len[negative], MAX_RUN_CHARS))
    # Run m of a string is stored as a difference to run m - 2 for m > 2:
    # two running sums, over the odd runs from 1 and the even ones from 2.
    first_group = np.searchsorted(group_string, np.arange(num))
    run_index = np.arange(len(starts)) - first_group[group_string]
    before_string = first_group[group_string] - 1
    runs = values.copy()
    for parity in (0, 1):
        in_chain = (run_index >= 1) & (run_index % 2 == parity)
        chain_sum = np.cumsum(np.where(in_chain, values, 0))
        base = np.where(before_string >= 0,
                        chain_sum[np.maximum(before_string, 0)], 0)
        runs[in_chain] = (chain_sum - base)[in_chain]
    bad[group_string[runs < 0]] = True
    sums = np.bincount(group_string, weights=runs, minlength=num)
    good = ~bad & nonempty
    totals[good] = sums[good].astype(np.int64)
    return totals


def segmentation_problem(segmentation: Any,
                         height: int,
                         width: int,
                         rle_total: Optional[int] = None) -> Optional[str]:
    """Say what is wrong with one COCO segmentation, without decoding it.

    Cheap enough for every annotation at start-up: an RLE's ``size`` is
    compared with the image, and its run lengths must sum to ``height x
    width`` (summed for an uncompressed RLE, decoded without painting by
    :func:`rle_run_total` for a compressed one: pycocotools decodes a wrong
    total to garbage); a polygon's coordinates must come in (x, y) pairs of
    numbers and lie inside the image, give or take a pixel (COCO's own
    polygons reach up to the image border, i.e. ``x <= width``). Polygons of
    fewer than three points pass: mmdet's loader marks those instances
    ignored.

    Args:
        segmentation (list | dict): Polygons (list of flat coordinate lists)
            or an RLE (``size`` [height, width] and ``counts``).
        height (int): Image height in pixels.
        width (int): Image width in pixels.
        rle_total (int, optional): The run-length total of a compressed
            RLE's counts, when the caller computed it with
            :func:`rle_run_totals` for a whole file. Defaults to None
            (computed here).

    Returns:
        str | None: A sentence on the first problem found, or None.
    """
    if isinstance(segmentation, dict):
        size, counts = segmentation.get('size'), segmentation.get('counts')
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(_is_number(v) for v in size)):
            return f'its RLE has no valid size [height, width] ({size!r})'
        if list(size) != [height, width]:
            return (f'its RLE is {size[0]}x{size[1]} (size [height, width]) '
                    f'but the image is {height}x{width}')
        if isinstance(counts, list):
            if not all(
                    isinstance(run, int) and not isinstance(run, bool)
                    and run >= 0 for run in counts):
                return ('its uncompressed RLE counts are not all '
                        'non-negative integers')
            total, kind = sum(counts), 'uncompressed'
        elif isinstance(counts, (str, bytes)):
            total = rle_total
            if total is None:
                total = rle_run_total(counts)
            if total < 0:
                return ('its RLE counts string is not a valid compressed '
                        f'RLE ({counts[:20]!r}...)')
            kind = 'compressed'
        else:
            return f'its RLE counts are a {type(counts).__name__}'
        if total != height * width:
            return (f'the run lengths of its {kind} RLE sum to {total}, not '
                    f'height x width = {height * width}: the counts encode '
                    'another size than its size')
        return None
    if not isinstance(segmentation, list):
        return (f'its segmentation is a {type(segmentation).__name__}, '
                'neither polygons (a list) nor an RLE (a dict)')
    for number, polygon in enumerate(segmentation):
        malformed = (f'polygon {number} is not a flat list of numbers '
                     '[x1, y1, x2, y2, ...]')
        if not isinstance(polygon, list):
            return malformed
        if len(polygon) % 2:
            return (f'polygon {number} has an odd number of coordinates '
                    f'({len(polygon)})')
        if not polygon:
            continue
        xs, ys = polygon[0::2], polygon[1::2]
        try:
            # min/max and the comparisons raise TypeError on anything but
            # numbers, at a fraction of the cost of a check per element.
            x_range, y_range = (min(xs), max(xs)), (min(ys), max(ys))
            inside = (-1 <= x_range[0] and x_range[1] <= width + 1
                      and -1 <= y_range[0] and y_range[1] <= height + 1)
        except TypeError:
            return malformed
        if not inside:
            return (f'polygon {number} reaches x {x_range[0]}..{x_range[1]}, '
                    f'y {y_range[0]}..{y_range[1]}, outside the '
                    f'{height}x{width} image')
    return None


def bbox_problem(bbox: Any, height: int, width: int) -> Optional[str]:
    """Say what is wrong with a COCO box ``[x, y, w, h]``, or None.

    Refused: anything but four finite numbers, a negative width or height,
    and a box that does not touch the ``height x width`` image at all (the
    image's size or the box's origin is wrong). Boxes narrower than a
    pixel pass: mmdet's loaders skip them as degenerate.
    """
    if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
            or not all(_is_number(value) for value in bbox)):
        return f'its bbox {bbox!r} is not four numbers [x, y, w, h]'
    if not all(math.isfinite(value) for value in bbox):
        return f'its bbox {list(bbox)} is not finite'
    x, y, w, h = bbox
    if w < 0 or h < 0:
        return f'its bbox {list(bbox)} has a negative width or height'
    if w > 0 and h > 0 and (x >= width or y >= height or x + w <= 0
                            or y + h <= 0):
        return (f'its bbox {list(bbox)} lies outside the {height}x{width} '
                'image')
    return None


def iscrowd_problem(annotation: dict) -> Optional[str]:
    """Say what is wrong with an annotation's ``iscrowd``, or None.

    COCO's ``iscrowd`` is 0 or 1; anything else (2, 'yes', null) is a
    broken file that would otherwise be read as truthy or falsy.
    """
    iscrowd = annotation.get('iscrowd', 0)
    if iscrowd not in (0, 1):
        return f'its iscrowd is {iscrowd!r}, not 0 or 1'
    return None


def duplicates(values: Iterable[Hashable]) -> list:
    """The values that occur more than once, in first-seen order."""
    return [value for value, count in Counter(values).items() if count > 1]
