"""Assemble the gradient-spectra product from the synthesis runner's results.

Every reference point whose 16 syntheses (base + one forward step per label) are finished enters the
product; unfinished points are left out and the provenance records how many of the planned points are
in. Nothing is interpolated or extrapolated.

Masked pixels (:func:`product_mask`): hydrogen lines, whose Stark wings MOOG lacks — Hα and Hβ ±15 Å,
Hγ–Hε ±6 Å, H8–H10 ±4 Å, H11–H80 ±3 Å (3646–3775 Å, where they crowd towards the series limit),
Paschen P9–P17 ±3 Å (the higher series members are narrower; wider windows
would hide the Ca II triplet next to P13/P15/P16, the CN 3883 band next to H8 and Al I 3962 next to Hε,
which carry the N, Ca and Al information) — and pixels not covered by every spectrum.

Usage::

    ddpayne build gradients --workdir work-synth --out ddpayne/data/gradients_desi.fits [--hydrogen PATH]
"""
from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

import numpy as np

from .. import __version__
from ..labels import LABEL_NAMES
from ..prepare.masks import BALMER_VAC, PASCHEN_VAC, window_mask
from .gradients import GradientSpectra
from .runner import INSTRUMENTS, current_physics, degraded_flux, load_plan, load_result

log = logging.getLogger(__name__)

DEFAULT_PRODUCT = Path(__file__).resolve().parent.parent / "data" / "gradients_desi.fits"

#: Rydberg constant for hydrogen (cm⁻¹; vacuum wavenumbers).
RYDBERG_H = 109677.58
#: Vacuum centres (Å) of the higher Balmer lines H11 … H80 (n = 11 … 80 → 2; the series limit is 3646 Å,
#: and linemake lists members up to 3648 Å in air).
HIGHER_BALMER_VAC = 1e8 / (RYDBERG_H * (0.25 - 1.0 / np.arange(11, 81) ** 2))
#: Half-widths (Å) of the hydrogen-line windows masked in the product, per line (vacuum centres from
#: :mod:`ddpayne.prepare.masks`): Hα, Hβ; Hγ, Hδ, Hε; H8, H9, H10; H11-H80; Paschen P9-P17.
HYDROGEN_WINDOWS = ((BALMER_VAC[:2], 15.0), (BALMER_VAC[2:5], 6.0), (BALMER_VAC[5:], 4.0),
                    (HIGHER_BALMER_VAC, 3.0), (PASCHEN_VAC, 3.0))


def product_mask(wavelength: np.ndarray, hydrogen_corrected: bool = False) -> np.ndarray:
    """Hydrogen-line pixels masked in the gradient product (True = masked); see the module docstring.

    With ``hydrogen_corrected`` (the spectra carry the hydrogen correction of
    :mod:`ddpayne.physics.hydrogen`) only what the physics cannot do stays masked: the cores (±
    :data:`~ddpayne.physics.hydrogen.CORE_HALF_WIDTH` Å) of the corrected lines, and the uncorrected range
    below the first correction window (the crowded Balmer series limit).
    """
    wavelength = np.asarray(wavelength, float)
    m = np.zeros(wavelength.shape, bool)
    if hydrogen_corrected:
        from .hydrogen import CORE_HALF_WIDTH, WINDOWS_VAC
        centres = np.concatenate([BALMER_VAC, HIGHER_BALMER_VAC, PASCHEN_VAC])
        centres = centres[centres >= WINDOWS_VAC[0][0]]
        return window_mask(wavelength, centres, CORE_HALF_WIDTH) | (wavelength < WINDOWS_VAC[0][0] + 5.0)
    for centres, half in HYDROGEN_WINDOWS:
        m |= window_mask(wavelength, centres, half)
    return m


def build(workdir: str | Path, out: str | Path | None = DEFAULT_PRODUCT, command: str | None = None,
          instrument: str = "desi", hydrogen=None) -> GradientSpectra:
    """Collect complete reference points from ``workdir`` into a :class:`GradientSpectra` (and write it).

    ``instrument='lamost'`` re-degrades the stored high-resolution spectra to LAMOST (R = 1800,
    log-linear grid, L = 50 Å) instead of using the stored DESI spectra. ``hydrogen`` (a path or
    :class:`~ddpayne.physics.hydrogen.HydrogenCorrection`) applies the hydrogen correction to the base and
    every step spectrum, each at its own labels, and reduces the hydrogen mask to the line cores.
    """
    from . import hydrogen as hyd
    hydrogen = hyd.load(hydrogen, instrument)
    workdir = Path(workdir)
    plan = load_plan(workdir)
    jobs = [j for j in plan["jobs"] if j["kind"] == "grad"]
    refs = sorted({j["ref"] for j in jobs})
    steps = np.array([plan["gradient_steps"][n] for n in LABEL_NAMES])
    base_list, pert_list, ref_labels, kinds, ref_ids = [], [], [], [], []
    wave = None
    physics = current_physics(plan)
    outdated = []
    blocks = {}
    for r in refs:
        block = {(j["label"] or "base"): j for j in jobs if j["ref"] == r}
        res = {k: load_result(workdir, j["id"], expect_labels=j["labels"]) for k, j in block.items()}
        if not any(v is None for v in res.values()):
            blocks[r] = (block, res)
    if physics is None and blocks:   # the synthesizer plugin is not installed: the newest version present
        physics = max(v["physics"] for _, res in blocks.values() for v in res.values())
    for r, (block, res) in blocks.items():
        if min(v["physics"] for v in res.values()) < physics:   # not yet brought up to date: left out
            outdated.append(r)
            continue
        deg = {k: degraded_flux(v, instrument, hydrogen=hydrogen) for k, v in res.items()}
        wave = deg["base"][0] if wave is None else wave
        base_list.append(deg["base"][1])
        pert_list.append(np.stack([deg[n][1] for n in LABEL_NAMES]))
        ref_labels.append([block["base"]["labels"][n] for n in LABEL_NAMES])
        kinds.append(block["base"]["ref_kind"])
        ref_ids.append(r)
    if not base_list:
        raise RuntimeError(f"no reference point in {workdir} has all its {len(LABEL_NAMES) + 1} syntheses yet")
    base = np.array(base_list)
    pert = np.array(pert_list)
    covered = np.all(np.isfinite(base), axis=0) & np.all(np.isfinite(pert), axis=(0, 1))
    mask = product_mask(wave, hydrogen_corrected=hydrogen is not None) | ~covered
    base = np.where(np.isfinite(base), base, 1.0)
    pert = np.where(np.isfinite(pert), pert, 1.0)
    inst = (plan["instrument"] if instrument == "desi" else
            {"name": instrument.upper(), "grid": INSTRUMENTS[instrument][0],
             "lsf": f"Gaussian, resolution preset {INSTRUMENTS[instrument][1]!r}",
             "continuum": f"ddpayne.prepare.continuum.normalise L={INSTRUMENTS[instrument][2]} A"})
    prov = {
        "instrument": inst["name"], **{f"instrument_{k}": v for k, v in inst.items()},
        "synthesis": plan["provenance"], "synthesis_settings": plan["settings"],
        "difference": "forward", "n_ref_included": len(ref_ids), "n_ref_planned": len(refs),
        "physics_version": hyd.product_physics_version(physics, hydrogen is not None),
        "n_ref_outdated_left_out": len(outdated),
        "hydrogen": hyd.provenance_entry(hydrogen),
        "ref_ids": ref_ids, "reference_loci": "ddpayne.physics.references.reference_points()",
        "mask": ("hydrogen-line cores +-2.5 A, everything below 3755 A (Balmer series limit, uncorrected); "
                 "and pixels not covered" if hydrogen is not None else
                 "hydrogen lines: H-alpha,beta +-15 A; H-gamma..epsilon +-6 A; H8-10 +-4 A; H11-80 +-3 A; "
                 "Paschen +-3 A; and pixels not covered"),
        "command": command or "ddpayne.physics.build_gradients.build",
        "ddpayne_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    g = GradientSpectra.from_spectra(wave, np.array(ref_labels), steps, base, pert, LABEL_NAMES, mask=mask,
                                     provenance=prov, ref_kind=kinds)
    if outdated:
        log.warning("%d complete reference points were made with an older physics version and are left out "
                    "until the runner repairs them: %s", len(outdated), outdated)
    if out is not None:
        g.write(out)
        log.info("gradient product: %d of %d reference points -> %s (sha256 %s)", len(ref_ids), len(refs),
                 out, g.checksum())
    return g


def main(argv=None):
    """Deprecated ``python -m ddpayne.physics.build_gradients``: runs ``ddpayne build gradients``."""
    from ..pipeline.cli_synth import deprecated_alias

    return deprecated_alias("python -m ddpayne.physics.build_gradients", ["build", "gradients"], argv)


if __name__ == "__main__":
    raise SystemExit(main())
