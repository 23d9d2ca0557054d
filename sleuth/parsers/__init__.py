"""The parser registry: one module per input format, chosen by content sniffing (handbook §2).

A parser module exposes `NAME`, `FRAMES` (the canonical frames it fills), `sniff(head: bytes) -> bool`,
`parse(data, origin, config) -> ParseResult` for one input, and
`parse_many([(data, origin), ...], config) -> (frames, [ParseResult, ...])` for a batch of inputs
(one polars pass for a whole batch is much cheaper than one per file).
Register a new module by adding it to `_MODULES`; a test checks that every module in this package
is registered.
"""

from __future__ import annotations

from types import ModuleType

from sleuth.parsers import cloudtrail, guardduty, vpcflow

_MODULES: tuple[ModuleType, ...] = (cloudtrail, guardduty, vpcflow)

# Modules in this package that are helpers, not parsers.
NOT_PARSERS = frozenset(
    {"base", "cloudtrail_exact", "cloudtrail_normalize", "cloudtrail_raw", "guardduty_entities", "vpcflow_format"}
)


def _build_registry(modules: tuple[ModuleType, ...]) -> dict[str, ModuleType]:
    registry: dict[str, ModuleType] = {}
    for module in modules:
        for attr in ("NAME", "FRAMES", "sniff", "parse", "parse_many"):
            if not hasattr(module, attr):
                raise TypeError(f"parser module {module.__name__} lacks {attr}")
        if module.NAME in registry:
            raise ValueError(f"two parsers are named {module.NAME!r}")
        registry[module.NAME] = module
    return registry


REGISTRY: dict[str, ModuleType] = _build_registry(_MODULES)


def detect(head: bytes) -> ModuleType | None:
    """The first registered parser whose sniff accepts this head of decompressed content."""
    for module in REGISTRY.values():
        if module.sniff(head):
            return module
    return None


_DESCRIPTIONS = {"cloudtrail": "CloudTrail JSON", "vpcflow": "VPC Flow Logs", "guardduty": "GuardDuty findings"}


def describe() -> str:
    """The accepted formats, for messages."""
    names = [_DESCRIPTIONS.get(name, name) for name in REGISTRY]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
