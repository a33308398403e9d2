from .oanet import OANet

__all__ = ['OANet']
