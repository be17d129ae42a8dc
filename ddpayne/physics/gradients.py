"""Gradient spectra: the physical derivatives ∂f/∂ℓ that the Kurucz regularizer compares the model with.

A :class:`GradientSpectra` holds, for ``n_ref`` reference label points and ``n_label`` labels, the
finite-difference derivative of the continuum-normalised flux with respect to each label,

.. math:: g_{r,k}(\\lambda) = \\frac{f(\\boldsymbol\\ell_r + \\Delta_k \\hat e_k) - f(\\boldsymbol\\ell_r)}{\\Delta_k}

in normalised flux per *physical* label unit (per K for ``TEFF``, per dex for ``LOGG``, ``FE_H`` and
``X_FE``, per km/s for ``VMIC``). Forward (one-sided) differences unless ``provenance['difference']``
says ``'central'``.

**File format** (FITS; also in ``docs/gradients.rst``):

==============  ===============  ==============================================================
HDU             type             content
==============  ===============  ==============================================================
0 PRIMARY       header only      ``DDPGRAD = 1`` (format version), ``NREF``, ``NLABEL``, ``NPIX``,
                                 ``DIFFTYPE``, ``CHECKSUM`` is not used (see ``GRADSHA``)
1 WAVELENGTH    image float64    (n_pix,) vacuum Å
2 MASK          image uint8      (n_pix,) 1 = do not use (hydrogen lines, gaps)
3 LABELS        bintable         one row per label: ``LABEL``, ``STEP`` (physical units), ``UNIT``
4 REFS          bintable         one row per reference point: ``REF_KIND`` and one column per label
5 BASE_FLUX     image float32    (n_ref, n_pix) normalised flux at each reference point
6 GRADIENTS     image uint8      zlib-compressed, byte-shuffled little-endian int16
                                 ``q = round(gradients / scale * QLEVELS)`` (C order, shape
                                 (n_ref, n_label, n_pix)); header ``ZSHAPE1..3``, ``ENCODING``,
                                 ``QLEVELS`` (4095)
7 GRAD_SCALE    image float64    (n_ref, n_label) scale: max abs(gradient) of each spectrum
8 PROVENANCE    bintable         one row, column ``JSON``: the provenance dictionary
==============  ===============  ==============================================================

Each gradient spectrum is divided by its own maximum absolute value and quantised uniformly to
±4095 levels, so the stored precision is 1.2e-4 of that spectrum's largest response, independent of
the label's physical unit (a Teff gradient per K is ~1e-4). Uniform quantisation stores most pixels
(tiny responses) as small integers, which compress about twice as well as float16 (~105 kB per
reference point on the DESI grid).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..io.atomic import atomic_path
from ..labels import LABEL_UNIT_STRINGS, validate_label_names

log = logging.getLogger(__name__)

#: Version of the on-disk format written by :meth:`GradientSpectra.write`.
FORMAT_VERSION = 1


#: Quantisation levels of the stored gradients: g = q / QLEVELS * scale with q an int16 in ±QLEVELS.
QLEVELS = 4095


def _encode(gradients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-spectrum scaled int16 representation: returns ``(int16 array, scale)``."""
    g = np.asarray(gradients, dtype=float)
    scale = np.max(np.abs(g), axis=-1)
    safe = np.where(scale > 0, scale, 1.0)
    q = np.round(g / safe[..., None] * QLEVELS).astype("<i2")
    return q, scale


def _decode(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float64) / QLEVELS * np.asarray(scale, dtype=float)[..., None]


def _pack(q: np.ndarray) -> bytes:
    """zlib of the byte-shuffled (all low bytes, then all high bytes) little-endian int16 array."""
    b = np.ascontiguousarray(q.astype("<i2")).view(np.uint8).reshape(-1, 2)
    return zlib.compress(np.ascontiguousarray(b.T).tobytes(), 9)


def _unpack(raw: bytes, shape: tuple[int, ...]) -> np.ndarray:
    b = np.frombuffer(zlib.decompress(raw), dtype=np.uint8).reshape(2, -1)
    return np.ascontiguousarray(b.T).view("<i2").reshape(shape)


class GradientSpectra:
    """Physical gradient spectra at a set of reference label points.

    Parameters
    ----------
    wavelength : ndarray, shape (n_pix,)
        Vacuum wavelength (Å), strictly increasing.
    label_names : sequence of str
        Names of the differentiated labels (a subset of :data:`ddpayne.labels.LABEL_NAMES`), in the
        order of the label axis of ``gradients``.
    ref_labels : ndarray, shape (n_ref, n_label)
        The reference label points, physical units, columns in ``label_names`` order.
    steps : ndarray, shape (n_label,)
        The finite-difference step Δk of each label (physical units).
    gradients : ndarray, shape (n_ref, n_label, n_pix)
        ∂f/∂ℓ in normalised flux per physical label unit.
    base_flux : ndarray, shape (n_ref, n_pix)
        Normalised flux at each reference point.
    mask : ndarray of bool, shape (n_pix,), optional
        True where a pixel must not be used (hydrogen lines, gaps). Default: nothing masked.
    ref_kind : sequence of str, shape (n_ref,), optional
        'dwarf', 'subgiant', 'giant', 'hb', ... Default: 'unknown'.
    provenance : dict, optional
        Instrument, LSF, synthesis code and settings, command, package version, date, difference type.
    """

    def __init__(self, wavelength, label_names, ref_labels, steps, gradients, base_flux, mask=None,
                 ref_kind=None, provenance=None):
        self.label_names = validate_label_names(label_names)
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"duplicate label names in {self.label_names}")
        self.wavelength = np.asarray(wavelength, dtype=float)
        if self.wavelength.ndim != 1 or self.wavelength.size < 2 or np.any(np.diff(self.wavelength) <= 0):
            raise ValueError("wavelength must be a strictly increasing 1-D array")
        n_pix, n_label = self.wavelength.size, len(self.label_names)
        self.ref_labels = np.atleast_2d(np.asarray(ref_labels, dtype=float))
        if self.ref_labels.ndim != 2 or self.ref_labels.shape[1] != n_label:
            raise ValueError(f"ref_labels must have shape (n_ref, {n_label}) for labels "
                             f"{self.label_names}, got {np.shape(ref_labels)}")
        n_ref = self.ref_labels.shape[0]
        self.steps = np.asarray(steps, dtype=float).reshape(-1)
        if self.steps.shape != (n_label,):
            raise ValueError(f"steps must have shape ({n_label},), got {np.shape(steps)}")
        if not np.all(np.isfinite(self.steps) & (self.steps != 0)):
            raise ValueError(f"steps must be finite and non-zero, got {self.steps}")
        self.gradients = np.asarray(gradients, dtype=float)
        if self.gradients.shape != (n_ref, n_label, n_pix):
            raise ValueError(f"gradients must have shape (n_ref, n_label, n_pix) = "
                             f"{(n_ref, n_label, n_pix)}, got {self.gradients.shape}")
        self.base_flux = np.asarray(base_flux, dtype=float)
        if self.base_flux.shape != (n_ref, n_pix):
            raise ValueError(f"base_flux must have shape (n_ref, n_pix) = {(n_ref, n_pix)}, "
                             f"got {self.base_flux.shape}")
        if mask is None:
            mask = np.zeros(n_pix, dtype=bool)
        self.mask = np.asarray(mask, dtype=bool).reshape(-1)
        if self.mask.shape != (n_pix,):
            raise ValueError(f"mask must have shape ({n_pix},), got {np.shape(mask)}")
        if ref_kind is None:
            ref_kind = ["unknown"] * n_ref
        self.ref_kind = np.asarray([str(k) for k in ref_kind], dtype=str)
        if self.ref_kind.shape != (n_ref,):
            raise ValueError(f"ref_kind must have {n_ref} entries, got {len(self.ref_kind)}")
        if not np.all(np.isfinite(self.gradients[:, :, ~self.mask])):
            raise ValueError("gradients contain non-finite values at unmasked pixels")
        self.provenance = dict(provenance or {})

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spectra(cls, wavelength, ref_labels, steps, base_flux, perturbed_flux,
                     label_names: Sequence[str], mask=None, provenance: Mapping | None = None,
                     ref_kind=None, minus_flux=None) -> "GradientSpectra":
        """Build gradient spectra from normalised spectra at reference and perturbed label points.

        This is the function to call with your own synthetic spectra (e.g. ATLAS12/SYNTHE), already
        degraded to the instrument and normalised exactly like the data
        (:func:`ddpayne.physics.degrade.degrade_to_survey`).

        Parameters
        ----------
        wavelength : ndarray, shape (n_pix,)
            Vacuum wavelength grid (Å) of all spectra.
        ref_labels : ndarray, shape (n_ref, n_label)
            Reference label points (physical units), columns in ``label_names`` order.
        steps : ndarray, shape (n_label,)
            Step Δk added to label k for its perturbed spectrum.
        base_flux : ndarray, shape (n_ref, n_pix)
            Normalised flux at each reference point.
        perturbed_flux : ndarray, shape (n_ref, n_label, n_pix)
            Normalised flux at ``ref_labels[r] + steps[k] * e_k``.
        label_names : sequence of str
        mask : ndarray of bool, shape (n_pix,), optional
            True = pixel not to be used.
        provenance : dict, optional
        ref_kind : sequence of str, optional
        minus_flux : ndarray, shape (n_ref, n_label, n_pix), optional
            Flux at ``ref_labels[r] - steps[k] * e_k``; if given, central differences are used.

        Returns
        -------
        GradientSpectra
        """
        base_flux = np.atleast_2d(np.asarray(base_flux, dtype=float))
        perturbed = np.asarray(perturbed_flux, dtype=float)
        steps = np.asarray(steps, dtype=float).reshape(-1)
        n_ref, n_pix = base_flux.shape
        if perturbed.ndim != 3 or perturbed.shape[0] != n_ref or perturbed.shape[2] != n_pix:
            raise ValueError(f"perturbed_flux must have shape (n_ref, n_label, n_pix) = "
                             f"({n_ref}, {len(label_names)}, {n_pix}), got {perturbed.shape}")
        if perturbed.shape[1] != steps.size or steps.size != len(label_names):
            raise ValueError(f"perturbed_flux has {perturbed.shape[1]} labels, steps {steps.size}, "
                             f"label_names {len(label_names)}: they must agree")
        prov = dict(provenance or {})
        if minus_flux is not None:
            minus = np.asarray(minus_flux, dtype=float)
            if minus.shape != perturbed.shape:
                raise ValueError(f"minus_flux shape {minus.shape} != perturbed_flux {perturbed.shape}")
            grads = (perturbed - minus) / (2.0 * steps[None, :, None])
            prov.setdefault("difference", "central")
        else:
            grads = (perturbed - base_flux[:, None, :]) / steps[None, :, None]
            prov.setdefault("difference", "forward")
        prov.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        return cls(wavelength, label_names, ref_labels, steps, grads, base_flux, mask=mask,
                   ref_kind=ref_kind, provenance=prov)

    # ------------------------------------------------------------------ properties
    @property
    def n_ref(self) -> int:
        return self.ref_labels.shape[0]

    @property
    def n_label(self) -> int:
        return len(self.label_names)

    @property
    def n_pix(self) -> int:
        return self.wavelength.size

    def label_index(self, name: str) -> int:
        """Index of ``name`` on the label axis (clear error if absent)."""
        try:
            return self.label_names.index(name)
        except ValueError:
            raise KeyError(f"label {name!r} is not in these gradient spectra; they hold "
                           f"{list(self.label_names)}") from None

    def ref_table(self, units: bool = True) -> Table:
        """The reference points as an astropy Table (``REF_KIND`` + one column per label)."""
        t = Table()
        t["REF_KIND"] = self.ref_kind
        for j, name in enumerate(self.label_names):
            t[name] = self.ref_labels[:, j]
            if units:
                t[name].unit = LABEL_UNIT_STRINGS.get(name)
        return t

    def __repr__(self) -> str:
        return (f"GradientSpectra(n_ref={self.n_ref}, labels={list(self.label_names)}, "
                f"n_pix={self.n_pix}, {self.wavelength[0]:.1f}-{self.wavelength[-1]:.1f} Å)")

    # ------------------------------------------------------------------ selection
    def subset(self, labels: Sequence[str] | None = None, refs=None) -> "GradientSpectra":
        """A new object restricted to some labels and/or reference points.

        Parameters
        ----------
        labels : sequence of str, optional
            Label names to keep, in the order given.
        refs : int array, bool mask, slice or sequence of ``ref_kind`` strings, optional
            Reference points to keep.
        """
        li = (np.arange(self.n_label) if labels is None
              else np.array([self.label_index(n) for n in labels], dtype=int))
        if refs is None:
            ri = np.arange(self.n_ref)
        elif isinstance(refs, slice):
            ri = np.arange(self.n_ref)[refs]
        else:
            arr = np.atleast_1d(np.asarray(refs))
            if arr.dtype.kind in "US":
                unknown = set(arr.tolist()) - set(self.ref_kind.tolist())
                if unknown:
                    raise KeyError(f"unknown ref_kind(s) {sorted(unknown)}; present: "
                                   f"{sorted(set(self.ref_kind.tolist()))}")
                ri = np.flatnonzero(np.isin(self.ref_kind, arr))
            elif arr.dtype == bool:
                if arr.shape != (self.n_ref,):
                    raise ValueError(f"boolean refs must have shape ({self.n_ref},)")
                ri = np.flatnonzero(arr)
            else:
                ri = arr.astype(int).reshape(-1)
                if ri.size and (ri.max() >= self.n_ref or ri.min() < -self.n_ref):
                    raise IndexError(f"reference index out of range for {self.n_ref} points")
        names = tuple(self.label_names[i] for i in li)
        return GradientSpectra(self.wavelength, names, self.ref_labels[np.ix_(ri, li)], self.steps[li],
                               self.gradients[np.ix_(ri, li)], self.base_flux[ri], mask=self.mask,
                               ref_kind=self.ref_kind[ri], provenance=dict(self.provenance))

    def matched_to(self, wavelength, labels: Sequence[str] | None = None, what: str = "the spectra"
                   ) -> "GradientSpectra":
        """The same gradients on a subset of this grid (a run's ``wave_range`` or windows) and labels.

        Parameters
        ----------
        wavelength : array_like
            Pixels that must all be pixels of this object's grid (to 1e-6 Å).
        labels : sequence of str, optional
            Labels to keep, in this order (default: all).
        what : str
            What the grid belongs to, for error messages.

        Raises
        ------
        KeyError
            A requested label has no gradient spectra here.
        ValueError
            ``wavelength`` is not a subset of this grid.
        """
        grid = np.asarray(wavelength, dtype=float)
        missing = [n for n in (labels or ()) if n not in self.label_names]
        if missing:
            raise KeyError(f"{self!r} has no gradient spectra for {missing}")
        idx = np.clip(np.searchsorted(self.wavelength, grid), 0, self.wavelength.size - 1)
        if not np.allclose(self.wavelength[idx], grid, rtol=0, atol=1e-6):
            raise ValueError(f"{self!r} is on another wavelength grid than {what}")
        sub = self.subset(labels=None if labels is None else list(labels))
        return GradientSpectra(grid, sub.label_names, sub.ref_labels, sub.steps, sub.gradients[:, :, idx],
                               sub.base_flux[:, idx], mask=sub.mask[idx], ref_kind=sub.ref_kind,
                               provenance={**sub.provenance, "matched_to": what})

    # ------------------------------------------------------------------ I/O
    def _encoded(self) -> tuple[np.ndarray, np.ndarray]:
        return _encode(self.gradients)

    def checksum(self) -> str:
        """SHA-256 (hex) of the stored content (grid, labels, steps, reference points, mask, base flux
        and the int16-quantised gradients). Identical before writing and after reading back."""
        q, scale = self._encoded()
        h = hashlib.sha256()
        h.update(f"ddpgrad{FORMAT_VERSION}".encode())
        h.update(",".join(self.label_names).encode())
        h.update(",".join(self.ref_kind.tolist()).encode())
        for arr in (self.wavelength.astype("<f8"), self.steps.astype("<f8"),
                    self.ref_labels.astype("<f8"), self.mask.astype("u1"),
                    self.base_flux.astype("<f4"), q.astype("<i2"), scale.astype("<f8")):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def write(self, path: str | Path, overwrite: bool = True) -> Path:
        """Write the FITS file described in the module docstring (atomically)."""
        path = Path(path)
        q, scale = self._encoded()
        primary = fits.PrimaryHDU()
        h = primary.header
        h["DDPGRAD"] = (FORMAT_VERSION, "ddpayne gradient-spectra format version")
        h["NREF"], h["NLABEL"], h["NPIX"] = self.n_ref, self.n_label, self.n_pix
        h["DIFFTYPE"] = (str(self.provenance.get("difference", "forward")), "finite difference type")
        h["GRADSHA"] = self.checksum()
        h["WAVEUNIT"] = ("Angstrom", "vacuum")
        for key, card in (("instrument", "INSTRUME"), ("synthesis_code", "SYNCODE")):
            if key in self.provenance:
                h[card] = str(self.provenance[key])[:68]
        wave = fits.ImageHDU(self.wavelength.astype(">f8"), name="WAVELENGTH")
        wave.header["BUNIT"] = "Angstrom"
        mask = fits.ImageHDU(self.mask.astype(np.uint8), name="MASK")
        labels = fits.BinTableHDU(Table({
            "LABEL": np.array(self.label_names, dtype="U8"), "STEP": self.steps,
            "UNIT": np.array([LABEL_UNIT_STRINGS.get(n, "") for n in self.label_names], dtype="U8")}),
            name="LABELS")
        refs = fits.BinTableHDU(self.ref_table(units=False), name="REFS")
        base = fits.ImageHDU(self.base_flux.astype(">f4"), name="BASE_FLUX")
        raw = _pack(q)
        grad = fits.ImageHDU(np.frombuffer(raw, dtype=np.uint8), name="GRADIENTS")
        grad.header["ENCODING"] = ("zlib(shuffled int16 LE)", "see ddpayne.physics.gradients")
        grad.header["QLEVELS"] = (QLEVELS, "g = q / QLEVELS * GRAD_SCALE")
        grad.header["ZSHAPE1"], grad.header["ZSHAPE2"], grad.header["ZSHAPE3"] = q.shape
        grad.header["SCALED"] = (True, "multiply by GRAD_SCALE[ref, label]")
        grad.header["BUNIT"] = ("flux / label unit", "per physical label unit")
        sc = fits.ImageHDU(scale.astype(">f8"), name="GRAD_SCALE")
        prov = fits.BinTableHDU(Table({"JSON": [json.dumps(self.provenance, default=str, sort_keys=True)]}),
                                name="PROVENANCE")
        hdul = fits.HDUList([primary, wave, mask, labels, refs, base, grad, sc, prov])
        with atomic_path(path, overwrite=overwrite) as tmp:
            hdul.writeto(tmp)
        log.info("wrote %s (%d refs x %d labels x %d px)", path, self.n_ref, self.n_label, self.n_pix)
        return path

    @classmethod
    def read(cls, path: str | Path) -> "GradientSpectra":
        """Read a file written by :meth:`write`.

        Raises
        ------
        ValueError
            If the file is not a ddpayne gradient-spectra file or is inconsistent, naming the file.
        """
        path = Path(path)
        try:
            with fits.open(path, memmap=False) as hdul:
                h = hdul[0].header
                if "DDPGRAD" not in h:
                    raise ValueError(f"{path} is not a ddpayne gradient-spectra file (no DDPGRAD key)")
                if int(h["DDPGRAD"]) > FORMAT_VERSION:
                    raise ValueError(f"{path} has format version {h['DDPGRAD']}; this ddpayne reads "
                                     f"<= {FORMAT_VERSION}: upgrade ddpayne")
                wave = np.asarray(hdul["WAVELENGTH"].data, dtype=float)
                mask = np.asarray(hdul["MASK"].data).astype(bool)
                lab = hdul["LABELS"].data
                names = tuple(str(s).strip() for s in lab["LABEL"])
                steps = np.asarray(lab["STEP"], dtype=float)
                refs = Table(hdul["REFS"].data)
                ref_labels = np.column_stack([np.asarray(refs[n], dtype=float) for n in names]) \
                    if len(refs) else np.zeros((0, len(names)))
                kind = [str(s).strip() for s in refs["REF_KIND"]]
                base = np.asarray(hdul["BASE_FLUX"].data, dtype=float).reshape(len(refs), wave.size)
                gh = hdul["GRADIENTS"].header
                shape = (int(gh["ZSHAPE1"]), int(gh["ZSHAPE2"]), int(gh["ZSHAPE3"]))
                raw = np.asarray(hdul["GRADIENTS"].data).tobytes()
                scale = np.asarray(hdul["GRAD_SCALE"].data, dtype=float).reshape(shape[:2])
                if int(gh.get("QLEVELS", 0)) != QLEVELS:
                    raise ValueError(f"{path}: gradients quantised with QLEVELS={gh.get('QLEVELS')}, "
                                     f"this ddpayne reads {QLEVELS}: rebuild the file")
                q = _unpack(raw, shape)
                prov = json.loads(str(hdul["PROVENANCE"].data["JSON"][0]))
        except (KeyError, zlib.error) as err:
            raise ValueError(f"{path}: damaged or incomplete gradient-spectra file ({err})") from err
        except OSError as err:
            raise ValueError(f"{path}: cannot be read as FITS ({err})") from err
        return cls(wave, names, ref_labels, steps, _decode(q, scale), base, mask=mask, ref_kind=kind,
                   provenance=prov)
