"""Dataset readers for ``beam_jobs.build_tfrecords``: one module per dataset, looked up by name.

    reader = get_reader("synthetic", num_images=100, seed=0)
    keys = reader.list_items()          # cheap, on the launching machine
    record = reader.read(keys[0])       # heavy, in the Beam workers

The interface is in :mod:`lcr_tf.datasets.base`. A new dataset is one module defining a
:class:`~lcr_tf.datasets.base.DatasetReader` subclass plus one line in :data:`READERS`. Reader modules
are imported only when asked for, so a reader's dependencies (e.g. a .mat or .cdf parser) cost nothing to
the others.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Dict, List, Mapping, Sequence, Type

from lcr_tf.datasets.base import DatasetReader, ImageRecord, Person, RecordError

# name -> "module:Class". Add a line here for each new reader.
READERS: Dict[str, str] = {
    "coco": "lcr_tf.datasets.coco:CocoReader",
    "h36m": "lcr_tf.datasets.h36m:H36MReader",
    "lsp": "lcr_tf.datasets.lsp:LspReader",
    "mpii": "lcr_tf.datasets.mpii:MpiiReader",
    "muco": "lcr_tf.datasets.muco:MucoReader",
    "mupots": "lcr_tf.datasets.mupots:MupotsReader",
    "synthetic": "lcr_tf.datasets.synthetic:SyntheticReader",
}

__all__ = ["DatasetReader", "ImageRecord", "Person", "RecordError", "READERS", "reader_names",
           "reader_class", "reader_options", "get_reader", "parse_reader_options"]


def reader_names() -> List[str]:
    """The registered dataset names, sorted."""
    return sorted(READERS)


def reader_class(name: str) -> Type[DatasetReader]:
    """The reader class registered as ``name`` (imports its module).

    Raises:
      KeyError: unknown name (the message lists the known ones).
    """
    if name not in READERS:
        raise KeyError(f"unknown dataset {name!r}; known: {reader_names()}")
    module_name, class_name = READERS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, DatasetReader)):
        raise TypeError(f"{READERS[name]} is not a DatasetReader subclass")
    return cls


def _parameters(cls: Type[DatasetReader]) -> Dict[str, inspect.Parameter]:
    params = inspect.signature(cls.__init__).parameters
    return {n: p for n, p in params.items()
            if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def reader_options(name: str, available: Mapping[str, Any]) -> Dict[str, Any]:
    """The options of ``available`` (e.g. the job's flags) that reader ``name`` takes.

    Values that are None are left out (the reader's default applies).

    Raises:
      ValueError: a required option of the reader is missing or None; the message names it as a flag.
    """
    params = _parameters(reader_class(name))
    chosen = {k: v for k, v in available.items() if k in params and v is not None}
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in chosen]
    if missing:
        raise ValueError(f"dataset {name!r} needs {', '.join('--' + m for m in missing)}")
    return chosen


def get_reader(name: str, **options: Any) -> DatasetReader:
    """A reader of dataset ``name`` built with ``options``.

    Raises:
      KeyError: unknown dataset.
      ValueError: an option the reader does not take, or a missing required one (both named), or an
        invalid value (the reader's own message).
    """
    cls = reader_class(name)
    params = _parameters(cls)
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"dataset {name!r} takes no option {', '.join(unknown)}; it takes "
                         f"{', '.join(sorted(params)) or 'none'}")
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in options]
    if missing:
        raise ValueError(f"dataset {name!r} needs option(s) {', '.join(missing)}")
    return cls(**options)


def parse_reader_options(cls, items: Sequence[str]) -> Dict[str, Any]:
    """``["name=value", ...]`` -> {name: value}, each value converted to the type of the reader option's
    default (bool from true/false/1/0; str when the default is None).

    Raises:
      ValueError: a malformed item, or a value that does not convert (named).
    """
    params = inspect.signature(cls.__init__).parameters
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--reader_option must be NAME=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        if name not in params or name == "self":
            raise ValueError(f"--reader_option {name}: the reader takes no option {name!r}")
        default = params[name].default
        kind = type(default) if default not in (inspect.Parameter.empty, None) else str
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1")
            else:
                value = kind(text)
        except ValueError:
            raise ValueError(f"--reader_option {name}={text}: expected {kind.__name__}") from None
        out[name] = value
    return out
