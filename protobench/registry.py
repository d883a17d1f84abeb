"""A small name -> factory registry, so that adding an entry is one decorator."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from protobench.errors import ProtobenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; unknown names raise a :class:`ProtobenchError`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorate

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            raise ProtobenchError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, *args, **kwargs) -> T:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def add_named(table: dict[str, T], item: T, what: str) -> T:
    """Add ``item`` to ``table`` under its ``name``; an unnamed item or a name added twice is
    an error (the model families and attack kinds are such tables)."""
    name = getattr(item, "name", "")
    if not name or name in table:
        raise ValueError(f"{what} {name!r} is unnamed or registered twice")
    table[name] = item
    return item


def get_named(table: dict[str, T], name: str, what: str) -> T:
    """``table[name]``; an unknown name is a :class:`ProtobenchError` listing the choices."""
    try:
        return table[name]
    except KeyError:
        raise ProtobenchError(f"unknown {what} {name!r}; choose one of: {', '.join(table)}") from None
