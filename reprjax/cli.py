"""The ``reprjax`` command line: parses arguments and calls the library (docs/architecture.md: the face only parses and
calls).

    reprjax demo                       a small sample-complexity study (network vs eNTK): table + PNG, < 3 min on CPU
    reprjax run EXPERIMENT [options]   run an experiment's sweep (resumable), print its report, write its plots
    reprjax plot DIR                   redraw the plots of a finished (or partial) run directory
    reprjax bench [options]            the benchmark harness (throughput against the machine's matmul roofline)
    reprjax targets                    describe the catalogue targets at a given d

Errors in the input (unknown experiment, malformed TOML, impossible grid, a results directory holding another
configuration) print one line and exit with code 2 without writing anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reprjax._errors import ConfigError

EXIT_USAGE = 2
#: ^C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


class UsageError(ConfigError):
    """Bad input from the command line: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``reprjax: error: ...``, exit 2) instead of a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        print(f"reprjax: error: {command}{' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _experiment(name: str) -> Any:
    from reprjax.studies import STUDIES

    if name not in STUDIES:
        raise UsageError(f"unknown experiment {name!r}; choose one of {', '.join(STUDIES)}")
    return STUDIES[name]


def _build_config(module: Any, config_file: str | None, overrides: dict[str, Any]) -> tuple[Any, dict | None]:
    """The study config, and the plugins it loaded (``{"modules", "directory"}``, kept in the manifest) or None."""
    from reprjax.studies import base

    values: dict[str, Any] = base.load_toml(config_file) if config_file else {}
    plugins = None
    if "plugins" in values:  # user methods, imported from the config's folder (docs/adding_a_method.md)
        plugins = dict(modules=values.pop("plugins"), directory=str(Path(config_file).parent.resolve()))
        base.load_plugins(plugins["modules"], source=str(config_file), directory=plugins["directory"])
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    source = str(config_file) if config_file else "defaults"
    origins = {k: f"command line: --{k.replace('_', '-')}" for k in given}
    return base.config_from_dict(module.Config, values, source=source, origins=origins), plugins


def _finish(module: Any, config: Any, df: Any, out: Path, report: Any | None = None) -> None:
    from reprjax.sweep import outdir, store

    summary = module.summarise(df, config)
    text = "\n".join([module.report(summary, config), *store.problem_lines(df.attrs.get("store_problems", []))])
    drawn: dict[str, list[Path]] = {}

    def draw(folder: Path) -> list[Path]:  # into a staging folder: `publish` moves only what it may replace
        (folder / "report.txt").write_text(text + "\n")
        written = [folder / "report.txt"]
        for name, table in summary.items():
            if hasattr(table, "to_csv"):
                table.to_csv(folder / f"{name}.csv", index=False)
                written.append(folder / f"{name}.csv")
        if len(df) and (df["status"] == "ok").any():
            drawn["figures"] = list(module.plot(df, config, folder))
        return written + drawn.get("figures", [])

    outdir.publish(out, draw)
    print(text)
    figures = [out / p.name for p in drawn.get("figures", []) if p.suffix == ".png"]
    print("figures: " + (", ".join(map(str, figures)) if figures else "none (no successful run to draw)"))
    if report is not None:
        print(f"sweep: {report.groups_run} groups run, {report.groups_skipped} already done, "
              f"{report.groups_failed} failed; {report.programs_compiled} programs compiled "
              f"({report.backend_compiles} XLA compilations in all); execution {report.execution} on "
              f"{report.device}; {report.seconds:.1f} s")


def _run_into(module: Any, config: Any, out: Path, args: argparse.Namespace, source: str, **kwargs: Any) -> int:
    from reprjax.sweep import outdir
    from reprjax.studies import base

    try:  # before the directory is touched
        base.checked_grid(module, config, kwargs.get("mask_samples"))
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    outdir.check_usable(out)
    with outdir.lock(out):
        df, report = base.run_experiment(module, config, out, progress=not args.no_progress,
                                         overwrite=args.overwrite, **kwargs)
        _finish(module, config, df, out, report)
    return 0


def _run(args: argparse.Namespace) -> int:
    module = _experiment(args.experiment)
    config, plugins = _build_config(module, args.config, {"seeds": args.seeds})
    out = Path(args.out or f"runs/{module.NAME}")
    if args.distributed:  # pragma: no cover - needs several hosts
        import jax

        jax.distributed.initialize()
    source = " with ".join([*([args.config] if args.config else []), *(["--seeds"] if args.seeds is not None else [])])
    return _run_into(module, config, out, args, source or "the default config", execution=args.execution,
                     mask_samples=args.mask_samples, retry_failed=args.retry_failed, plugins=plugins)


def _plot(args: argparse.Namespace) -> int:
    from reprjax import sweep
    from reprjax.sweep import outdir
    from reprjax.studies import base

    out = Path(args.dir)
    outdir.check_usable(out, create=False)
    manifest = outdir.read_manifest(out) if out.is_dir() else None
    if manifest is None:
        raise UsageError(f"{out} is not a results directory (no {sweep.MANIFEST_FILE})")
    module = _experiment(manifest.get("experiment", ""))
    if not isinstance(manifest.get("config"), dict):
        raise UsageError(f"{out / sweep.MANIFEST_FILE} holds no experiment config")
    plugins = manifest.get("plugins")
    if plugins is not None:  # the user methods the sweep ran (docs/adding_a_method.md)
        if not isinstance(plugins, dict) or not isinstance(plugins.get("directory"), str):
            raise UsageError(f"{out / sweep.MANIFEST_FILE}: 'plugins' is not what reprjax writes")
        base.load_plugins(plugins.get("modules"), source=str(out / sweep.MANIFEST_FILE),
                          directory=plugins["directory"])
    config = base.config_from_dict(module.Config, manifest["config"], source=str(out / sweep.MANIFEST_FILE))
    outdir.check_usable(out)
    with outdir.lock(out):
        df = base.load_study_results(module, config, out)
        if df.empty:
            problems = df.attrs.get("store_problems", [])
            raise UsageError(f"{out} holds no finished runs yet" + (
                f" ({len(problems)} line(s) or group(s) of {sweep.RESULTS_FILE} not usable; first: {problems[0]})"
                if problems else ""))
        _finish(module, config, df, out)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from reprjax.studies import base, sample_complexity

    values = dict(dims=[12, 16, 24], n_over_d2=[0.5, 1.0, 2.0, 4.0, 8.0, 16.0], width=512,
                  methods=["algorithm1", "entk"], seeds=args.seeds, kernel_n_max=4096, n_test=8192, bootstrap=200,
                  mask_samples=True)
    config = base.config_from_dict(sample_complexity.Config, values, source="demo",
                                   origins={"seeds": "command line: --seeds"})
    out = Path(args.out)
    print(f"reprjax demo: Algorithm 1 against the empirical NTK on the paper target, d in {config.dims}, "
          f"n = c d^2 for c in {config.n_over_d2}, m = {config.width}, {config.seeds} seeds -> {out}/")
    return _run_into(sample_complexity, config, out, args, "demo")


def _bench(args: argparse.Namespace) -> int:
    from reprjax.bench import suite as bench_suite

    return bench_suite.main(args.bench_args, parser_class=_Parser)  # one-line errors, no usage block before them


def _targets(args: argparse.Namespace) -> int:
    import jax

    from reprjax.sweep import grid

    if args.d < 3:
        raise UsageError(f"--d must be >= 3 (the catalogue holds a target with r = 3 directions), got {args.d}")
    key = jax.random.key(args.seed)
    for spec in grid.catalogue_examples():  # the sweep's catalogue, one example per family
        target = spec.build(key, args.d)
        print(f"[{spec.label()}{' (its target head)' if isinstance(target, tuple) else ''}]")
        print((target[1] if isinstance(target, tuple) else target).describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from reprjax.studies import STUDIES
    from reprjax.sweep import EXECUTIONS

    parser = _Parser(prog="reprjax", description="Reproduce Damian, Lee & Soltanolkotabi (2022).")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="small sample-complexity study, network vs eNTK (< 3 min on 2 CPU cores)")
    demo.add_argument("--out", default="runs/demo", help="output directory (default runs/demo; re-running resumes it)")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace the outputs of a different sweep in --out (files reprjax did not write are kept)")
    demo.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.set_defaults(func=_demo)

    run = sub.add_parser("run", help="run an experiment (resumable sweep), print its report, write its plots",
                         description="Experiments: " + ", ".join(STUDIES) + ". Example configs: examples/*.toml.")
    run.add_argument("experiment", help="one of: " + ", ".join(STUDIES))
    run.add_argument("--config", help="TOML file overriding the experiment's defaults (see examples/)")
    run.add_argument("--out", help="results directory (default runs/EXPERIMENT); re-running resumes it")
    run.add_argument("--seeds", type=int, help="seeds per configuration (overrides the config)")
    run.add_argument("--execution", choices=EXECUTIONS, default="auto",
                     help="loop, threads (one run per CPU core), vmap, sharded over all devices, or auto (fastest "
                          "measured per backend)")
    run.add_argument("--mask-samples", action="store_true", default=None,
                     help="share one compiled program across sample counts (0/1 masks)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the outputs (results, report, tables, figures) of a different sweep in --out; "
                          "files reprjax did not write are kept")
    run.add_argument("--retry-failed", action="store_true", help="re-run the groups recorded as failed")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize() (many hosts)")
    run.set_defaults(func=_run)

    plot = sub.add_parser("plot", help="redraw the report and plots of a results directory")
    plot.add_argument("dir", help="a directory written by `reprjax run`")
    plot.set_defaults(func=_plot)

    bench = sub.add_parser("bench", help="benchmark harness (`reprjax bench --help` for its options)",
                           add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="options passed to the harness")
    bench.set_defaults(func=_bench)

    tg = sub.add_parser("targets", help="describe the catalogue targets")
    tg.add_argument("--d", type=int, default=16)
    tg.add_argument("--seed", type=int, default=0)
    tg.set_defaults(func=_targets)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # the harness owns its options (argparse's REMAINDER does not take a first argument that starts with "-")
        return _bench(argparse.Namespace(bench_args=argv[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help exits 0 as usual; a usage error returns 2 like every other input error
        if exit_.code == EXIT_USAGE:
            return EXIT_USAGE
        raise
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"reprjax: error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # ^C: every finished group is on disk (appended and fsynced as it finished)
        print("reprjax: interrupted; the finished groups are saved: run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

