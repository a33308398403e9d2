from .hooks import CheckpointMatchHook

__all__ = ['CheckpointMatchHook']
