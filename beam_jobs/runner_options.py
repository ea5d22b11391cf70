"""Beam pipeline options shared by the jobs.

Given no ``--runner``, Beam's DirectRunner first tries the Prism runner, whose binary it downloads from
the internet at run time, and falls back to its Python engine only when that fails: a network call,
and a delay, on every run. The jobs here default to that Python engine, ``FnApiRunner``, directly
(in-process, or with ``--direct_running_mode=multi_processing --direct_num_workers=N``, which it reads
like the DirectRunner). Any runner named on the command line is used as given, with its options passed
through unchanged.
"""

from __future__ import annotations

from typing import Callable, List, Sequence

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


def unknown_pipeline_options(beam_args: Sequence[str]) -> List[str]:
    """The names in ``beam_args`` that no Beam pipeline option takes (sorted). Beam itself only logs them
    ("Discarding unparseable args") and runs on, so a misspelt job flag would be silently ignored."""
    import logging

    from apache_beam.options.pipeline_options import PipelineOptions
    log = logging.getLogger("apache_beam.options.pipeline_options")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        options = PipelineOptions(list(beam_args))
        known = options.get_all_options(retain_unknown_options=False)
        everything = options.get_all_options(retain_unknown_options=True)
    finally:
        log.setLevel(level)
    return sorted(set(everything) - set(known))


def parse_job_flags(argv: Sequence[str], define_flags, usage, required: Sequence[str]):
    """Command-line parsing shared by the Beam jobs' ``main()``.

    The job's flags live in a private ``FlagValues`` (importing a job never collides with other modules'
    flags); unknown flags are left for Beam (``--runner``, ``--direct_num_workers``, ...).

    Args:
      argv: the command line, program name first.
      define_flags: ``define_flags(flag_values)`` defines the job's flags.
      usage: ``usage(flag_values) -> str``, printed for ``--help`` and after a parse error.
      required: names of flags that must be given.
    Returns:
      ``(flag_values, beam_args)``, or an exit status: 0 after printing the help, 2 after an error.
    """
    import sys

    from absl import flags
    fv = flags.FlagValues()
    define_flags(fv)
    if any(a in ("-h", "-?", "--help", "--helpshort", "--helpfull") for a in argv[1:]):
        print(usage(fv))
        return 0
    try:
        beam_args = fv(list(argv), known_only=True)[1:]
    except flags.Error as e:
        print(f"error: {e}\n\n{usage(fv)}", file=sys.stderr)
        return 2
    unknown = unknown_pipeline_options(beam_args)
    if unknown:
        print(f"error: unknown flag(s) {', '.join('--' + u for u in unknown)}: neither this job's (see --help) "
              f"nor a Beam pipeline option", file=sys.stderr)
        return 2
    missing = [n for n in required if fv[n].value is None]
    if missing:
        print(f"error: missing required flag(s): {', '.join('--' + m for m in missing)}", file=sys.stderr)
        return 2
    return fv, beam_args


def reporting_input_errors(job: str, body: Callable[[], int]) -> int:
    """:func:`lcr_tf.contracts.cli.reporting_input_errors` for a job's pipeline: bad input raised inside a transform
    (which Beam re-raises with ``[while running 'STEP']`` appended) is one line too, without the traceback
    Beam logs before it re-raises."""
    import logging

    from lcr_tf.contracts import cli

    def not_input_error(record: logging.LogRecord) -> bool:
        # Beam logs a failing transform's traceback before it re-raises; for bad input the one line
        # below says it all, any other error keeps its log.
        return not (record.exc_info and cli.input_error_message(record.exc_info[1]) is not None)

    beam_log = logging.getLogger("apache_beam.runners.common")
    if not cli.debugging():
        beam_log.addFilter(not_input_error)
    try:
        return cli.reporting_input_errors(job, body)
    finally:
        beam_log.removeFilter(not_input_error)
