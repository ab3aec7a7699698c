"""One summary per method that reads the sanity check and the faithfulness scores together.

The two checks ask different questions, so they can seem to disagree: the sanity check (Adebayo
et al. 2018) asks whether the map depends on the trained weights at all; deletion and insertion
(Petsiuk et al. 2018) ask whether the pixels the map puts first are the ones the model needs,
ranking them by the signed map (most "for the class" first). A map can rank pixels well because
the image alone already tells where the object is (good faithfulness, fails the sanity check),
or have its signed part depend on the model while its outline does not (Occlusion, IG,
DeepLift: partly). The words below say which, for a student. Pure functions, no torch.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from karp_models.i18n import N_, _
from karp_models.introspect.faithfulness import FaithRow, Ranking, rank
from karp_models.introspect.sanity import CANNOT, FAILS, PASSES, Verdict, what

HIGH, MIDDLE, LOW = N_("high"), N_("middle"), N_("low")                  # msgids: shown with _()
ALONE, TIED, NONE = N_("nothing to compare with"), N_("all tie"), N_("cannot judge")


@dataclass(frozen=True)
class Summary:
    method: str
    sanity: str               # the sanity verdict's status
    faithfulness: str         # HIGH | MIDDLE | LOW (deletion and insertion places) | ALONE | TIED | NONE
    places: str               # "1st of 8 by deletion, 2nd of 8 by insertion" (current language)
    text: str


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return {"st": _("{n}st"), "nd": _("{n}nd"), "rd": _("{n}rd"), "th": _("{n}th")}[suffix].format(n=n)


def _by(column: str) -> str:
    return _("deletion") if column.startswith("deletion") else _("insertion")


def standing(method: str, rankings: Sequence[Ranking]) -> tuple[str, str]:
    """(HIGH | MIDDLE | LOW | ALONE | TIED | NONE, places in words) of `method` by deletion and
    insertion: its mean place scaled to [0, 1] (0 = first) in the top third is HIGH, the bottom
    third LOW. A ranking where every method ties says nothing and is left out (TIED if all are)."""
    spots, words, tied_all = [], [], 0
    for r in rankings:
        n, p = len(r.places), r.places.get(method)
        if p is None:
            continue
        if n > 1 and all(q == 1 for q in r.places.values()):
            tied_all += 1
            continue
        tied = sum(q == p for q in r.places.values()) > 1
        words.append((_("tied {place} of {n} by {check}") if tied else _("{place} of {n} by {check}")).format(
            place=_ordinal(p), n=n, check=_by(r.column)))
        if n > 1:
            spots.append((p - 1) / (n - 1))
    if not words:
        return (TIED, "") if tied_all else (NONE, "")
    if not spots:
        return ALONE, ", ".join(words)
    mean = sum(spots) / len(spots)
    return (HIGH if mean <= 1 / 3 else LOW if mean >= 2 / 3 else MIDDLE), ", ".join(words)


def _text(v: Verdict, faith: str, places: str, row: FaithRow | None, class_name: str) -> str:
    if v.status == CANNOT:
        return _("Cannot judge: {reason}.").format(reason=v.reason)
    if row is not None and row.reason:
        return _("Cannot judge its faithfulness: {reason}.").format(reason=row.reason)
    if faith == TIED:
        return _("Deletion and insertion cannot tell the methods apart here (they all tie), so only the "
                 "sanity check speaks: {verdict}").format(verdict=v.text.replace("**", ""))
    if faith in (ALONE, NONE):
        return _("Choose more methods to compare its faithfulness with.")
    good = faith == HIGH
    needs = {HIGH: _("are the ones the model needs"), MIDDLE: _("are only partly the ones the model needs"),
             LOW: _("are not the ones the model needs most")}[faith]
    if places:
        needs = _("{needs} ({places})").format(needs=needs, places=places)
    if v.status == PASSES:
        if good:
            return _("Trust it here: its map depends on what the model learned (sanity check) and the pixels "
                     "it puts first {needs}.").format(needs=needs)
        return (_("Its map depends on what the model learned, but the pixels it puts first {needs}: a real "
                  "explanation, but a blurry one.") if faith == MIDDLE else
                _("Its map depends on what the model learned, but the pixels it puts first {needs}: it reacts "
                  "to the model, yet it does not point at what the model uses here, so do not read it as the "
                  "reason for the decision.")).format(needs=needs)
    if v.status == FAILS:
        return (_("The two checks do not contradict each other: the pixels it puts first {needs}, but it "
                  "would put them first for a random model too, so that comes from the image (where the "
                  "object is), not from what this model learned. Use it to see the object, not to see why "
                  "the model decided.") if good else
                _("Do not use it here: its map barely depends on the model, and the pixels it puts first "
                  "{needs}.")).format(needs=needs)
    if v.lowest.endswith("signed") and v.highest.endswith("|map|"):
        if good:
            text = _("Read its colours, not its outline. Where it lights up comes from the image, but "
                     "whether a place counts for or against {name} comes from the model (sanity check). "
                     "Deletion and insertion go by those colours (the most red pixels first), which is why "
                     "it scores well there.")
        elif faith == MIDDLE:
            text = _("Read its colours, not its outline. Where it lights up comes from the image, but "
                     "whether a place counts for or against {name} comes from the model (sanity check). "
                     "Deletion and insertion go by those colours (the most red pixels first), and even so "
                     "it scores only moderately there.")
        else:
            text = _("Read its colours, not its outline. Where it lights up comes from the image, but "
                     "whether a place counts for or against {name} comes from the model (sanity check). "
                     "Deletion and insertion go by those colours (the most red pixels first), and it scores "
                     "poorly there.")
        text = text.format(name=class_name)
        return text[:-1] + f" ({places})." if places else text
    return _("Partly the image, partly the model. Survives randomisation: {kept}. Does not: {lost}. The "
             "pixels it puts first {needs}.").format(kept=what(v.highest), lost=what(v.lowest), needs=needs)


def summarise(verdicts: dict[str, Verdict], rows: Sequence[FaithRow], class_name: str) -> dict[str, Summary]:
    """One Summary per method that has both a sanity verdict and a faithfulness row, in the
    verdicts' order."""
    by_method = {r.method: r for r in rows}
    rankings = [rank(rows, "deletion_auc"), rank(rows, "insertion_auc")]
    out = {}
    for k, v in verdicts.items():
        if k not in by_method:
            continue
        faith, places = standing(k, rankings)
        out[k] = Summary(k, v.status, faith, places, _text(v, faith, places, by_method[k], class_name))
    return out

