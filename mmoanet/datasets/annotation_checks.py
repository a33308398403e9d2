"""Cheap checks of COCO annotations, run on every annotation at start-up.

They read the JSON only (no mask is decoded), so a dataset of COCO's size
is checked in seconds and a bad file stops a run before its first
iteration, with the file and the ids at fault in the message.
"""
import json
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from .exceptions import PanopticAnnotationError

__all__ = ['json_error', 'naming_json_errors', 'segmentation_problem']


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


def segmentation_problem(segmentation: Any, height: int,
                         width: int) -> Optional[str]:
    """Say what is wrong with one COCO segmentation, without decoding it.

    Cheap enough for every annotation at start-up: an RLE's ``size`` is
    compared with the image (and the run lengths of an uncompressed RLE are
    summed); a polygon's coordinates must come in (x, y) pairs of numbers
    and lie inside the image, give or take a pixel (COCO's own polygons
    reach up to the image border, i.e. ``x <= width``). Polygons of fewer
    than three points pass: mmdet's loader marks those instances ignored.

    Args:
        segmentation (list | dict): Polygons (list of flat coordinate lists)
            or an RLE (``size`` [height, width] and ``counts``).
        height (int): Image height in pixels.
        width (int): Image width in pixels.

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
            if sum(counts) != height * width:
                return (f'the run lengths of its uncompressed RLE sum to '
                        f'{sum(counts)}, not height x width = '
                        f'{height * width}')
        elif not isinstance(counts, (str, bytes)):
            return f'its RLE counts are a {type(counts).__name__}'
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
