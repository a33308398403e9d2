"""Values that the data pipeline and the model heads must agree on."""

__all__ = ['IGNORE_INDEX']

#: Semantic label that no loss sees: VOID / unlabelled pixels of
#: ``gt_sem_seg`` (mmdet's ``LoadPanopticAnnotations`` writes 255 too), the
#: thing pixels of the stuff head's targets and the SRM's pixels outside any
#: conflict.
IGNORE_INDEX = 255
