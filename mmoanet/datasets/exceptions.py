"""Errors raised for inconsistent panoptic or instance annotations.

Bad annotation files must stop loading with a message that names the file
and the image or segment at fault; a wrong label that trains silently is far
costlier to find than a crash.
"""


class PanopticAnnotationError(ValueError):
    """Annotations disagree with each other or with the files on disk.

    Raised, for example, for a segment id found in a panoptic PNG but not in
    its JSON entry, an unknown category id, or a PNG whose size differs from
    its image.
    """


class PanopticFileNotFoundError(FileNotFoundError):
    """An image or panoptic PNG listed in an annotation file is missing."""
