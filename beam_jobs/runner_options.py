"""Beam pipeline options shared by the jobs.

Given no ``--runner``, Beam's DirectRunner first tries the Prism runner, whose binary it downloads from
the internet at run time, and falls back to its Python engine only when that fails: a network call,
and a delay, on every run. The jobs here default to that Python engine, ``FnApiRunner``, directly
(in-process, or with ``--direct_running_mode=multi_processing --direct_num_workers=N``, which it reads
like the DirectRunner). Any runner named on the command line is used as given, with its options passed
through unchanged.
"""

from __future__ import annotations

from typing import List, Sequence

LOCAL_RUNNER = "--runner=FnApiRunner"
MULTI_PROCESS_DEFAULTS = ("--direct_running_mode=multi_processing", "--direct_num_workers=2")
_LOCAL_RUNNERS = ("directrunner", "direct", "fnapirunner", "fnapi")


def pipeline_arguments(beam_args: Sequence[str], multi_process: bool = False) -> List[str]:
    """``beam_args`` plus the defaults: the local runner when none is named, and, with
    ``multi_process``, two worker processes for a local runner unless the arguments say otherwise."""
    args = list(beam_args)
    names = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    runner = next((a.split("=", 1)[1] for a in args if a.startswith("--runner=")), None)
    if runner is None:
        args.append(LOCAL_RUNNER)
    elif runner.lower() not in _LOCAL_RUNNERS:
        return args
    if multi_process:
        args += [d for d in MULTI_PROCESS_DEFAULTS if d.split("=", 1)[0] not in names]
    return args


def pipeline_options(beam_args: Sequence[str] = (), multi_process: bool = False):
    """:class:`apache_beam.options.pipeline_options.PipelineOptions` of :func:`pipeline_arguments`."""
    from apache_beam.options.pipeline_options import PipelineOptions
    return PipelineOptions(pipeline_arguments(beam_args, multi_process))
