"""Decode tasks: what a sample, a target and a score are (``decode.task``).

========================  ===========  ==================================================
module                    task         samples and targets
========================  ===========  ==================================================
:mod:`.windows`           windows      a window around each event, or a whole recording;
                                       one class (or number) each
:mod:`.dense`             staging      whole recordings, a class per epoch (sleep stages)
:mod:`.dense`             detection    whole recordings, events scored one by one
                                       (sleep spindles)
========================  ===========  ==================================================

The interface is :class:`~.base.Task`; a new task is one module that calls
:func:`register_task` (inside the package: one import line below; outside it:
``--plugins your_module.py``).
"""

from __future__ import annotations

from . import dense, windows  # noqa: F401  (register the tasks)
from .base import TASKS, Targets, Task, register_task, task

__all__ = ["TASKS", "Task", "Targets", "register_task", "task"]
