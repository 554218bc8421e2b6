"""Stage importance: Eq. 9 feature importance maps of each family's best model.

For every family of study/best.json (the pixel baseline, and families listed in
importance.exclude, skipped), runs importance.variations guided chains per test
category from its exemplar and averages φ over them. The reference maps are the
user's human maps (importance.reference_maps) or, without them, the
ink-frequency proxy. Writes maps/maps.parquet (model, family, category, map),
maps/reference.parquet (category, participant, map, source) and
maps/overlays.png (Fig. 4a).
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from latentsketch import maps, paths
from latentsketch.data.tables import load_drawings, load_exemplars
from latentsketch.diffusion import load_ldm
from latentsketch.diffusion.data import unseen_exemplar_latents
from latentsketch.errors import InputError
from latentsketch.grid import HUMAN, PIXEL
from latentsketch.io import read_json, save_figure, write_parquet
from latentsketch.models.rae import load_rae
from latentsketch.plots import family_label, overlay_figure
from latentsketch.runtime import Runtime, run_stage, setup
from latentsketch.stage import parse_plain_stage

log = logging.getLogger("latentsketch")

# Every model starts its chains from the same noise: their maps differ by the
# model only, and adding a family does not change the others' maps.
CHAIN_NOISE_OFFSET = 9


def main(argv: list[str] | None) -> None:
    params = parse_plain_stage(argv, __doc__)
    runtime = setup(params, "importance")
    options = params.importance
    families = mapped_families(read_best(paths.STUDY_DIR / "best.json"), options.exclude)
    test = load_exemplars(paths.EXEMPLARS).split("test")
    reference, source = reference_maps(options, sorted(test.table["category"]), params.seed)
    categories = sorted(reference["category"].unique())

    rows = []
    for family, key in families.items():
        began = time.perf_counter()
        category_maps = model_maps(paths.MODELS / key, categories, options, runtime)
        rows += [{"model": key, "family": family, "category": c, "map": m}
                 for c, m in zip(categories, maps.maps_to_column(category_maps))]
        steps = options.steps if options.sampler == "ddim" else "all"
        log.info("importance: %s (%s) %d categories × %d chains, %s %s steps, %.1fs",
                 family, key, len(categories), options.variations, options.sampler, steps,
                 time.perf_counter() - began)

    write_parquet(paths.MAPS_DIR / "maps.parquet", pd.DataFrame(
        rows, columns=["model", "family", "category", "map"]))
    write_parquet(paths.MAPS_DIR / "reference.parquet", reference.assign(
        map=maps.maps_to_column(np.stack(reference["map"].to_list())), source=source))
    shown = categories[:options.overlay_categories]
    save_figure(paths.MAPS_DIR / "overlays.png", overlays(test, reference, source, rows,
                                                          shown))


def read_best(path) -> dict[str, str]:
    if not path.exists():
        raise InputError(f"best models {path}: not found; run the study stage first "
                         "(`dvc repro study`).")
    return read_json(path)


def mapped_families(best: dict[str, str], exclude: list[str]) -> dict[str, str]:
    """Families whose best model gets maps: latent models not excluded.

    A family is skipped when it, or any regularizer of a mix, is in `exclude`
    (VQ's quantization makes its maps meaningless, paper §5.2).
    """
    kept = {}
    for family, key in best.items():
        if family in (PIXEL, HUMAN):
            continue
        if family in exclude or set(family.split("+")) & set(exclude):
            log.info("importance: %s skipped (importance.exclude)", family)
            continue
        kept[family] = key
    if not kept:
        raise InputError("study/best.json: no family left to map once pixel and "
                         f"importance.exclude {exclude} are removed; shorten the exclude "
                         "list or add latent models to the grid.")
    return kept


def reference_maps(options, test_categories: list[str],
                   seed: int) -> tuple[pd.DataFrame, str]:
    """The reference maps of the chosen categories, and what they are."""
    if options.reference_maps:
        reference = maps.load_reference_maps(options.reference_maps)
        known = sorted(set(reference["category"]) & set(test_categories))
        unknown = sorted(set(reference["category"]) - set(test_categories))
        if unknown:
            log.warning("importance: %d reference categories are not test categories "
                        "(e.g. %s); left out", len(unknown), unknown[0])
        if not known:
            raise InputError(f"reference maps {options.reference_maps}: none of its "
                             "categories is a test category of the prepared data; name "
                             "categories as in data/exemplars (e.g. 'Greek/character01').")
        chosen = pick_categories(known, options.categories, seed)
        return reference[reference["category"].isin(chosen)].reset_index(drop=True), \
            maps.HUMAN_REFERENCE
    chosen = pick_categories(test_categories, options.categories, seed)
    drawings = load_drawings(paths.PREPARED).split("test")
    exemplar_ids = set(load_exemplars(paths.EXEMPLARS).table["drawing_id"])
    # the exemplar is what the models saw; the proxy counts only the other drawings
    others = drawings.subset(~drawings.table["drawing_id"].isin(exemplar_ids))
    reference = maps.ink_frequency_maps(others.images, others.table["category"].to_numpy(),
                                        chosen)
    log.info("importance: no reference_maps given; comparing with the %s",
             maps.PROXY_REFERENCE)
    return reference, maps.PROXY_REFERENCE


def pick_categories(categories: list[str], count: int, seed: int) -> list[str]:
    """`count` categories drawn at random (seeded), all when fewer; sorted."""
    if len(categories) <= count:
        return sorted(categories)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(sorted(categories), size=count, replace=False).tolist())


def model_maps(model_dir, categories: list[str], options, runtime: Runtime) -> np.ndarray:
    """C×48×48 feature importance maps of one latent model."""
    ldm = load_ldm(paths.ldm_dir(model_dir), runtime.device)
    rae = load_rae(paths.rae_dir(model_dir), runtime.device)
    exemplars, latents = unseen_exemplar_latents(paths.latents_dir(model_dir))
    row_of = {c: i for i, c in enumerate(exemplars["category"])}
    missing = [c for c in categories if c not in row_of]
    if missing:
        raise InputError(f"exemplar latents of {model_dir}: no latent for category "
                         f"{missing[0]!r}; rerun its encode stage on the current data.")
    chosen = latents[[row_of[c] for c in categories]].to(runtime.device)
    return maps.category_maps(
        ldm, maps.frozen_decoder(rae.decoder), chosen, variations=options.variations,
        sampler=options.sampler, steps=options.steps, guidance_scale=options.guidance_scale,
        weighting=options.weighting, generator=runtime.generator(CHAIN_NOISE_OFFSET),
        autocast=runtime.autocast, progress=True)


def overlays(test, reference: pd.DataFrame, source: str, rows: list[dict],
             shown: list[str]):
    """Fig. 4a: the reference row on top, then one row per model."""
    image_of = dict(zip(test.table["category"], test.images))
    reference_of = maps.average_reference(reference)
    figure_rows = [(source, np.stack([reference_of[c] for c in shown]))]
    table = pd.DataFrame(rows)
    for (family, key), group in table.groupby(["family", "model"], sort=False):
        map_of = dict(zip(group["category"], group["map"]))
        figure_rows.append((f"{family_label(family)}\n{key}",
                            np.stack([np.reshape(map_of[c], (48, 48)) for c in shown])))
    return overlay_figure(np.stack([image_of[c] for c in shown]), figure_rows,
                          [c.replace("/", "/\n") for c in shown])


if __name__ == "__main__":
    run_stage(main)
