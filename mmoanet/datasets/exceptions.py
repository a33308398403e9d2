"""Errors raised for inconsistent panoptic or instance annotations.

Bad annotation files must stop loading with a message that names the file
and the image or segment at fault; a wrong label that trains silently is far
costlier to find than a crash.
"""


class PanopticAnnotationError(ValueError):
    """Annotations disagree with each other or with the files on disk.

    Raised, for example, for a segment id found in a panoptic PNG but not in
    its JSON entry, an unknown category id, a PNG or image whose size
    differs from its JSON entry, an RLE or polygon that does not fit its
    image, or an annotation file that is not valid JSON.
    """


class PanopticFileNotFoundError(FileNotFoundError):
    """An image or panoptic PNG listed in an annotation file is missing."""


class DatasetItemError(RuntimeError):
    """Preparing one image of a dataset failed.

    Wraps an error of the data pipeline (an undecodable image, say) that
    would otherwise name no file; the message gives the image file, its id
    and its index, and the original error is chained as ``__cause__``.
    """
