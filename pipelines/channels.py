"""EEG channels, shared by the readers (:mod:`pipelines.eeg`, :mod:`pipelines.tabular`).

- Montages and channel names: :func:`make_montage` (standard montages under the names
  of every MNE release), :func:`name_matcher` / :func:`montage_matcher` (a channel name
  -> the montage's spelling of it) and :func:`rename_to_montage`.
- Physiological plausibility of EEG amplitudes: :func:`implausible_amplitudes` and
  :func:`amplitude_warning`, which name the channels whose amplitudes no scalp EEG has
  (a recording in volts or nanovolts read as microvolts is the common cause).
"""

from __future__ import annotations

import functools
import re

import numpy as np

#: old 10-20 names -> 10-10 names
ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}


# ------------------------------------------------------------------- montages
def make_montage(name: str):
    """``mne.channels.make_standard_montage`` that accepts the pre-1.13 names
    (``standard_1005`` / ``standard_1020`` became ``colin27_*`` in MNE 1.13)."""
    import mne

    builtin = mne.channels.get_builtin_montages()
    new = {"standard_1005": "colin27_1005", "standard_1020": "colin27_1020"}.get(name)
    if new in builtin:
        name = new
    if name not in builtin and name not in ("standard_1005", "standard_1020"):
        raise ValueError(f"montage must be one of {builtin}, got {name!r}")
    return mne.channels.make_standard_montage(name)


def canonical_name(name: str) -> str:
    """A channel name without ``EEG``/``MEG`` prefixes, reference suffixes (``-REF``,
    ``-LE``, ``-A1``...), spaces and trailing dots (``EEG Fp1-REF`` -> ``Fp1``)."""
    n = name.strip()
    n = re.sub(r"^(EEG|MEG)[\s_-]+", "", n, flags=re.I)
    n = re.sub(r"[-_\s]?(REF|LE|RE|AR|AVG|M1|M2|A1|A2|CZ)$", "", n, flags=re.I) if \
        re.search(r"[-_\s](REF|LE|RE|AR|AVG|M1|M2|A1|A2|CZ)$", n, flags=re.I) else n
    return n.strip(" .").replace(" ", "")


def name_matcher(montage_names: list[str]):
    """A function: channel name -> the montage's spelling of it, or None (case,
    ``EEG``/``-REF`` prefixes and suffixes, old 10-20 names such as ``T3``)."""
    lookup = {m.lower(): m for m in montage_names}
    aliases = {k.lower(): v for k, v in ALIASES.items()}

    def match(name: str) -> str | None:
        c = canonical_name(name)
        return lookup.get(aliases.get(c.lower(), c).lower())

    return match


@functools.lru_cache(maxsize=8)
def montage_matcher(montage: str):
    """:func:`name_matcher` for the standard montage named ``montage`` (cached)."""
    return name_matcher(make_montage(montage).ch_names)


def rename_to_montage(raw, montage_names: list[str]) -> dict:
    """Rename ``raw``'s EEG channels onto montage names, in place (case, prefixes and
    suffixes, old 10-20 names); returns the ``{old: new}`` mapping applied."""
    match = name_matcher(montage_names)
    mapping = {}
    for ch, kind in zip(raw.ch_names, raw.get_channel_types()):
        if kind != "eeg":
            continue
        target = match(ch)
        if target and target != ch and target not in raw.ch_names \
                and target not in mapping.values():
            mapping[ch] = target
    if mapping:
        raw.rename_channels(mapping, verbose="error")
    return mapping


# ----------------------------------------------------------- plausible amplitudes
# Scalp EEG is a few to a few hundred microvolts: background rhythms are about 10-100 µV
# peak to peak, and eye blinks, movement and poor contact reach a few hundred µV to a
# few mV (the range of consumer headsets ends near 1.7 mV). No real channel is quieter
# than its noise floor: the thermal noise of a 10 kOhm electrode over 100 Hz is about
# 0.13 µV rms (sqrt(4kTRB)), amplifiers add 0.3-1 µV rms, so about 1 µV peak to peak in
# a second at the least. The floor used here, 0.1 µV, is ten times below that; a floor
# of 0.01 µV would miss millivolts read as µV, whose EEG then spans about 0.01-0.5 µV
# (0.1 µV catches the quieter half of those). Above about 10 mV no physiological
# potential reaches the scalp. Outside these bounds the channel is flat, not EEG, or in
# another unit than the one read: volts read as µV give values ~1e6 times too small,
# nanovolts ~1e3 times too large. The amplitude judged is a channel's typical
# peak-to-peak within one second (the median over 1 s windows), so slow drifts and DC
# offsets (DC-coupled amplifiers carry offsets of tens of mV), and a few short
# artefacts, do not count.
#: plausible range (µV) of a scalp-EEG channel's typical peak-to-peak amplitude in 1 s
EEG_PEAK_TO_PEAK_UV = (0.1, 1e4)
#: the typical 1 s peak-to-peak amplitude (µV) of usual scalp EEG, for suggesting a unit
TYPICAL_PEAK_TO_PEAK_UV = (1.0, 500.0)
#: a unit's value in volts (the units an EEG file is written in)
UNIT_VOLTS = {"uV": 1e-6, "mV": 1e-3, "V": 1.0, "nV": 1e-9}


def typical_peak_to_peak(data: np.ndarray, sfreq: float) -> np.ndarray:
    """Each channel's median, over consecutive 1 s windows, of its peak-to-peak amplitude
    in the window (the whole recording when it is shorter than 1 s).

    data: ``(n_channels, n_times)``; returns ``(n_channels,)`` in the unit of ``data``.
    """
    n = max(1, int(round(sfreq)))
    k = data.shape[1] // n
    if k == 0:
        return np.ptp(data, axis=1)
    win = data[:, :k * n].reshape(data.shape[0], k, n)                  # (C, k, n)
    return np.median(win.max(axis=2) - win.min(axis=2), axis=1)


def implausible_amplitudes(data_uv: np.ndarray, channels: list[str],
                           sfreq: float) -> list[dict]:
    """The channels whose amplitude no scalp EEG has (bounds: ``EEG_PEAK_TO_PEAK_UV``).

    data_uv: ``(n_channels, n_times)`` in µV, as read. Returns, for each implausible
    channel, ``{"channel", "min_uv", "max_uv", "typical_ptp_uv"}``.
    """
    if data_uv.size == 0:
        return []
    typ = typical_peak_to_peak(data_uv, sfreq)
    lo, hi = EEG_PEAK_TO_PEAK_UV
    bad = np.flatnonzero(~((typ >= lo) & (typ <= hi)))
    return [{"channel": channels[i], "min_uv": float(data_uv[i].min()),
             "max_uv": float(data_uv[i].max()), "typical_ptp_uv": float(typ[i])}
            for i in bad]


def _likely_unit(typical_uv: float, unit: str) -> str | None:
    """The one unit under which ``typical_uv`` (read with ``unit``) is usual EEG."""
    if not typical_uv > 0:
        return None
    lo, hi = TYPICAL_PEAK_TO_PEAK_UV
    fits = [u for u in UNIT_VOLTS if u != unit
            and lo <= typical_uv * UNIT_VOLTS[u] / UNIT_VOLTS[unit] <= hi]
    return fits[0] if len(fits) == 1 else None


def amplitude_warning(path, bad: list[dict], unit: str | None, fix: str,
                      n_channels: int | None = None) -> str:
    """The warning text for the channels :func:`implausible_amplitudes` found.

    ``unit``: the unit the file's values were read in (``"uV"``, ``"V"``...), or None
    when a reader scaled them by a unit the file declares (then the hint is a factor);
    ``fix``: what to check or pass (for example ``"Check unit (--unit uV|mV|V|nV)."``);
    ``n_channels``: the EEG channels checked, to say when the others look like EEG.
    """
    parts = []
    for b in bad[:8]:
        what = ("flat" if b["typical_ptp_uv"] == 0 else
                f"typically {b['typical_ptp_uv']:.3g} µV peak-to-peak within 1 s")
        parts.append(f"{b['channel']} ({b['min_uv']:.3g} to {b['max_uv']:.3g} µV, {what})")
    more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
    guesses = {_likely_unit(b["typical_ptp_uv"], unit or "uV") for b in bad}
    guess = guesses.pop() if len(guesses) == 1 else None
    hint = ""
    if guess and unit:
        hint = f" The values look like {guess}."
    elif guess:
        f = UNIT_VOLTS[guess] / UNIT_VOLTS["uV"]
        hint = f" The values look {max(f, 1 / f):g} times too {'large' if f < 1 else 'small'}."
    if n_channels is not None and n_channels > len(bad):
        hint += (f" The other {n_channels - len(bad)} channel(s) look like EEG, so the unit "
                 "may be right for them: check how these were recorded or exported, or leave "
                 "them out.")
    lo, hi = EEG_PEAK_TO_PEAK_UV
    read = f", read as {unit}," if unit else ""
    return (f"{path}: implausible EEG amplitude{read} in channel(s) {', '.join(parts)}{more}. "
            f"Scalp EEG is about 1-500 µV, never below {lo:g} µV or above {hi / 1e3:g} mV "
            "peak-to-peak: the unit is likely wrong (a file in volts or in nanovolts read "
            f"as µV is the common case), or the channel is flat or not EEG.{hint} {fix}")
