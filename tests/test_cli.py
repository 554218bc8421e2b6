"""The latentsketch command: params check and drawing from a user's exemplar."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentsketch.cli import load_exemplar, main


def test_dark_ink_on_paper_becomes_ink_high_at_48_pixels(tmp_path):
    paper = np.full((105, 105), 255, dtype=np.uint8)
    paper[:, 50:55] = 0  # a vertical black stroke
    Image.fromarray(paper).save(tmp_path / "stroke.png")
    exemplar = load_exemplar(str(tmp_path / "stroke.png"))
    assert exemplar.shape == (1, 48, 48) and exemplar.dtype == np.uint8
    assert exemplar[0, :, 23].mean() > 200  # the stroke's column is inked
    assert exemplar[0, :, :15].max() == 0  # the paper is background


def test_unreadable_exemplar_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(SystemExit) as stop:
        main(["draw", str(tmp_path / "bad.png"), "--model", str(tmp_path)])
    assert stop.value.code == 2
    assert "not a readable image" in capsys.readouterr().err


def test_check_lists_the_study(capsys):
    main(["check", "--params", str(Path(__file__).resolve().parents[1] / "params.yaml")])
    assert "model under study" in capsys.readouterr().out
