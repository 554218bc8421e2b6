"""Model names: the one handle for a model in params, DVC stages and folders."""
import pytest

from latentsketch.config import Params
from latentsketch.errors import InputError
from latentsketch.grid import format_beta, model_name, parse_model_name, study_models


@pytest.mark.parametrize("beta, text", [(500, "500"), (500.0, "500"), (1e-05, "1e-05"),
                                        (0.5, "0.5"), (0.01, "0.01")])
def test_beta_is_printed_as_yaml_and_dvc_print_it(beta, text):
    assert format_beta(beta) == text


def test_single_regularizer_name_round_trips():
    spec = parse_model_name("proto-500")
    assert spec.name == "proto-500"
    assert spec.betas == {"proto": 500.0}
    assert (spec.family, spec.beta) == ("proto", 500.0)


def test_mix_keeps_its_terms_in_order_and_fits_over_the_first_beta():
    spec = parse_model_name("proto-5+barlow-50")
    assert spec.betas == {"proto": 5.0, "barlow": 50.0}
    assert spec.family == "proto+barlow"
    assert spec.beta == 5.0


def test_none_has_no_terms():
    assert parse_model_name("none").betas == {}
    assert model_name("none", 0) == "none"


def test_equivalent_spellings_share_a_canonical_name():
    assert parse_model_name("kl-0.00001").name == parse_model_name("kl-1e-05").name


@pytest.mark.parametrize("entry, message", [
    ("proto", "not a number"), ("proto-abc", "not a number"), ("foo-1", "unknown regularizer"),
    ("kl-0", "positive"), ("kl-1+kl-2", "appears twice")])
def test_bad_entries_are_rejected_with_the_entry_named(entry, message):
    with pytest.raises(InputError, match=message):
        parse_model_name(entry)


def test_model_under_study_joins_the_grid():
    params = Params(grid=["none", "kl-1e-05"], regularizer="barlow", beta=30)
    assert [s.name for s in study_models(params)] == ["none", "kl-1e-05", "barlow-30"]


def test_grid_duplicates_are_rejected():
    with pytest.raises(InputError, match="listed twice"):
        study_models(Params(grid=["kl-1e-05", "kl-0.00001"]))
