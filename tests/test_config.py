"""params.yaml is validated at the boundary: unknown keys and bad values are errors."""
from pathlib import Path

import pytest
import yaml

from latentsketch.config import Params, load_params
from latentsketch.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["params.yaml", "params/paper-omniglot.yaml",
                                  "params/paper-quickdraw.yaml", "params/quickdraw-local.yaml"])
def test_shipped_params_files_are_valid_and_complete(name):
    data = yaml.safe_load((ROOT / name).read_text())
    params = load_params(ROOT / name)
    assert isinstance(params, Params)
    # Complete: every section a stage reads is written out, nothing left to defaults.
    assert set(data) == set(Params.__dataclass_fields__)


def test_misspelled_key_is_rejected_with_a_suggestion(tmp_path):
    with pytest.raises(InputError, match=r"unknown params key 'betta'.*did you mean 'beta'"):
        load_params(write(tmp_path, {"betta": 3}))


def test_misspelled_nested_key_names_its_section(tmp_path):
    with pytest.raises(InputError, match=r"rae.*unknown params key 'epoch'.*'epochs'"):
        load_params(write(tmp_path, {"rae": {"epoch": 3}}))


def test_wrong_type_is_rejected(tmp_path):
    with pytest.raises(InputError, match=r"rae:epochs: expected int"):
        load_params(write(tmp_path, {"rae": {"epochs": "many"}}))


def test_choice_outside_its_set_is_rejected(tmp_path):
    with pytest.raises(InputError, match=r"device: 'tpu' is not one of"):
        load_params(write(tmp_path, {"device": "tpu"}))


def test_integer_is_accepted_where_a_float_is_expected(tmp_path):
    assert load_params(write(tmp_path, {"beta": 500})).beta == 500.0


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_bad_grid_entry_is_rejected_at_load_time(tmp_path):
    with pytest.raises(InputError, match="unknown regularizer 'protto'"):
        load_params(write(tmp_path, {"grid": ["protto-5"]}))
