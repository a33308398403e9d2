"""The ``mmoanet`` registry scope: children of mmdet's registries.

mmoanet registers every component in mmdet's own registries (see
``STYLE.md``), so the registries here stay empty. They exist because
mmengine gives each dict of a config inherited with
``_base_ = 'mmoanet::...'`` the scope ``mmoanet`` (``_scope_``), and builds it
from the registry of that scope: as children of mmdet's registries, these
find mmoanet's and mmdet's components alike, with no warning about an
unknown scope.
"""
from mmdet import registry as mmdet_registry
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR',
    'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS'
]

SCOPE = 'mmoanet'


def _child_of(parent: Registry) -> Registry:
    """An empty registry of scope ``mmoanet`` below one of mmdet's.

    Its location is the package: importing ``mmoanet`` registers every
    component (in mmdet's registries).
    """
    return Registry(
        parent.name, parent=parent, scope=SCOPE, locations=['mmoanet'])


RUNNERS = _child_of(mmdet_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child_of(mmdet_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child_of(mmdet_registry.LOOPS)
HOOKS = _child_of(mmdet_registry.HOOKS)
DATASETS = _child_of(mmdet_registry.DATASETS)
DATA_SAMPLERS = _child_of(mmdet_registry.DATA_SAMPLERS)
TRANSFORMS = _child_of(mmdet_registry.TRANSFORMS)
MODELS = _child_of(mmdet_registry.MODELS)
MODEL_WRAPPERS = _child_of(mmdet_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child_of(mmdet_registry.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child_of(mmdet_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child_of(mmdet_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child_of(
    mmdet_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child_of(mmdet_registry.PARAM_SCHEDULERS)
METRICS = _child_of(mmdet_registry.METRICS)
EVALUATOR = _child_of(mmdet_registry.EVALUATOR)
TASK_UTILS = _child_of(mmdet_registry.TASK_UTILS)
VISUALIZERS = _child_of(mmdet_registry.VISUALIZERS)
VISBACKENDS = _child_of(mmdet_registry.VISBACKENDS)
LOG_PROCESSORS = _child_of(mmdet_registry.LOG_PROCESSORS)
