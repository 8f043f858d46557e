"""Options the subcommands share: defaults and help read from the dataclass field an option fills (never a
copied literal), the S3 options with their one region default and one ``--endpoint-url``/``--bucket`` check,
and small value parsers. Everything here is cheap to import: the parser is built before any heavy import."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from harness.errors import ConfigError
from harness.store import S3Location, default_region

Parser = argparse.ArgumentParser | argparse._ArgumentGroup


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (a ``default_factory`` is called)."""
    field = _field(cls, name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"{cls.__name__}.{name} has no default")


def add_field_option(
    parser: Parser, cls: type, name: str, *flags: str, shown: str | None = None, **kwargs: Any
) -> argparse.Action:
    """``--name`` (or ``flags``) for dataclass ``cls``'s field ``name``: its default, its ``metadata["help"]``
    followed by "(default X)" (``shown`` overrides X; a None default or a flag adds nothing). The argument
    type is the default's (int, float, str, Path) unless ``kwargs`` give one; a bool field is a flag."""
    default = field_default(cls, name)
    text = _field(cls, name).metadata.get("help", "")
    if isinstance(default, bool):
        kwargs.setdefault("action", "store_false" if default else "store_true")
    elif default is not None:
        kwargs.setdefault("type", type(default))
        text = f"{text} (default {shown if shown is not None else _shown(default)})".strip()
    return parser.add_argument(
        *(flags or (f"--{name.replace('_', '-')}",)), default=default, help=text or None, **kwargs
    )


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    fields = {field.name: field for field in dataclasses.fields(cls)}
    if name not in fields:
        raise TypeError(f"{cls.__name__} has no field {name!r}")
    return fields[name]


def _shown(default: Any) -> str:
    if isinstance(default, float):
        return f"{default:g}"
    return str(default) if default != "" else "''"


# ------------------------------------------------------------------------------------------------
# S3


def add_region_endpoint(parser: Parser, endpoint_help: str) -> None:
    """``--region`` (default ``$AWS_REGION``, ``$AWS_DEFAULT_REGION`` or us-east-1) and ``--endpoint-url``."""
    parser.add_argument("--region", default=default_region(), help="AWS region (default $AWS_REGION or us-east-1)")
    parser.add_argument("--endpoint-url", help=endpoint_help)


def add_s3_options(
    parser: argparse.ArgumentParser, prefix_default: str = S3Location.prefix, required: bool = False
) -> None:
    """``--bucket``, ``--prefix``, ``--region``, ``--endpoint-url``; read them back with ``s3_location``."""
    group = parser.add_argument_group("S3" if required else "S3 (default: an embedded offline S3 on 127.0.0.1)")
    group.add_argument("--bucket", required=required, help="S3 bucket; credentials come from the standard AWS chain")
    group.add_argument("--prefix", default=prefix_default, help=f"key prefix (default {prefix_default!r})")
    add_region_endpoint(group, "S3-compatible endpoint (MinIO, a moto server, ...)")


def s3_location(args: argparse.Namespace) -> S3Location | None:
    """The ``add_s3_options`` location, or None (no ``--bucket``): the embedded offline S3."""
    if args.endpoint_url and not args.bucket:
        raise ConfigError("--endpoint-url needs --bucket (without both, the embedded offline S3 is used)")
    return S3Location(args.bucket, args.prefix, args.region, args.endpoint_url) if args.bucket else None


def bucket_location(args: argparse.Namespace, bucket: str, prefix: str = "") -> S3Location:
    """A bucket named inside an s3:// URI the user gave, at ``add_region_endpoint``'s region and endpoint."""
    return S3Location(bucket, prefix, args.region, args.endpoint_url)


# ------------------------------------------------------------------------------------------------
# Values


def parse_assignment(item: str, option: str = "--hp", example: str = "batch_size=16") -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ConfigError(f"{option} {item!r}: expected NAME=VALUE, e.g. {option} {example}")
    return name.strip(), value.strip()


def float_option(option: str, name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{option} {name}={value}: not a number") from None
