from .oanet import OANet
from .standalone_srm import StandaloneSRM

__all__ = ['OANet', 'StandaloneSRM']
