"""The reference venv holds exactly the pinned libraries (tests/requirements-ref.txt)."""
from importlib.metadata import version


def test_pinned_reference_versions():
    assert version("transformers") == "5.23.0"
    assert version("torch") == "2.15.0"
    assert version("torchvision") == "0.29.2"
    assert version("open_clip_torch") == "3.3.0"
    assert version("pillow") == "13.0.0"
    assert version("pillow-heif") == "1.1.1"
