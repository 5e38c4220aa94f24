"""``happyhorse models check``: validate models.toml and show what each (mode, kind) resolves to.

It reads the TOML, each folder's model_index.json and the sizes of the files on disk, loading no
model, so an operator can check a setup before any GPU is involved; only the speed/memory options'
verdicts (per profile, and the "this machine" section) import torch, where it is installed, to see
the GPUs, torchao and what this diffusers can do. It exits 1 when
something would fail (a missing folder, an unsupported pipeline, a kind its model cannot render)
and 0 otherwise; warnings name what requests will be refused (a kind without a model, sound
without an audio source).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from happyhorse.engines.diffusers.profiles import (
    KINDS,
    MODES,
    ModelInfo,
    Profile,
    ProfileError,
    Profiles,
    inspect_model,
    load_profiles,
    pipeline_name,
)

models_app = typer.Typer(help="Model profiles of the diffusers engine (models.toml).", no_args_is_help=True)


@models_app.callback()
def _group() -> None:
    """Model profiles of the diffusers engine (models.toml)."""  # keeps `check` a subcommand


@dataclass
class Report:
    file: str
    models: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    machine: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@models_app.command("check")
def check(
    models: Path | None = typer.Option(None, "--models", help="models.toml to check (default: HAPPYHORSE_MODELS)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Validate models.toml: what is on disk, and what each (mode, kind) resolves to."""
    path = models or _env_models()
    if path is None:
        typer.echo("no models file: pass --models PATH or set HAPPYHORSE_MODELS", err=True)
        raise typer.Exit(2)
    try:
        report = build_report(load_profiles(path))
    except ProfileError as exc:
        report = Report(file=str(path), problems=[str(exc)])
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, **report.__dict__}, indent=2))
    else:
        _print(report)
    raise typer.Exit(0 if report.ok else 1)


def _env_models() -> Path | None:
    value = os.environ.get("HAPPYHORSE_MODELS")
    return Path(value) if value else None


def build_report(profiles: Profiles) -> Report:
    report = Report(file=str(profiles.source))
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    seen: set[str] = set()
    for profile in profiles.profiles.values():
        sources = [(profile.path, profile.pipeline)] + ([(profile.audio.path, None)] if profile.audio else [])
        for path, declared in sources:
            if path not in seen:
                seen.add(path)
                is_audio = profile.audio is not None and path == profile.audio.path
                report.models.append(_model_entry(inspect_model(path, declared), report, offline, is_audio))
    for mode in MODES:
        for kind in KINDS:
            found = profiles.resolve(mode, kind)
            if found is None:
                if any(m == mode for m, _ in profiles.profiles):
                    report.warnings.append(f"[{mode}] has no {kind}: such requests are refused with 400")
                continue
            report.profiles.append(_profile_entry(profiles, found, report))
    report.machine = machine_options()
    return report


def machine_options() -> list[dict[str, Any]]:
    """Every value of every speed/memory option, and whether this machine could honour it for a
    model that supports it (per-model limits are in each profile's ``options``)."""
    try:
        import diffusers
        import torch

        from happyhorse.engines.diffusers import options as speed
    except ImportError:
        return [{"option": "all", "value": None, "ok": False, "problem": "torch/diffusers are not installed here"}]
    rows: list[dict[str, Any]] = []
    for kind, name in speed.CACHE_KINDS.items():
        problem = None if hasattr(diffusers, name) else f"this diffusers ({diffusers.__version__}) has no {name}"
        rows.append({"option": "cache", "value": {"kind": kind}, "ok": problem is None, "problem": problem})
    values: list[tuple[str, Any]] = [("compile", c) for c in speed.COMPILE]
    values += [("quantization", q) for q in speed.QUANTIZATION] + [("offload", o) for o in speed.OFFLOAD]
    values += [("parallel", {kind: 2}) for kind in speed.PARALLEL]
    for option, value in values:
        problem = speed.can_honour(option, value)
        row = {"option": option, "value": value, "ok": problem is None, "problem": problem}
        if problem is None and option == "offload" and not torch.cuda.is_available():
            row["note"] = "accepted, a no-op without a GPU (nothing to offload to)"
        rows.append(row)
    return rows


def _model_entry(info: ModelInfo, report: Report, offline: bool, is_audio: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "source": info.source,
        "on_disk": info.local_dir is not None,
        "folder": str(info.local_dir) if info.local_dir else None,
        "pipeline": info.class_name,
        "family": info.family,
        "native_audio": info.native_audio,
        "role": "audio" if is_audio else "video",
        "components": {},
    }
    if info.problem and not (is_audio and info.local_dir is not None):  # any audio pipeline class will do
        report.problems.append(f"{info.source}: {info.problem}")
    if info.local_dir is None:
        if not info.source.startswith("/"):
            note = "not in the local Hugging Face cache"
            if offline:
                report.problems.append(
                    f"{info.source}: {note}, and HF_HUB_OFFLINE is set "
                    f"(download it: huggingface-cli download {info.source})"
                )
            else:
                report.warnings.append(f"{info.source}: {note}; it downloads on first load")
        return entry
    for name, spec in info.index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        folder = info.local_dir / name
        size = _folder_size(folder)
        entry["components"][name] = {"class": spec[1], "bytes": size}
        if size == 0:
            report.problems.append(f"{info.source}: component {name!r} ({spec[1]}) is missing or empty")
    return entry


def _profile_entry(profiles: Profiles, profile: Profile, report: Report) -> dict[str, Any]:
    info = profiles.model_info(profile.path, profile.pipeline)
    where = f"[{profile.mode}].{profile.kind}"
    pipeline = pipeline_name(info.class_name, info.index, profile.kind)
    if info.class_name and info.family and pipeline is None:
        report.problems.append(
            f"{where}: a {info.class_name} folder cannot render {profile.kind} "
            f"(it can: {', '.join(sorted(info.kinds)) or 'nothing'})"
        )
    if profile.audio is not None:
        audio = profile.audio.path
    elif info.native_audio:
        audio = "native"
    elif info.native_audio is None:
        audio = "unknown until downloaded"
    else:
        audio = "none"
        report.warnings.append(
            f"{where}: {info.class_name} makes no audio and no `audio` source is set: "
            f"requests with sound=true are refused"
        )
    width, height = profiles.frame_size(profile.mode, "16:9")
    return {
        "mode": profile.mode,
        "kind": profile.kind,
        "model": profile.path,
        "pipeline": pipeline,
        "steps": profile.steps,
        "frame": f"{width}x{height}",
        "guidance": list(profile.guidance) if profile.guidance else None,
        "frames_per_pass": profile.frames_per_pass,
        "dtype": profile.dtype,
        "cpu_offload": profile.cpu_offload,
        "vae_tiling": profile.vae_tiling,
        "vae_slicing": profile.vae_slicing,
        "audio": audio,
        "options": _options(profile, report, where, info.class_name),
    }


def _options(profile: Profile, report: Report, where: str, pipeline: str | None) -> dict[str, dict[str, Any]]:
    """Each speed/memory option the profile sets, and whether this machine (and this diffusers, for
    the model at hand) can honour it; options that cannot go together are a problem of their own."""
    out: dict[str, dict[str, Any]] = {}
    for option in ("cache", "compile", "quantization", "parallel", "offload"):
        value = getattr(profile, option)
        if not value:
            continue
        try:
            from happyhorse.engines.diffusers.options import can_honour

            problem = can_honour(option, dict(value) if isinstance(value, dict) else value, pipeline=pipeline)
        except ImportError:
            problem = "cannot tell: torch/diffusers are not installed here"
        out[option] = {"value": value, "ok": problem is None, "problem": problem}
        if option == "parallel" and problem is None:
            out[option]["group"] = _group_note(value)
        if problem:
            report.problems.append(f"{where}: {problem}")
    from happyhorse.engines.diffusers.options import combination_refusal

    combined = combination_refusal(profile)
    if combined:
        report.problems.append(f"{where}: {combined}")
    return out


def _group_note(spec: Any) -> str:
    """How the engine groups of a ``parallel`` profile are made on this machine."""
    n = next(iter(spec.values()))
    try:
        import torch

        if torch.cuda.is_available():
            return f"engine groups of {n} GPUs (NCCL): --gpus takes a multiple of {n}"
    except ImportError:
        pass
    return f"engine groups of {n} CPU processes (gloo); HAPPYHORSE_ENGINE_PROCESSES groups"


def _folder_size(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _print(report: Report) -> None:
    console = Console(soft_wrap=True, highlight=False)
    console.print(f"[bold]{escape(report.file)}[/bold]")
    console.print("\n[bold]models[/bold]")
    for m in report.models:
        size = sum(c["bytes"] for c in m["components"].values())
        audio = (
            "audio source"
            if m["role"] == "audio"
            else {True: "native audio", False: "no audio", None: "audio unknown"}[m["native_audio"]]
        )
        where = f"on disk, {size / 1e9:.2f} GB" if m["on_disk"] else "not on disk"
        console.print(f"  {escape(m['source'])}: {m['pipeline'] or '?'}, {audio}, {where}")
    console.print("\n[bold]profiles[/bold]")
    for p in report.profiles:
        guidance = "default" if p["guidance"] is None else "–".join(f"{g:g}" for g in p["guidance"])
        table = escape("[" + p["mode"] + "]")
        console.print(
            f"  {table} {p['kind']} → "
            f"{p['pipeline'] or '?'} from {escape(p['model'])}\n"
            f"      steps {p['steps'] or 'default'}, frame {p['frame']}, guidance {guidance}, "
            f"audio {escape(str(p['audio']))}"
        )
        for name, o in p["options"].items():
            verdict = "[green]ok here[/green]" if o["ok"] else f"[red]not here[/red]: {escape(o['problem'])}"
            if o.get("group"):
                verdict += f" ({escape(o['group'])})"
            console.print(f"      {name} = {escape(str(o['value']))}: {verdict}")
    console.print("\n[bold]this machine[/bold] (each option's values, for a model that supports them)")
    for row in report.machine:
        verdict = "[green]ok here[/green]" if row["ok"] else "[red]not here[/red]"
        note = row["problem"] or row.get("note")
        console.print(
            f"  {row['option']} = {escape(str(row['value']))}: {verdict}" + (f": {escape(note)}" if note else "")
        )
    if report.warnings or report.problems:
        console.print()
    for warning in report.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(warning)}")
    for problem in report.problems:
        console.print(f"[red]problem[/red] {escape(problem)}")
    console.print("[green]ok[/green]" if report.ok else f"[red]{len(report.problems)} problem(s)[/red]")
