"""strawberry's field decorators, typed for mypy's strict mode.

``@strawberry.field(description=...)`` is declared to return ``Any``, which strict
mode refuses on a decorator. These wrappers return the decorated function's own
type to the checker; at run time they are strawberry's decorators unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry

F = TypeVar("F", bound=Callable[..., Any])


def field(**options: Any) -> Callable[[F], F]:
    """``strawberry.field(**options)`` as a typed decorator."""
    decorator: Callable[[F], F] = strawberry.field(**options)
    return decorator


def mutation(**options: Any) -> Callable[[F], F]:
    """``strawberry.mutation(**options)`` as a typed decorator."""
    decorator: Callable[[F], F] = strawberry.mutation(**options)
    return decorator
